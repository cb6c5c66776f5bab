"""Orders: placing, reading, listing, cancelling and shipping, and every documented refusal."""

from __future__ import annotations

import re
import uuid

import pytest

from .helpers import assert_error, assert_page, catalogue, order_total

pytestmark = pytest.mark.contract

ORDER_KEYS = {"id", "status", "total", "currency", "items", "created_at", "updated_at"}
LINE_KEYS = {"sku", "quantity", "unit_price", "line_total"}
PRODUCT_KEYS = {"sku", "name", "unit_price"}
MONEY = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture(scope="module")
def products(api) -> list[dict]:
    """The deployment's catalogue: what orders name."""
    return catalogue(api)


@pytest.fixture
def good_line(products) -> dict:
    return {"sku": products[0]["sku"], "quantity": 1}


# ---------------------------------------------------------------- the catalogue
def test_anyone_reads_the_catalogue_paginated_by_sku_with_two_place_prices(api):
    response = api.get("/api/products/")

    assert response.status_code == 200, response.text
    body = response.json()
    assert_page(body)
    assert body["count"] >= 2 and body["results"]
    assert all(set(product) == PRODUCT_KEYS for product in body["results"])
    assert all(MONEY.match(product["unit_price"]) for product in body["results"])
    skus = [product["sku"] for product in body["results"]]
    assert skus == sorted(skus)


def test_the_catalogue_pages_with_next_and_previous_links(api):
    first = api.get("/api/products/", params={"page_size": 1}).json()
    second = api.get(first["next"].replace(_origin(first["next"]), "")).json()

    assert first["previous"] is None and second["previous"]
    assert first["results"][0]["sku"] < second["results"][0]["sku"]


# ---------------------------------------------------------------- place
def test_placing_an_order_prices_lines_from_the_catalogue_and_totals_server_side(
    customer, products
):
    first, second = products[0], products[1]
    items = [{"sku": first["sku"], "quantity": 3}, {"sku": second["sku"], "quantity": 1}]

    response = customer.api.post("/api/orders/", json={"items": items})

    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == ORDER_KEYS
    assert uuid.UUID(order["id"])
    assert order["status"] == "pending"
    assert order["total"] == order_total(customer.api, items)
    assert re.fullmatch(r"[A-Z]{3}", order["currency"])
    assert [set(item) for item in order["items"]] == [LINE_KEYS, LINE_KEYS]
    assert order["items"][0] == {
        "sku": first["sku"],
        "quantity": 3,
        "unit_price": first["unit_price"],
        "line_total": order_total(customer.api, items[:1]),
    }
    assert order["items"][1]["unit_price"] == second["unit_price"]


@pytest.mark.parametrize("price", ["0.00", "0.01", 0, "-1"], ids=repr)
def test_a_client_naming_its_own_price_is_refused_and_nothing_is_ordered(
    customer, good_line, price
):
    response = customer.api.post(
        "/api/orders/", json={"items": [good_line | {"unit_price": price}]}
    )

    body = assert_error(response, 400, "validation_error", fields=("items",))
    assert list(body["fields"]["items"]["0"]) == ["unit_price"], body
    assert customer.api.get("/api/orders/").json()["count"] == 0


def test_an_unknown_sku_is_refused_naming_it(customer, good_line):
    unknown = f"NO-SUCH-{uuid.uuid4().hex[:8]}"

    response = customer.api.post(
        "/api/orders/", json={"items": [good_line, {"sku": unknown, "quantity": 1}]}
    )

    body = assert_error(response, 400, "validation_error", fields=("items",))
    assert body["fields"]["items"] == {"1": {"sku": [f"Unknown sku '{unknown}'."]}}, body
    assert customer.api.get("/api/orders/").json()["count"] == 0


def test_placing_an_order_needs_a_token(api, good_line):
    assert_error(api.post("/api/orders/", json={"items": [good_line]}), 401, "not_authenticated")


def test_placing_an_order_with_a_bad_token_is_401(api, good_line):
    response = api.with_token("0" * 40).post("/api/orders/", json={"items": [good_line]})

    assert_error(response, 401, "authentication_failed")


def test_an_order_without_items_names_items(customer):
    body = assert_error(
        customer.api.post("/api/orders/", json={}), 400, "validation_error", fields=("items",)
    )
    assert body["fields"]["items"] == ["This field is required."]


@pytest.mark.parametrize("items", ["empty", "101 lines", "not a list"])
def test_a_bad_list_of_items_is_refused_as_a_whole(customer, good_line, items):
    items = {"empty": [], "101 lines": [good_line] * 101, "not a list": "BOOK-1"}[items]

    response = customer.api.post("/api/orders/", json={"items": items})

    body = assert_error(response, 400, "validation_error", fields=("items",))
    assert "non_field_errors" in body["fields"]["items"]


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": 10_001}, "quantity"),
        ({"quantity": "3"}, "quantity"),
        ({"quantity": 2.5}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"sku": ""}, "sku"),
        ({"sku": "no spaces"}, "sku"),
        ({"sku": "x" * 65}, "sku"),
        ({"sku": 123}, "sku"),
        ({"sku": None}, "sku"),
        ({"unit_price": "9.99"}, "unit_price"),
        ({"line_total": "9.99"}, "line_total"),
    ],
    ids=repr,
)
def test_a_bad_line_is_named_by_its_index_and_field(customer, good_line, changes, field):
    bad_line = {k: v for k, v in (good_line | changes).items() if v is not None}

    response = customer.api.post("/api/orders/", json={"items": [good_line, bad_line]})

    body = assert_error(response, 400, "validation_error", fields=("items",))
    assert set(body["fields"]["items"]) == {"1"}, body
    assert field in body["fields"]["items"]["1"], body


@pytest.mark.parametrize("field", ["id", "user", "status", "total", "currency", "created_at"])
def test_a_server_owned_order_field_is_refused_not_ignored(customer, good_line, field):
    response = customer.api.post("/api/orders/", json={"items": [good_line], field: "x"})

    assert_error(response, 400, "validation_error", fields=(field,))
    assert customer.api.get("/api/orders/").json()["count"] == 0


def test_nan_in_an_order_is_a_malformed_request(customer):
    response = customer.api.post(
        "/api/orders/",
        data=b'{"items": [{"sku": "A", "quantity": NaN}]}',
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 400, "malformed_request")


def test_an_order_sent_as_a_form_is_an_unsupported_media_type(customer):
    response = customer.api.post("/api/orders/", data={"items": "x"})

    assert_error(response, 415, "unsupported_media_type")


def test_an_order_over_one_mebibyte_is_too_large(customer):
    response = customer.api.post(
        "/api/orders/",
        data=b'{"items": [], "pad": "' + b"x" * 1_100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 413, "payload_too_large")


# ---------------------------------------------------------------- read
def test_the_owner_reads_the_order_as_placed(customer):
    order = customer.place_order()

    response = customer.api.get(f"/api/orders/{order['id']}/")

    assert response.status_code == 200
    assert response.json() == order


@pytest.mark.parametrize("kind", ["someone else's", "unknown", "malformed"])
def test_an_order_that_is_not_yours_is_404_like_one_that_does_not_exist(customer, stranger, kind):
    order_id = {
        "someone else's": lambda: stranger.place_order()["id"],
        "unknown": lambda: str(uuid.uuid4()),
        "malformed": lambda: "not-a-uuid",
    }[kind]()

    assert_error(customer.api.get(f"/api/orders/{order_id}/"), 404, "not_found")
    assert_error(customer.api.post(f"/api/orders/{order_id}/cancel/"), 404, "not_found")


def test_reading_an_order_needs_a_token(api, customer):
    order = customer.place_order()

    assert_error(api.get(f"/api/orders/{order['id']}/"), 401, "not_authenticated")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_orders_cannot_be_edited_or_deleted(customer, method):
    order = customer.place_order()

    response = getattr(customer.api, method)(f"/api/orders/{order['id']}/", json={"items": []})

    assert_error(response, 405, "method_not_allowed")
    assert customer.order(order["id"]) == order


# ---------------------------------------------------------------- list
def test_the_list_shows_only_ones_own_orders_newest_first(customer, stranger):
    first = customer.place_order()
    second = customer.place_order()
    stranger.place_order()

    response = customer.api.get("/api/orders/")

    assert response.status_code == 200
    body = response.json()
    assert_page(body)
    assert body["count"] == 2
    assert [order["id"] for order in body["results"]] == [second["id"], first["id"]]


def test_the_list_pages_with_next_and_previous_links(customer):
    placed = [customer.place_order()["id"] for _ in range(3)]

    first = customer.api.get("/api/orders/", params={"page_size": 2}).json()
    second = customer.api.get(first["next"].replace(_origin(first["next"]), "")).json()

    assert_page(first)
    assert first["count"] == 3 and first["previous"] is None and first["next"]
    assert second["next"] is None and second["previous"]
    ids = [o["id"] for o in first["results"]] + [o["id"] for o in second["results"]]
    assert ids == placed[::-1]


def test_a_page_past_the_end_is_404(customer):
    customer.place_order()

    assert_error(customer.api.get("/api/orders/", params={"page": 2}), 404, "not_found")


def test_the_list_filters_by_status(customer):
    kept = customer.place_order()
    cancelled = customer.place_order()
    customer.api.post(f"/api/orders/{cancelled['id']}/cancel/")

    pending = customer.api.get("/api/orders/", params={"status": "pending"}).json()
    gone = customer.api.get("/api/orders/", params={"status": "cancelled"}).json()
    unfiltered = customer.api.get("/api/orders/", params={"status": ""}).json()

    assert [o["id"] for o in pending["results"]] == [kept["id"]]
    assert [o["id"] for o in gone["results"]] == [cancelled["id"]]
    assert unfiltered["count"] == 2


def test_an_unknown_status_filter_names_status(customer):
    response = customer.api.get("/api/orders/", params={"status": "lost"})

    assert_error(response, 400, "validation_error", fields=("status",))


def test_listing_orders_needs_a_token(api):
    assert_error(api.get("/api/orders/"), 401, "not_authenticated")


# ---------------------------------------------------------------- cancel and ship
def test_the_owner_cancels_a_pending_order(customer):
    order = customer.place_order()

    response = customer.api.post(f"/api/orders/{order['id']}/cancel/")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert customer.order_status(order["id"]) == "cancelled"


def test_cancelling_twice_is_a_409_naming_both_states(customer):
    order = customer.place_order()
    customer.api.post(f"/api/orders/{order['id']}/cancel/")

    response = customer.api.post(f"/api/orders/{order['id']}/cancel/")

    body = assert_error(response, 409, "invalid_transition")
    assert (body["from"], body["to"]) == ("cancelled", "cancelled")


def test_a_customer_may_not_ship(customer):
    order = customer.place_order()

    assert_error(customer.api.post(f"/api/orders/{order['id']}/ship/"), 403, "permission_denied")
    assert_error(customer.api.post(f"/api/orders/{uuid.uuid4()}/ship/"), 403, "permission_denied")


def test_staff_cannot_ship_a_pending_order(staff, customer):
    order = customer.place_order()

    body = assert_error(staff.post(f"/api/orders/{order['id']}/ship/"), 409, "invalid_transition")
    assert (body["from"], body["to"]) == ("pending", "shipped")


def test_staff_shipping_an_unknown_order_is_404(staff):
    assert_error(staff.post(f"/api/orders/{uuid.uuid4()}/ship/"), 404, "not_found")


def test_staff_cannot_read_a_customers_order_on_the_customer_endpoint(staff, customer):
    order = customer.place_order()

    assert_error(staff.get(f"/api/orders/{order['id']}/"), 404, "not_found")


def _origin(url: str) -> str:
    """Return scheme://host:port of an absolute link, so it can be followed on any base URL."""
    return re.match(r"^[a-z]+://[^/]+", url).group(0)


def test_staff_cannot_cancel_a_customers_order(staff, customer):
    order = customer.place_order()

    assert_error(staff.post(f"/api/orders/{order['id']}/cancel/"), 404, "not_found")
    assert customer.order_status(order["id"]) == "pending"
