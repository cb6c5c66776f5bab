"""Attack: a customer names their own price, so a paid order costs 0.00.

Against the monolith (gunicorn, PostgreSQL) behind the proxy, as shipped: prices come only from
the public catalogue, a sent `unit_price` is refused, and what is charged is the catalogue's.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import requests

from .halves_stack import bearer, register_and_login
from .halves_stack import stack as stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def shopper(stack):
    token = register_and_login(
        stack.proxy_url, f"shopper-{uuid.uuid4().hex[:8]}@example.com", "s3cret-Passw0rd-shop"
    )
    return bearer(token)


@pytest.fixture(scope="module")
def product(stack):
    page = requests.get(f"{stack.proxy_url}/api/products/", timeout=10)
    assert page.status_code == 200, page.text
    return page.json()["results"][0]


@pytest.mark.parametrize("price", ["0.00", "0.01", 0, "-5.00"], ids=repr)
def test_a_customer_naming_their_own_price_gets_a_400_and_no_order(stack, shopper, price):
    # MUG-FIG is in the demo catalogue every new database holds (12.50).
    line = {"sku": "MUG-FIG", "quantity": 3, "unit_price": price}

    response = requests.post(
        f"{stack.proxy_url}/api/orders/", json={"items": [line]}, headers=shopper, timeout=10
    )

    assert response.status_code == 400, response.text
    assert list(response.json()["fields"]["items"]["0"]) == ["unit_price"]
    orders = requests.get(f"{stack.proxy_url}/api/orders/", headers=shopper, timeout=10).json()
    assert all(order["total"] != "0.00" for order in orders["results"])


def test_what_is_charged_is_the_catalogue_price(stack, shopper, product):
    placed = requests.post(
        f"{stack.proxy_url}/api/orders/",
        json={"items": [{"sku": product["sku"], "quantity": 3}]},
        headers=shopper,
        timeout=10,
    )
    assert placed.status_code == 201, placed.text
    expected = f"{Decimal(product['unit_price']) * 3:.2f}"
    assert placed.json()["total"] == expected
    assert placed.json()["items"][0]["unit_price"] == product["unit_price"]

    paid = requests.post(
        f"{stack.proxy_url}/api/payments/",
        json={"order_id": placed.json()["id"], "card_number": "4242424242424242"},
        headers=shopper | {"Idempotency-Key": uuid.uuid4().hex},
        timeout=15,
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["amount"] == expected


def test_a_made_up_sku_cannot_be_ordered(stack, shopper):
    response = requests.post(
        f"{stack.proxy_url}/api/orders/",
        json={"items": [{"sku": "FREE-YACHT", "quantity": 1}]},
        headers=shopper,
        timeout=10,
    )

    assert response.status_code == 400, response.text
    assert response.json()["fields"] == {"items": {"0": {"sku": ["Unknown sku 'FREE-YACHT'."]}}}
