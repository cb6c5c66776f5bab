"""POST /api/payments/: paying an order, and every way that can go wrong."""

from __future__ import annotations

import pytest

from monolith.orders.models import Order
from monolith.payments.models import Payment
from monolith.payments.provider import DECLINE_CARD, INSUFFICIENT_FUNDS_CARD, TIMEOUT_CARD

pytestmark = pytest.mark.django_db


def test_paying_a_pending_order_charges_its_total_and_marks_it_paid(
    auth_client, pay, make_order, user, provider
):
    order = make_order(user, total="42.50", currency="USD")

    response = pay(auth_client, order.id)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {
        "id",
        "order_id",
        "amount",
        "currency",
        "status",
        "card_last4",
        "created_at",
        "updated_at",
    }
    assert body["order_id"] == str(order.id)
    assert body["amount"] == "42.50"
    assert body["currency"] == "USD"
    assert body["status"] == "succeeded"
    assert body["card_last4"] == "4242"
    order.refresh_from_db()
    assert order.status == "paid"
    assert [str(c["amount"]) for c in provider.charges] == ["42.50"]
    assert provider.charges[0]["currency"] == "USD"


def test_the_full_card_number_is_never_stored(auth_client, pay, order):
    pay(auth_client, order.id)

    payment = Payment.objects.get()
    stored = " ".join(str(getattr(payment, f.attname)) for f in Payment._meta.fields)
    assert "4242424242424242" not in stored
    assert payment.card_last4 == "4242"


@pytest.mark.parametrize(
    ("card", "decline_code"),
    [(DECLINE_CARD, "generic_decline"), (INSUFFICIENT_FUNDS_CARD, "insufficient_funds")],
)
def test_declined_card_is_a_402_with_a_failed_payment_and_a_pending_order(
    auth_client, pay, order, card, decline_code
):
    response = pay(auth_client, order.id, card=card)

    assert response.status_code == 402
    body = response.json()
    assert body["error"] == "card_declined"
    assert body["decline_code"] == decline_code
    assert body["payment"]["status"] == "failed"
    payment = Payment.objects.get()
    assert str(payment.id) == body["payment"]["id"]
    assert payment.status == "failed"
    assert payment.failure_reason == decline_code
    order.refresh_from_db()
    assert order.status == "pending"


def test_order_can_be_paid_after_a_decline(auth_client, pay, order):
    assert pay(auth_client, order.id, card=DECLINE_CARD).status_code == 402

    response = pay(auth_client, order.id)

    assert response.status_code == 201
    assert sorted(Payment.objects.values_list("status", flat=True)) == ["failed", "succeeded"]


def test_provider_timeout_is_a_504_with_nothing_recorded(auth_client, pay, order):
    response = pay(auth_client, order.id, card=TIMEOUT_CARD)

    assert response.status_code == 504
    assert response.json()["error"] == "provider_timeout"
    assert not Payment.objects.exists()
    order.refresh_from_db()
    assert order.status == "pending"


@pytest.mark.parametrize("status", ["paid", "shipped", "cancelled", "refunded"])
def test_paying_an_order_that_is_not_pending_is_a_409_naming_both_states(
    auth_client, pay, make_order, user, provider, status
):
    order = make_order(user, status=status)

    response = pay(auth_client, order.id)

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "invalid_transition"
    assert (body["from"], body["to"]) == (status, "paid")
    assert f"is '{status}', not 'pending'" in body["detail"]
    assert provider.charges == []
    assert Order.objects.get(pk=order.pk).status == status


def test_paying_someone_elses_order_is_a_404(auth_client, pay, make_order, make_user, provider):
    stranger_order = make_order(make_user())

    response = pay(auth_client, stranger_order.id)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert provider.charges == []
    stranger_order.refresh_from_db()
    assert stranger_order.status == "pending"


def test_paying_an_unknown_order_is_a_404(auth_client, pay):
    response = pay(auth_client, "00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_paying_without_a_token_is_a_401(api_client, pay, order):
    response = pay(api_client, order.id)

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "required"),
        ({"Idempotency-Key": ""}, "required"),
        ({"Idempotency-Key": "k" * 256}, "256"),
        ({"Idempotency-Key": "caf\u00e9"}, "ASCII"),
        ({"Idempotency-Key": "tab\there"}, "ASCII"),
    ],
)
def test_idempotency_key_header_is_required_and_bounded(auth_client, order, headers, why, provider):
    response = auth_client.post(
        "/api/payments/",
        {"order_id": str(order.id), "card_number": "4242424242424242"},
        format="json",
        headers=headers,
    )

    assert response.status_code == 400
    body = response.json()
    assert why in body["fields"]["Idempotency-Key"][0]
    assert provider.charges == []


def test_idempotency_key_of_255_characters_is_accepted(auth_client, pay, order):
    assert pay(auth_client, order.id, key="k" * 255).status_code == 201


VALID_CARD = "4242424242424242"
ORDER = object()  # stands for the id of a real pending order of the caller


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"card_number": VALID_CARD}, "order_id"),
        ({"order_id": "ORDER", "card_number": VALID_CARD}, "order_id"),
        ({"order_id": None, "card_number": VALID_CARD}, "order_id"),
        ({"order_id": 12, "card_number": VALID_CARD}, "order_id"),
        ({"order_id": ["x"], "card_number": VALID_CARD}, "order_id"),
        ({"order_id": ORDER}, "card_number"),
        ({"order_id": ORDER, "card_number": 4242424242424242}, "card_number"),
        ({"order_id": ORDER, "card_number": None}, "card_number"),
        ({"order_id": ORDER, "card_number": ""}, "card_number"),
        ({"order_id": ORDER, "card_number": "4242 4242 4242 4242"}, "card_number"),
        ({"order_id": ORDER, "card_number": "4242-4242-4242-4242"}, "card_number"),
        ({"order_id": ORDER, "card_number": "42424242424"}, "card_number"),
        ({"order_id": ORDER, "card_number": "42424242424242424242"}, "card_number"),
        ({"order_id": ORDER, "card_number": "4242424242424241"}, "card_number"),
        ({"order_id": ORDER, "card_number": "\uff14" * 16}, "card_number"),
        ({"order_id": ORDER, "card_number": {"n": 1}}, "card_number"),
        ({"order_id": ORDER, "card_number": VALID_CARD, "amount": "0.01"}, "amount"),
        ({"order_id": ORDER, "card_number": VALID_CARD, "currency": "USD"}, "currency"),
        ({"order_id": ORDER, "card_number": VALID_CARD, "surprise": True}, "surprise"),
    ],
)
def test_bad_body_is_a_400_naming_the_field(auth_client, order, provider, body, field):
    body = {name: str(order.id) if value is ORDER else value for name, value in body.items()}

    response = auth_client.post(
        "/api/payments/", body, format="json", headers={"Idempotency-Key": "bad-body"}
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["fields"]
    assert provider.charges == []
    order.refresh_from_db()
    assert order.status == "pending"


def test_client_sent_amount_is_refused_with_a_reason(auth_client, pay, order):
    response = pay(auth_client, order.id, amount="0.01")

    assert response.status_code == 400
    assert "order's total" in response.json()["fields"]["amount"][0]


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("[1, 2]", "application/json"),
        ('"just a string"', "application/json"),
        ("{not json", "application/json"),
        ("order_id=1", "application/x-www-form-urlencoded"),
    ],
)
def test_body_that_is_not_a_json_object_is_a_4xx(auth_client, raw, content_type):
    response = auth_client.post(
        "/api/payments/", raw, content_type=content_type, headers={"Idempotency-Key": "raw"}
    )

    assert response.status_code in {400, 415}
    assert "error" in response.json()


def test_other_valid_card_numbers_succeed(auth_client, pay, order):
    # 5555555555554444 is a Luhn-valid Mastercard test number outside the special cards.
    response = pay(auth_client, order.id, card="5555555555554444")

    assert response.status_code == 201
    assert response.json()["card_last4"] == "4444"
