"""Payments: paying with an Idempotency-Key, declines, timeouts, reading, listing, refunding."""

from __future__ import annotations

import functools
import uuid

import pytest

from .helpers import (
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_OK,
    CARD_TIMEOUT,
    assert_error,
    assert_page,
    new_key,
    order_total,
    race,
)

pytestmark = pytest.mark.contract

PAYMENT_KEYS = {
    "id",
    "order_id",
    "amount",
    "currency",
    "status",
    "card_last4",
    "created_at",
    "updated_at",
}


def pay_body(order_id: str, card: str = CARD_OK, **extra) -> dict:
    return {"order_id": order_id, "card_number": card, **extra}


# ---------------------------------------------------------------- pay
def test_paying_charges_the_orders_total_and_keeps_only_the_last_four_digits(customer):
    order = customer.place_order()

    response = customer.pay(order["id"], card="5555555555554444")

    assert response.status_code == 201, response.text
    payment = response.json()
    assert set(payment) == PAYMENT_KEYS
    assert uuid.UUID(payment["id"])
    assert payment["order_id"] == order["id"]
    assert payment["amount"] == order["total"] == order_total(customer.api, order["items"])
    assert payment["currency"] == order["currency"]
    assert payment["status"] == "succeeded"
    assert payment["card_last4"] == "4444"
    assert "5555555555554444" not in response.text


def test_paying_needs_a_token(api, customer):
    order = customer.place_order()

    response = api.post(
        "/api/payments/", json=pay_body(order["id"]), headers={"Idempotency-Key": new_key()}
    )

    assert_error(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    "headers", [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "k" * 256}], ids=str
)
def test_paying_without_a_usable_idempotency_key_names_the_header(customer, headers):
    order = customer.place_order()

    response = customer.api.post("/api/payments/", json=pay_body(order["id"]), headers=headers)

    assert_error(response, 400, "validation_error", fields=("Idempotency-Key",))
    assert customer.order_status(order["id"]) == "pending"


@pytest.mark.parametrize(
    "card",
    ["4242424242424241", "4242 4242 4242 4242", "4242-4242-4242-4242", "42424242", "abc"],
)
def test_a_card_number_that_is_not_luhn_valid_digits_is_refused(customer, card):
    order = customer.place_order()

    response = customer.pay(order["id"], card=card)

    assert_error(response, 400, "validation_error", fields=("card_number",))


def test_a_card_number_sent_as_a_json_number_is_refused(customer):
    order = customer.place_order()

    response = customer.api.post(
        "/api/payments/",
        json={"order_id": order["id"], "card_number": 4242424242424242},
        headers={"Idempotency-Key": new_key()},
    )

    assert_error(response, 400, "validation_error", fields=("card_number",))


@pytest.mark.parametrize("order_id", ["not-a-uuid", 12, None])
def test_an_order_id_that_is_not_a_uuid_string_is_refused(customer, order_id):
    response = customer.api.post(
        "/api/payments/", json=pay_body(order_id), headers={"Idempotency-Key": new_key()}
    )

    assert_error(response, 400, "validation_error", fields=("order_id",))


@pytest.mark.parametrize("field", ["amount", "currency", "tip"])
def test_a_client_cannot_choose_the_amount_or_send_unknown_fields(customer, field):
    order = customer.place_order()

    response = customer.api.post(
        "/api/payments/",
        json=pay_body(order["id"], **{field: "1.00"}),
        headers={"Idempotency-Key": new_key()},
    )

    assert_error(response, 400, "validation_error", fields=(field,))
    assert customer.payments_of(order["id"]) == []


@pytest.mark.parametrize("whose", ["someone else's", "unknown"])
def test_paying_an_order_that_is_not_yours_is_404(customer, stranger, whose):
    order_id = stranger.place_order()["id"] if whose == "someone else's" else str(uuid.uuid4())

    assert_error(customer.pay(order_id), 404, "not_found")


@pytest.mark.parametrize(
    "card,code",
    [(CARD_DECLINED, "generic_decline"), (CARD_INSUFFICIENT_FUNDS, "insufficient_funds")],
)
def test_a_declined_card_is_a_402_that_records_a_failed_payment(customer, card, code):
    order = customer.place_order()

    response = customer.pay(order["id"], card=card)

    body = assert_error(response, 402, "card_declined")
    assert body["decline_code"] == code
    assert set(body["payment"]) == PAYMENT_KEYS
    assert body["payment"]["status"] == "failed"
    assert customer.payments_of(order["id"]) == [body["payment"]]


def test_a_provider_timeout_is_a_504_that_records_nothing(customer):
    order = customer.place_order()

    response = customer.pay(order["id"], card=CARD_TIMEOUT)

    assert_error(response, 504, "provider_timeout")
    assert customer.payments_of(order["id"]) == []
    assert customer.order_status(order["id"]) == "pending"


def test_a_key_that_timed_out_is_not_stored_and_may_be_retried(customer):
    order = customer.place_order()
    key = new_key()
    customer.pay(order["id"], card=CARD_TIMEOUT, key=key)

    response = customer.pay(order["id"], card=CARD_OK, key=key)

    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers


# ---------------------------------------------------------------- idempotency
def test_the_same_key_and_body_replays_the_first_answer_and_charges_once(customer):
    order = customer.place_order()
    key = new_key()
    first = customer.pay(order["id"], key=key)

    again = customer.pay(order["id"], key=key)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [p["id"] for p in customer.payments_of(order["id"])] == [first.json()["id"]]


def test_an_order_id_in_upper_case_is_the_same_request(customer):
    order = customer.place_order()
    key = new_key()
    first = customer.pay(order["id"], key=key)

    again = customer.pay(order["id"].upper(), key=key)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert len(customer.payments_of(order["id"])) == 1


def test_a_declined_answer_is_replayed_for_its_key(customer):
    order = customer.place_order()
    key = new_key()
    first = customer.pay(order["id"], card=CARD_DECLINED, key=key)

    again = customer.pay(order["id"], card=CARD_DECLINED, key=key)

    assert first.status_code == again.status_code == 402
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(customer.payments_of(order["id"])) == 1


@pytest.mark.parametrize("change", ["another card", "another order"])
def test_the_same_key_with_a_different_body_is_a_422(customer, change):
    order = customer.place_order()
    key = new_key()
    customer.pay(order["id"], key=key)
    if change == "another card":
        response = customer.pay(order["id"], card="5555555555554444", key=key)
    else:
        response = customer.pay(customer.place_order()["id"], key=key)

    assert_error(response, 422, "idempotency_key_reused")
    assert len(customer.payments_of(order["id"])) == 1


def test_a_key_belongs_to_its_user(customer, stranger):
    key = new_key()
    mine = customer.pay(customer.place_order()["id"], key=key)

    theirs = stranger.pay(stranger.place_order()["id"], key=key)

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


# Each race runs a few rounds: one round can miss a lost update that the next one catches.
RACE_ROUNDS = 5


def test_concurrent_requests_with_one_key_charge_once_and_all_get_the_answer(customer):
    for _ in range(RACE_ROUNDS):
        order = customer.place_order()
        key = new_key()

        answers = race(functools.partial(customer.pay, order["id"], key=key), times=3)

        assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
        assert len({a.content for a in answers}) == 1
        assert len(customer.payments_of(order["id"])) == 1


def test_two_concurrent_payments_of_one_order_exactly_one_wins(customer):
    for _ in range(RACE_ROUNDS):
        order = customer.place_order()

        answers = race(functools.partial(customer.pay, order["id"]), times=2)

        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        assert len(customer.payments_of(order["id"])) == 1


# ---------------------------------------------------------------- orders that cannot be paid
def test_paying_a_paid_order_again_is_a_409_naming_its_state(customer):
    order = customer.place_order()
    customer.pay(order["id"])

    body = assert_error(customer.pay(order["id"]), 409, "invalid_transition")
    assert (body["from"], body["to"]) == ("paid", "paid")
    assert len(customer.payments_of(order["id"])) == 1


def test_paying_a_cancelled_order_is_a_409(customer):
    order = customer.place_order()
    customer.api.post(f"/api/orders/{order['id']}/cancel/")

    body = assert_error(customer.pay(order["id"]), 409, "invalid_transition")
    assert (body["from"], body["to"]) == ("cancelled", "paid")
    assert customer.payments_of(order["id"]) == []


# ---------------------------------------------------------------- read and list
def test_the_owner_reads_a_payment(customer):
    payment = customer.pay(customer.place_order()["id"]).json()

    response = customer.api.get(f"/api/payments/{payment['id']}/")

    assert response.status_code == 200
    assert response.json() == payment


@pytest.mark.parametrize("kind", ["someone else's", "unknown", "malformed"])
def test_a_payment_that_is_not_yours_is_404(customer, stranger, kind):
    payment_id = {
        "someone else's": lambda: stranger.pay(stranger.place_order()["id"]).json()["id"],
        "unknown": lambda: str(uuid.uuid4()),
        "malformed": lambda: "not-a-uuid",
    }[kind]()

    assert_error(customer.api.get(f"/api/payments/{payment_id}/"), 404, "not_found")
    assert_error(customer.api.post(f"/api/payments/{payment_id}/refund/"), 404, "not_found")


def test_reading_payments_needs_a_token(api, customer):
    payment = customer.pay(customer.place_order()["id"]).json()

    assert_error(api.get("/api/payments/"), 401, "not_authenticated")
    assert_error(api.get(f"/api/payments/{payment['id']}/"), 401, "not_authenticated")
    assert_error(api.post(f"/api/payments/{payment['id']}/refund/"), 401, "not_authenticated")
    bad = api.with_token("0" * 40)
    assert_error(bad.get("/api/payments/"), 401, "authentication_failed")


def test_the_list_shows_only_ones_own_payments_newest_first_as_a_page(customer, stranger):
    failed = customer.pay(customer.place_order()["id"], card=CARD_DECLINED).json()["payment"]
    paid = customer.pay(customer.place_order()["id"]).json()
    stranger.pay(stranger.place_order()["id"])

    body = customer.api.get("/api/payments/").json()

    assert_page(body)
    assert [p["id"] for p in body["results"]] == [paid["id"], failed["id"]]
    assert body["count"] == 2
    assert body["next"] is None and body["previous"] is None


def test_the_list_filters_by_status_and_order(customer):
    declined_order = customer.place_order()
    failed = customer.pay(declined_order["id"], card=CARD_DECLINED).json()["payment"]
    paid = customer.pay(customer.place_order()["id"]).json()

    by_status = customer.api.get("/api/payments/", params={"status": "failed"}).json()
    by_order = customer.api.get("/api/payments/", params={"order_id": paid["order_id"]}).json()

    assert [p["id"] for p in by_status["results"]] == [failed["id"]]
    assert [p["id"] for p in by_order["results"]] == [paid["id"]]


@pytest.mark.parametrize("params", [{"status": "lost"}, {"order_id": "nope"}], ids=str)
def test_a_bad_list_filter_is_named(customer, params):
    response = customer.api.get("/api/payments/", params=params)

    assert_error(response, 400, "validation_error", fields=tuple(params))


def test_a_payments_page_past_the_end_is_404(customer):
    assert_error(customer.api.get("/api/payments/", params={"page": 2}), 404, "not_found")


# ---------------------------------------------------------------- refund
def test_refunding_a_payment_marks_it_refunded(customer):
    payment = customer.pay(customer.place_order()["id"]).json()

    response = customer.api.post(f"/api/payments/{payment['id']}/refund/")

    assert response.status_code == 200, response.text
    refunded = response.json()
    assert refunded["status"] == "refunded"
    assert refunded["id"] == payment["id"] and refunded["amount"] == payment["amount"]
    assert customer.api.get(f"/api/payments/{payment['id']}/").json()["status"] == "refunded"


def test_refunding_twice_refunds_once(customer):
    payment = customer.pay(customer.place_order()["id"]).json()
    customer.api.post(f"/api/payments/{payment['id']}/refund/")

    response = customer.api.post(f"/api/payments/{payment['id']}/refund/")

    assert_error(response, 409, "invalid_transition")


def test_a_failed_payment_cannot_be_refunded(customer):
    order = customer.place_order()
    failed = customer.pay(order["id"], card=CARD_DECLINED).json()["payment"]

    response = customer.api.post(f"/api/payments/{failed['id']}/refund/")

    assert_error(response, 409, "invalid_transition")
    assert customer.order_status(order["id"]) == "pending"


def test_replaying_the_key_of_a_refunded_payment_returns_the_original_201(customer):
    order = customer.place_order()
    key = new_key()
    first = customer.pay(order["id"], key=key)
    customer.api.post(f"/api/payments/{first.json()['id']}/refund/")

    again = customer.pay(order["id"], key=key)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["status"] == "succeeded"


def test_a_key_whose_request_was_refused_is_not_used_up(customer, stranger):
    key = new_key()
    refused = customer.pay(stranger.place_order()["id"], key=key)
    order = customer.place_order()

    response = customer.pay(order["id"], key=key)

    assert refused.status_code == 404
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers


def test_the_409_for_an_unpayable_order_says_which_state_it_is_in(customer):
    order = customer.place_order()
    customer.api.post(f"/api/orders/{order['id']}/cancel/")

    body = assert_error(customer.pay(order["id"]), 409, "invalid_transition")

    assert "'cancelled'" in body["detail"] and "pending" in body["detail"]
