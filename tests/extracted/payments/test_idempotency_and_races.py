"""Idempotency-Key on the service: replay the first answer, never charge twice, one winner."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from extracted.payments.models import IdempotencyRecord, Payment
from service_kit.payment_provider import DECLINE_CARD, TIMEOUT_CARD


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_answer_and_charges_once(
    auth_client, pay, order, provider
):
    first = pay(auth_client, order.order_id, key="retry-me")
    second = pay(auth_client, order.order_id, key="retry-me")

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Payment.objects.count() == 1
    assert len(provider.charges) == 1


@pytest.mark.django_db
def test_declined_answer_is_replayed_without_charging_again(auth_client, pay, order, provider):
    first = pay(auth_client, order.order_id, card=DECLINE_CARD, key="declined")
    second = pay(auth_client, order.order_id, card=DECLINE_CARD, key="declined")

    assert first.status_code == second.status_code == 402
    assert second.content == first.content
    assert len(provider.charges) == 1


@pytest.mark.django_db
def test_same_key_with_a_different_body_is_a_422(auth_client, pay, order, make_order, user_id):
    pay(auth_client, order.order_id, key="k")

    response = pay(auth_client, make_order(user_id).order_id, key="k")

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_keys_belong_to_users(client_for, pay, make_order, user_id):
    other = user_id + 1
    mine = pay(client_for(user_id), make_order(user_id).order_id, key="shared")
    theirs = pay(client_for(other), make_order(other).order_id, key="shared")

    assert mine.status_code == theirs.status_code == 201
    assert IdempotencyRecord.objects.count() == 2


@pytest.mark.django_db
def test_a_timeout_is_not_stored_so_the_same_key_can_be_retried(auth_client, pay, order, provider):
    assert pay(auth_client, order.order_id, card=TIMEOUT_CARD, key="t").status_code == 504
    assert not IdempotencyRecord.objects.exists()

    retry = pay(auth_client, order.order_id, card="4242424242424242", key="t")

    assert retry.status_code == 201


def _race(requests, timeout: float = 30) -> list:
    """Run the callables at the same instant, each in its own thread and DB connection."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(index, request):
        try:
            barrier.wait()
            results[index] = request()
        except Exception as exc:  # surfaced by the assertions, never swallowed
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(2))
def test_two_concurrent_payments_of_one_order_exactly_one_wins(
    settings, client_for, make_order, user_id, pay, provider, round_
):
    settings.STRANGLER_PAYMENT_LATENCY_MS = 100  # keep the first charge in flight
    order = make_order(user_id)
    clients = [client_for(user_id), client_for(user_id)]

    responses = _race(
        [
            lambda c=c, k=k: pay(c, order.order_id, key=k)
            for c, k in zip(clients, [f"a{round_}", f"b{round_}"], strict=True)
        ]
    )

    assert sorted(r.status_code for r in responses) == [201, 409], responses
    loser = next(r for r in responses if r.status_code == 409)
    assert (loser.json()["from"], loser.json()["to"]) == ("paid", "paid")
    assert Payment.objects.filter(order_id=order.order_id, status="succeeded").count() == 1
    assert len(provider.charges) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_charge_once_and_all_get_the_answer(
    settings, client_for, make_order, user_id, pay, provider
):
    settings.STRANGLER_PAYMENT_LATENCY_MS = 100
    order = make_order(user_id)

    clients = [client_for(user_id) for _ in range(3)]

    responses = _race([lambda c=c: pay(c, order.order_id, key="same") for c in clients])

    assert [r.status_code for r in responses] == [201, 201, 201], responses
    assert len({r.content for r in responses}) == 1
    assert len(provider.charges) == 1
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_stored_fingerprint_cannot_be_recomputed_from_the_body_to_recover_the_card(
    auth_client, pay, order
):
    # An unkeyed hash of {order_id, card_number} gives the card away: the order id and the last
    # four digits are stored next to it, leaving about 10^6 candidates to try.
    import hashlib
    import json

    pay(auth_client, order.order_id, key="k")
    body = {"card_number": "4242424242424242", "order_id": str(order.order_id)}
    unkeyed = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()

    assert IdempotencyRecord.objects.get().request_fingerprint != unkeyed


@pytest.mark.django_db
def test_expired_keys_are_purged_and_a_late_retry_cannot_charge_twice(
    auth_client, pay, order, provider, settings
):
    from extracted.payments.services import purge_expired_idempotency_records
    from outbox.relay import outbox_cleanup

    settings.STRANGLER_IDEMPOTENCY_RETENTION_S = 3600
    pay(auth_client, order.order_id, key="yesterday")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert purge_expired_idempotency_records(now=timezone.now() - timedelta(hours=3)) == 0

    deleted = outbox_cleanup()  # the relay's cleanup, as the service's settings wire it

    assert deleted["extracted.payments.services.purge_expired_idempotency_records"] == 1

    assert not IdempotencyRecord.objects.exists()
    late = pay(auth_client, order.order_id, key="yesterday")
    assert late.status_code == 409
    assert Payment.objects.count() == 1
    assert len(provider.charges) == 1
