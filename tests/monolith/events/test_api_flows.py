"""Whole API flows produce each aggregate's events in order, correlated per request."""

from __future__ import annotations

import uuid

import pytest

from monolith.correlation import request_correlation_id
from monolith.payments.models import Payment
from monolith.payments.provider import TIMEOUT_CARD

from .conftest import DECLINE_CARD, ITEMS, SUCCEED_CARD, assert_valid, events, types

pytestmark = pytest.mark.django_db


def _place(client, request_id: str) -> str:
    response = client.post("/api/orders/", {"items": ITEMS}, headers={"X-Request-ID": request_id})
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def _pay(client, order_id: str, request_id: str, card: str = SUCCEED_CARD):
    return client.post(
        "/api/payments/",
        {"order_id": order_id, "card_number": card},
        headers={"Idempotency-Key": uuid.uuid4().hex, "X-Request-ID": request_id},
    )


def test_register_then_edit_profile_emits_registered_then_updated(api_client, client_for):
    response = api_client.post(
        "/api/users/",
        {"email": "flow@example.com", "password": "s3cret-Passw0rd", "full_name": "Flo"},
        headers={"X-Request-ID": "req-register"},
    )
    assert response.status_code == 201, response.json()
    user_id = response.json()["id"]
    from monolith.users.models import User

    client = client_for(User.objects.get(pk=user_id))
    assert client.patch("/api/users/me/", {"full_name": "Flo R"}).status_code == 200
    assert client.patch("/api/users/me/", {"full_name": "Flo R"}).status_code == 200

    rows = [row for row in events("user", user_id) if row.event_type != "user.token_issued"]
    assert types(rows) == ["user.registered", "user.updated"]
    assert [r.sequence for r in rows] == [1, 3]  # 2: the token client_for logged in with
    assert rows[0].correlation_id == "req-register"
    assert rows[1].payload["changed"] == ["full_name"]


def test_place_pay_refund_emits_each_aggregates_events_in_order(auth_client):
    order_id = _place(auth_client, "req-place")
    paid = _pay(auth_client, order_id, "req-pay")
    assert paid.status_code == 201, paid.json()
    payment_id = paid.json()["id"]
    refund = auth_client.post(
        f"/api/payments/{payment_id}/refund/", headers={"X-Request-ID": "req-refund"}
    )
    assert refund.status_code == 200, refund.json()

    order_rows = events("order", order_id)
    payment_rows = events("payment", payment_id)
    assert [(r.event_type, r.sequence) for r in order_rows] == [
        ("order.placed", 1), ("order.paid", 2),
    ]  # fmt: skip
    assert [(r.event_type, r.sequence) for r in payment_rows] == [
        ("payment.succeeded", 1), ("payment.refunded", 2),
    ]  # fmt: skip
    # One correlation id per request; order.paid names the payment event that caused it.
    assert [r.correlation_id for r in order_rows] == ["req-place", "req-pay"]
    assert [r.correlation_id for r in payment_rows] == ["req-pay", "req-refund"]
    assert order_rows[1].causation_id == str(payment_rows[0].event_id)
    assert payment_rows[0].causation_id == ""
    for row in order_rows + payment_rows:
        assert_valid(row)


def test_a_decline_then_a_success_emits_a_failed_and_a_succeeded_payment(auth_client):
    order_id = _place(auth_client, "req-1")
    assert _pay(auth_client, order_id, "req-2", card=DECLINE_CARD).status_code == 402
    assert _pay(auth_client, order_id, "req-3").status_code == 201

    assert types(events("order", order_id)) == ["order.placed", "order.paid"]
    assert types(events("payment")) == ["payment.failed", "payment.succeeded"]
    assert all(r.sequence == 1 for r in events("payment"))  # two payments, two aggregates


def test_a_provider_timeout_records_nothing_and_emits_nothing(auth_client):
    order_id = _place(auth_client, "req-1")

    assert _pay(auth_client, order_id, "req-2", card=TIMEOUT_CARD).status_code == 504

    assert not Payment.objects.exists()
    assert types(events("order")) == ["order.placed"]
    assert not events("payment")


def test_place_then_cancel_emits_placed_then_cancelled(auth_client):
    order_id = _place(auth_client, "req-1")
    response = auth_client.post(f"/api/orders/{order_id}/cancel/")
    assert response.status_code == 200, response.json()

    rows = events("order", order_id)
    assert [(r.event_type, r.sequence) for r in rows] == [
        ("order.placed", 1), ("order.cancelled", 2),
    ]  # fmt: skip
    # Without an X-Request-ID the request still gets one correlation id of its own.
    assert rows[1].correlation_id not in ("", "req-1", str(rows[1].event_id))


@pytest.mark.parametrize("header", ["", "x" * 65, "has space", "new\nline", "ünïcode"], ids=repr)
def test_an_unusable_request_id_is_replaced_by_a_fresh_uuid(rf, header):
    correlation_id = request_correlation_id(rf.get("/", HTTP_X_REQUEST_ID=header))

    assert correlation_id != header
    assert str(uuid.UUID(correlation_id)) == correlation_id


def test_a_usable_request_id_is_the_correlation_id(rf):
    request = rf.get("/", HTTP_X_REQUEST_ID="proxy-7f3a:01.b_c")

    assert request_correlation_id(request) == "proxy-7f3a:01.b_c"
