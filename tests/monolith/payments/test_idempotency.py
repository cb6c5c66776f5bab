"""The Idempotency-Key contract: replay the first answer, never charge twice, 422 on misuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monolith.payments.models import IdempotencyRecord, Payment
from monolith.payments.provider import DECLINE_CARD, TIMEOUT_CARD

pytestmark = pytest.mark.django_db


def test_same_key_and_body_replays_the_first_answer_and_charges_once(
    auth_client, pay, order, provider
):
    first = pay(auth_client, order.id, key="retry-me")
    second = pay(auth_client, order.id, key="retry-me")

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Payment.objects.count() == 1
    assert len(provider.charges) == 1


def test_replay_returns_the_stored_answer_even_after_a_refund(auth_client, pay, order):
    first = pay(auth_client, order.id, key="k")
    auth_client.post(f"/api/payments/{first.json()['id']}/refund/")

    again = pay(auth_client, order.id, key="k")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["status"] == "succeeded"


def test_declined_answer_is_replayed_without_charging_again(auth_client, pay, order, provider):
    first = pay(auth_client, order.id, card=DECLINE_CARD, key="declined")
    second = pay(auth_client, order.id, card=DECLINE_CARD, key="declined")

    assert first.status_code == second.status_code == 402
    assert second.json() == first.json()
    assert Payment.objects.filter(status="failed").count() == 1
    assert len(provider.charges) == 1


def test_same_key_with_a_different_body_is_a_422(auth_client, pay, order, make_order, user):
    pay(auth_client, order.id, key="once")
    other_order = make_order(user)

    other_body = pay(auth_client, other_order.id, key="once")
    other_card = pay(auth_client, order.id, card="5555555555554444", key="once")

    for response in (other_body, other_card):
        assert response.status_code == 422
        assert response.json()["error"] == "idempotency_key_reused"
    other_order.refresh_from_db()
    assert other_order.status == "pending"
    assert Payment.objects.count() == 1


def test_provider_timeout_is_not_stored_so_the_same_key_can_be_retried(
    auth_client, pay, order, provider
):
    timed_out = pay(auth_client, order.id, card=TIMEOUT_CARD, key="flaky")
    assert timed_out.status_code == 504
    assert not IdempotencyRecord.objects.exists()

    retry = pay(auth_client, order.id, card=TIMEOUT_CARD, key="flaky")

    assert retry.status_code == 504
    assert len(provider.charges) == 2


def test_a_409_is_not_stored_so_the_key_is_still_usable(
    auth_client, pay, make_order, user, provider
):
    order = make_order(user, status="cancelled")
    assert pay(auth_client, order.id, key="k").status_code == 409

    assert not IdempotencyRecord.objects.exists()


def test_keys_are_per_user(make_user, client_for, make_order, pay, provider):
    alice, bob = make_user(), make_user()
    alice_order, bob_order = make_order(alice), make_order(bob)

    alice_pays = pay(client_for(alice), alice_order.id, key="shared-key")
    bob_pays = pay(client_for(bob), bob_order.id, key="shared-key")

    assert alice_pays.status_code == bob_pays.status_code == 201
    assert alice_pays.json()["id"] != bob_pays.json()["id"]
    assert len(provider.charges) == 2


def test_same_key_replay_with_a_normalised_but_equal_body(auth_client, order, provider):
    key = {"Idempotency-Key": "case"}
    body = {"card_number": "4242424242424242", "order_id": str(order.id)}
    first = auth_client.post("/api/payments/", body, format="json", headers=key)
    upper = {"order_id": str(order.id).upper(), "card_number": "4242424242424242"}

    second = auth_client.post("/api/payments/", upper, format="json", headers=key)

    assert second.status_code == 201
    assert second.json() == first.json()
    assert len(provider.charges) == 1


def test_stored_fingerprint_cannot_be_recomputed_from_the_body_to_recover_the_card(
    auth_client, pay, order
):
    # An unkeyed hash of {order_id, card_number} gives the card away: the order id and the last
    # four digits are stored next to it, leaving about 10^6 candidates to try.
    import hashlib
    import json

    pay(auth_client, order.id, key="k")
    body = {"card_number": "4242424242424242", "order_id": str(order.id)}
    unkeyed = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()

    assert IdempotencyRecord.objects.get().request_fingerprint != unkeyed


def test_the_relay_cleanup_purges_expired_keys_and_a_late_retry_cannot_charge_twice(
    auth_client, pay, order, make_order, user, provider, settings
):
    from outbox.relay import outbox_cleanup

    settings.STRANGLER_IDEMPOTENCY_RETENTION_S = 3600
    pay(auth_client, order.id, key="yesterday")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=2))
    pay(auth_client, make_order(user).id, key="today")

    deleted = outbox_cleanup()

    assert deleted["monolith.payments.services.purge_expired_idempotency_records"] == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["today"]
    late = pay(auth_client, order.id, key="yesterday")  # a new request now: the order is paid
    assert late.status_code == 409
    assert Payment.objects.filter(order=order).count() == 1
    assert len(provider.charges) == 2
