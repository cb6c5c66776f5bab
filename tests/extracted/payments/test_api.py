"""The payments API of the service keeps the monolith's contract: same bodies, statuses, errors."""

from __future__ import annotations

import time

import pytest

from extracted.payments.models import OrderReplica, Payment
from outbox.models import OutboxEvent
from service_kit.identity import HEADER
from service_kit.payment_provider import DECLINE_CARD, INSUFFICIENT_FUNDS_CARD, TIMEOUT_CARD

from .conftest import signed

pytestmark = pytest.mark.django_db

PAYMENT_FIELDS = {
    "id",
    "order_id",
    "amount",
    "currency",
    "status",
    "card_last4",
    "created_at",
    "updated_at",
}


def test_paying_a_pending_order_charges_its_total_and_marks_it_paid(
    auth_client, pay, make_order, user_id, provider
):
    order = make_order(user_id, total="42.50", currency="USD")

    response = pay(auth_client, order.order_id)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == PAYMENT_FIELDS
    assert (body["order_id"], body["amount"], body["currency"]) == (
        str(order.order_id),
        "42.50",
        "USD",
    )
    assert (body["status"], body["card_last4"]) == ("succeeded", "4242")
    order.refresh_from_db()
    assert order.status == "paid"
    assert [str(c["amount"]) for c in provider.charges] == ["42.50"]


def test_a_success_writes_payment_succeeded_with_origin_payments(auth_client, pay, order):
    body = pay(auth_client, order.order_id).json()

    event = OutboxEvent.objects.get(event_type="payment.succeeded")
    assert (event.origin, event.aggregate_id) == ("payments", body["id"])
    assert event.payload["order_id"] == str(order.order_id)
    assert event.payload["user_id"] == order.user_id
    assert event.payload["amount"] == "25.00"


def test_the_charge_reference_is_the_monoliths_so_a_retry_on_either_half_is_one_charge(
    auth_client, pay, order, provider
):
    import hashlib

    pay(auth_client, order.order_id, key="k-1")

    expected = hashlib.sha256(f"{order.user_id}:{order.order_id}:k-1".encode()).hexdigest()[:40]
    assert provider.charges[0]["reference"] == expected


@pytest.mark.parametrize(
    ("card", "decline_code"),
    [(DECLINE_CARD, "generic_decline"), (INSUFFICIENT_FUNDS_CARD, "insufficient_funds")],
)
def test_declined_card_is_a_402_with_a_failed_payment_and_a_pending_order(
    auth_client, pay, order, card, decline_code
):
    response = pay(auth_client, order.order_id, card=card)

    assert response.status_code == 402
    body = response.json()
    assert set(body) == {"error", "detail", "decline_code", "payment"}
    assert (body["error"], body["decline_code"]) == ("card_declined", decline_code)
    assert body["payment"]["status"] == "failed"
    assert Payment.objects.get().failure_reason == decline_code
    order.refresh_from_db()
    assert order.status == "pending"
    assert OutboxEvent.objects.filter(event_type="payment.failed").count() == 1


def test_provider_timeout_is_a_504_with_nothing_recorded(auth_client, pay, order):
    response = pay(auth_client, order.order_id, card=TIMEOUT_CARD)

    assert response.status_code == 504
    assert response.json()["error"] == "provider_timeout"
    assert not Payment.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("status", ["paid", "shipped", "cancelled", "refunded"])
def test_paying_an_order_that_is_not_pending_is_a_409_naming_both_states(
    auth_client, pay, make_order, user_id, provider, status
):
    order = make_order(user_id, status=status)

    response = pay(auth_client, order.order_id)

    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["from"], body["to"]) == ("invalid_transition", status, "paid")
    assert f"is '{status}', not 'pending'" in body["detail"]
    assert provider.charges == []


def test_paying_someone_elses_order_is_a_404(auth_client, pay, make_order, user_id, provider):
    stranger_order = make_order(user_id + 1)

    response = pay(auth_client, stranger_order.order_id)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert provider.charges == []


def test_paying_an_unknown_order_the_owner_cannot_confirm_is_a_503(auth_client, pay):
    response = pay(auth_client, "00000000-0000-4000-8000-000000000000")

    assert response.status_code == 503
    assert response.json()["error"] == "orders_unavailable"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "not_authenticated"),
        ({"Authorization": "Bearer unknown-token"}, "authentication_failed"),
        ({HEADER: "not-signed"}, "authentication_failed"),
        ({HEADER: signed(7, secret="someone-elses-secret-of-32-bytes")}, "authentication_failed"),
        ({HEADER: signed(7, ttl=-5)}, "authentication_failed"),
        ({HEADER: signed("seven")}, "authentication_failed"),
        # Replayed from another request: signed for another service, method or path.
        ({HEADER: signed(7, audience="monolith")}, "authentication_failed"),
        ({HEADER: signed(7, method="GET")}, "authentication_failed"),
        ({HEADER: signed(7, path="/api/payments/other/")}, "authentication_failed"),
    ],
)
def test_a_request_without_a_valid_signed_identity_is_a_401(
    api_client, order, provider, headers, code
):
    response = api_client.post(
        "/api/payments/",
        {"order_id": str(order.order_id), "card_number": "4242424242424242"},
        format="json",
        headers={"Idempotency-Key": "k", **headers},
    )

    assert response.status_code == 401
    assert response.json()["error"] == code
    assert response["WWW-Authenticate"] == "Bearer"
    assert provider.charges == []


def test_a_stale_identity_is_refused_naming_its_expiry(api_client):
    stale = signed(7, method="GET", ttl=30, now=time.time() - 120)

    response = api_client.get("/api/payments/", headers={HEADER: stale})

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_no_identity_secret_configured_refuses_every_identity(settings, auth_client):
    settings.STRANGLER_IDENTITY_SECRET = ""

    response = auth_client.get("/api/payments/")

    assert response.status_code == 401
    assert "STRANGLER_IDENTITY_SECRET" in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "required"),
        ({"Idempotency-Key": ""}, "required"),
        ({"Idempotency-Key": "k" * 256}, "256"),
        ({"Idempotency-Key": "caf\u00e9"}, "ASCII"),
    ],
)
def test_idempotency_key_header_is_required_and_bounded(auth_client, order, headers, why, provider):
    response = auth_client.post(
        "/api/payments/",
        {"order_id": str(order.order_id), "card_number": "4242424242424242"},
        format="json",
        headers=headers,
    )

    assert response.status_code == 400
    assert why in response.json()["fields"]["Idempotency-Key"][0]
    assert provider.charges == []


VALID_CARD = "4242424242424242"
ORDER = object()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"card_number": VALID_CARD}, "order_id"),
        ({"order_id": 12, "card_number": VALID_CARD}, "order_id"),
        ({"order_id": "ORDER", "card_number": VALID_CARD}, "order_id"),
        ({"order_id": ORDER, "card_number": 4242424242424242}, "card_number"),
        ({"order_id": ORDER, "card_number": "4242 4242 4242 4242"}, "card_number"),
        ({"order_id": ORDER, "card_number": "4242424242424241"}, "card_number"),
        ({"order_id": ORDER, "card_number": "42424242424"}, "card_number"),
        ({"order_id": ORDER, "card_number": VALID_CARD, "amount": "0.01"}, "amount"),
        ({"order_id": ORDER, "card_number": VALID_CARD, "surprise": True}, "surprise"),
    ],
)
def test_bad_body_is_a_400_naming_the_field(auth_client, order, provider, body, field):
    body = {name: str(order.order_id) if value is ORDER else value for name, value in body.items()}

    response = auth_client.post(
        "/api/payments/", body, format="json", headers={"Idempotency-Key": "bad-body"}
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["fields"]
    assert provider.charges == []


def test_list_shows_only_ones_own_payments_paginated_and_filtered(
    auth_client, client_for, pay, make_order, user_id
):
    mine = [make_order(user_id) for _ in range(2)]
    pay(auth_client, mine[0].order_id)
    pay(auth_client, mine[1].order_id, card=DECLINE_CARD)
    stranger = user_id + 1
    pay(client_for(stranger), make_order(stranger).order_id)

    everything = auth_client.get("/api/payments/").json()
    failed = auth_client.get("/api/payments/?status=failed").json()
    bad = auth_client.get("/api/payments/?status=lost")

    assert set(everything) == {"count", "next", "previous", "results"}
    assert everything["count"] == 2
    assert [p["status"] for p in failed["results"]] == ["failed"]
    assert bad.status_code == 400
    assert "status" in bad.json()["fields"]


def test_someone_elses_payment_is_a_404_like_a_missing_one(
    auth_client, client_for, pay, make_order, user_id
):
    stranger = user_id + 1
    theirs = pay(client_for(stranger), make_order(stranger).order_id).json()

    assert auth_client.get(f"/api/payments/{theirs['id']}/").status_code == 404
    assert auth_client.post(f"/api/payments/{theirs['id']}/refund/").status_code == 404


def test_refund_moves_payment_and_order_and_writes_payment_refunded(
    auth_client, pay, order, provider
):
    paid = pay(auth_client, order.order_id).json()

    response = auth_client.post(f"/api/payments/{paid['id']}/refund/")
    again = auth_client.post(f"/api/payments/{paid['id']}/refund/")

    assert response.status_code == 200
    assert response.json()["status"] == "refunded"
    assert (again.status_code, again.json()["error"]) == (409, "invalid_transition")
    order.refresh_from_db()
    assert order.status == "refunded"
    assert len(provider.refunds) == 1
    event = OutboxEvent.objects.get(event_type="payment.refunded")
    assert (event.origin, event.aggregate_id) == ("payments", paid["id"])


def test_refund_of_a_failed_payment_is_a_409(auth_client, pay, order):
    failed = pay(auth_client, order.order_id, card=DECLINE_CARD).json()["payment"]

    response = auth_client.post(f"/api/payments/{failed['id']}/refund/")

    assert response.status_code == 409
    assert (response.json()["from"], response.json()["to"]) == ("failed", "refunded")


def test_refund_of_a_shipped_order_is_a_409_and_nothing_changes(auth_client, pay, order, provider):
    paid = pay(auth_client, order.order_id).json()
    OrderReplica.objects.filter(pk=order.pk).update(status="shipped")

    response = auth_client.post(f"/api/payments/{paid['id']}/refund/")

    assert response.status_code == 409
    assert (response.json()["from"], response.json()["to"]) == ("shipped", "refunded")
    assert Payment.objects.get().status == "succeeded"
    assert provider.refunds == []


def test_health_schema_and_readiness_answer(api_client):
    assert api_client.get("/healthz").json() == {"status": "ok", "service": "payments"}
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/payments/{payment_id}/refund/" in schema.json()["paths"]
    assert api_client.get("/readyz").status_code in (200, 503)
