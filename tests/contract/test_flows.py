"""Flows across users, orders and payments: what a shopper sees from order to refund.

Effects that cross a service boundary (an order that shows `paid` after its payment) are
awaited with `eventually`: in the monolith they are immediate, but once payments is extracted
they arrive by event, and the contract is only that they arrive.
"""

from __future__ import annotations

import pytest

from .helpers import CARD_DECLINED, CARD_TIMEOUT, assert_error, catalogue, eventually, order_total

pytestmark = pytest.mark.contract


def status_becomes(customer, order_id: str, expected: str) -> None:
    """Wait, boundedly, until the order reads `expected`."""

    def check() -> None:
        assert customer.order_status(order_id) == expected

    eventually(check, timeout=10)


def test_place_pay_and_the_order_shows_paid(customer):
    first, second = catalogue(customer.api)[:2]
    items = [{"sku": first["sku"], "quantity": 3}, {"sku": second["sku"], "quantity": 1}]
    order = customer.place_order(items)

    payment = customer.pay(order["id"])

    assert payment.status_code == 201, payment.text
    assert payment.json()["amount"] == order["total"] == order_total(customer.api, items)
    status_becomes(customer, order["id"], "paid")
    paid = customer.api.get("/api/orders/", params={"status": "paid"}).json()
    assert [o["id"] for o in paid["results"]] == [order["id"]]


def test_refund_and_the_order_shows_refunded(customer):
    order = customer.place_order()
    payment = customer.pay(order["id"]).json()
    status_becomes(customer, order["id"], "paid")

    response = customer.api.post(f"/api/payments/{payment['id']}/refund/")

    assert response.status_code == 200, response.text
    status_becomes(customer, order["id"], "refunded")
    assert customer.payments_of(order["id"])[0]["status"] == "refunded"


def test_a_cancelled_order_cannot_be_paid_and_is_never_charged(customer):
    order = customer.place_order()
    cancelled = customer.api.post(f"/api/orders/{order['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"

    response = customer.pay(order["id"])

    assert_error(response, 409, "invalid_transition")
    assert customer.order_status(order["id"]) == "cancelled"
    assert customer.payments_of(order["id"]) == []


def test_a_paid_order_cannot_be_cancelled(customer):
    order = customer.place_order()
    customer.pay(order["id"])
    status_becomes(customer, order["id"], "paid")

    response = customer.api.post(f"/api/orders/{order['id']}/cancel/")

    body = assert_error(response, 409, "invalid_transition")
    assert (body["from"], body["to"]) == ("paid", "cancelled")


def test_a_declined_card_leaves_the_order_pending_and_another_card_pays_it(customer):
    order = customer.place_order()

    declined = customer.pay(order["id"], card=CARD_DECLINED)

    assert declined.status_code == 402
    assert customer.order_status(order["id"]) == "pending"
    paid = customer.pay(order["id"])
    assert paid.status_code == 201, paid.text
    status_becomes(customer, order["id"], "paid")
    statuses = sorted(p["status"] for p in customer.payments_of(order["id"]))
    assert statuses == ["failed", "succeeded"]


def test_a_provider_timeout_leaves_the_order_pending_and_cancellable(customer):
    order = customer.place_order()

    assert customer.pay(order["id"], card=CARD_TIMEOUT).status_code == 504

    assert customer.order_status(order["id"]) == "pending"
    cancelled = customer.api.post(f"/api/orders/{order['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_staff_ship_a_paid_order_and_it_can_no_longer_be_refunded(staff, customer):
    order = customer.place_order()
    payment = customer.pay(order["id"]).json()
    status_becomes(customer, order["id"], "paid")

    shipped = staff.post(f"/api/orders/{order['id']}/ship/")

    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "shipped"
    status_becomes(customer, order["id"], "shipped")
    refused = customer.api.post(f"/api/payments/{payment['id']}/refund/")
    assert_error(refused, 409, "invalid_transition")
    assert customer.api.get(f"/api/payments/{payment['id']}/").json()["status"] == "succeeded"


def test_a_refunded_order_cannot_be_paid_again_or_shipped(staff, customer):
    order = customer.place_order()
    payment = customer.pay(order["id"]).json()
    customer.api.post(f"/api/payments/{payment['id']}/refund/")
    status_becomes(customer, order["id"], "refunded")

    repay = customer.pay(order["id"])
    ship = staff.post(f"/api/orders/{order['id']}/ship/")

    assert assert_error(repay, 409, "invalid_transition")["from"] == "refunded"
    assert assert_error(ship, 409, "invalid_transition")["from"] == "refunded"


def test_one_shoppers_flow_is_invisible_to_another(customer, stranger):
    order = customer.place_order()
    payment = customer.pay(order["id"]).json()

    assert stranger.api.get("/api/orders/").json()["count"] == 0
    assert stranger.api.get("/api/payments/").json()["count"] == 0
    assert_error(stranger.api.get(f"/api/orders/{order['id']}/"), 404, "not_found")
    assert_error(stranger.api.get(f"/api/payments/{payment['id']}/"), 404, "not_found")
    assert_error(stranger.pay(order["id"]), 404, "not_found")
