"""Orders: placing, reading, listing, cancelling and shipping, and every documented refusal."""

from __future__ import annotations

import re
import uuid

import pytest

from .helpers import assert_error, assert_page

pytestmark = pytest.mark.contract

ORDER_KEYS = {"id", "status", "total", "currency", "items", "created_at", "updated_at"}
LINE_KEYS = {"sku", "quantity", "unit_price", "line_total"}
LINE = {"sku": "BOOK-1", "quantity": 1, "unit_price": "9.99"}


def line(**changes) -> dict:
    return LINE | changes


# ---------------------------------------------------------------- place
def test_placing_an_order_computes_lines_and_total_server_side(customer):
    response = customer.api.post(
        "/api/orders/",
        json={
            "items": [
                {"sku": "BOOK-1", "quantity": 3, "unit_price": "9.99"},
                {"sku": "pen_2.blue", "quantity": 1, "unit_price": 0.1},
            ]
        },
    )

    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == ORDER_KEYS
    assert uuid.UUID(order["id"])
    assert order["status"] == "pending"
    assert order["total"] == "30.07"
    assert re.fullmatch(r"[A-Z]{3}", order["currency"])
    assert [set(item) for item in order["items"]] == [LINE_KEYS, LINE_KEYS]
    assert order["items"][0] == {
        "sku": "BOOK-1",
        "quantity": 3,
        "unit_price": "9.99",
        "line_total": "29.97",
    }
    assert order["items"][1]["unit_price"] == "0.10"
    assert order["items"][1]["line_total"] == "0.10"


def test_placing_an_order_needs_a_token(api):
    assert_error(api.post("/api/orders/", json={"items": [LINE]}), 401, "not_authenticated")


def test_placing_an_order_with_a_bad_token_is_401(api):
    response = api.with_token("0" * 40).post("/api/orders/", json={"items": [LINE]})

    assert_error(response, 401, "authentication_failed")


def test_an_order_without_items_names_items(customer):
    body = assert_error(
        customer.api.post("/api/orders/", json={}), 400, "validation_error", fields=("items",)
    )
    assert body["fields"]["items"] == ["This field is required."]


@pytest.mark.parametrize(
    "items", [[], [LINE] * 101, "BOOK-1"], ids=["empty", "101 lines", "not a list"]
)
def test_a_bad_list_of_items_is_refused_as_a_whole(customer, items):
    response = customer.api.post("/api/orders/", json={"items": items})

    body = assert_error(response, 400, "validation_error", fields=("items",))
    assert "non_field_errors" in body["fields"]["items"]


@pytest.mark.parametrize(
    "bad_line,field",
    [
        (line(quantity=0), "quantity"),
        (line(quantity=10_001), "quantity"),
        (line(quantity="3"), "quantity"),
        (line(quantity=2.5), "quantity"),
        (line(quantity=True), "quantity"),
        (line(sku=""), "sku"),
        (line(sku="no spaces"), "sku"),
        (line(sku="x" * 65), "sku"),
        (line(sku=123), "sku"),
        (line(unit_price="-1"), "unit_price"),
        (line(unit_price="abc"), "unit_price"),
        (line(unit_price="1.001"), "unit_price"),
        (line(unit_price="123456789.00"), "unit_price"),
        ({"sku": "BOOK-1", "quantity": 1}, "unit_price"),
        (line(line_total="9.99"), "line_total"),
    ],
)
def test_a_bad_line_is_named_by_its_index_and_field(customer, bad_line, field):
    response = customer.api.post("/api/orders/", json={"items": [LINE, bad_line]})

    body = assert_error(response, 400, "validation_error", fields=("items",))
    assert set(body["fields"]["items"]) == {"1"}, body
    assert field in body["fields"]["items"]["1"], body


@pytest.mark.parametrize("field", ["id", "user", "status", "total", "currency", "created_at"])
def test_a_server_owned_order_field_is_refused_not_ignored(customer, field):
    response = customer.api.post("/api/orders/", json={"items": [LINE], field: "x"})

    assert_error(response, 400, "validation_error", fields=(field,))
    assert customer.api.get("/api/orders/").json()["count"] == 0


def test_an_order_whose_total_overflows_names_items(customer):
    huge = {"sku": "GOLD", "quantity": 10_000, "unit_price": "99999999.99"}

    response = customer.api.post("/api/orders/", json={"items": [huge] * 20})

    assert_error(response, 400, "validation_error", fields=("items",))


def test_nan_in_an_order_is_a_malformed_request(customer):
    response = customer.api.post(
        "/api/orders/",
        data=b'{"items": [{"sku": "A", "quantity": 1, "unit_price": NaN}]}',
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
