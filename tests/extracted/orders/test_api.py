"""The orders API of the service: the monolith's contract, prices from the catalogue."""

from __future__ import annotations

import uuid

import pytest

from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db


def order_body(*lines):
    return {"items": [{"sku": sku, "quantity": qty} for sku, qty in lines]}


def test_placing_an_order_prices_each_line_from_the_catalogue(auth_client, catalogue):
    response = auth_client.post("/api/orders/", order_body(("BOOK-1", 3), ("PEN-2", 1)))

    assert response.status_code == 201, response.json()
    order = response.json()
    assert order["status"] == "pending"
    assert order["total"] == "30.07"
    assert order["currency"] == "EUR"
    assert order["items"] == [
        {"sku": "BOOK-1", "quantity": 3, "unit_price": "9.99", "line_total": "29.97"},
        {"sku": "PEN-2", "quantity": 1, "unit_price": "0.10", "line_total": "0.10"},
    ]
    assert set(order) == {"id", "status", "total", "currency", "items", "created_at", "updated_at"}


def test_a_placed_order_is_readable_at_once_and_announced_as_order_placed(auth_client, catalogue):
    placed = auth_client.post("/api/orders/", order_body(("MUG-3", 2))).json()

    assert auth_client.get(f"/api/orders/{placed['id']}/").json() == placed
    assert auth_client.get("/api/orders/").json()["results"] == [placed]
    event = OutboxEvent.objects.get(event_type="order.placed")
    assert event.origin == "orders"
    assert event.aggregate_id == placed["id"]
    assert event.payload["items"] == [{"sku": "MUG-3", "quantity": 2, "unit_price": "7.50"}]
    assert event.payload["total"] == "15.00"


def test_a_client_sent_unit_price_is_refused_naming_it(auth_client, catalogue):
    body = {"items": [{"sku": "BOOK-1", "quantity": 1, "unit_price": "0.00"}]}

    response = auth_client.post("/api/orders/", body)

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "items": {"0": {"unit_price": ["'unit_price' is set by the server; do not send it."]}}
    }


def test_an_unknown_sku_is_refused_naming_its_line(auth_client, catalogue):
    response = auth_client.post("/api/orders/", order_body(("BOOK-1", 1), ("NOPE-9", 1)))

    assert response.status_code == 400
    assert response.json() == {
        "error": "validation_error",
        "detail": "Unknown sku 'NOPE-9'. Products are listed at /api/products/.",
        "fields": {"items": {"1": {"sku": ["Unknown sku 'NOPE-9'."]}}},
    }
    assert not OutboxEvent.objects.exists()


def test_server_owned_fields_and_bad_quantities_are_refused(auth_client, catalogue):
    body = {"total": "1.00", "items": [{"sku": "BOOK-1", "quantity": "3"}]}

    response = auth_client.post("/api/orders/", body)

    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields["total"] == ["'total' is set by the server; do not send it."]
    assert fields["items"]["0"]["quantity"] == ["A whole number is required; got a string instead."]


def test_the_list_shows_only_ones_own_orders_filtered_and_paginated(
    client_for, user_id, place, catalogue
):
    mine = [place(user_id) for _ in range(3)]
    place(user_id + 1)
    client = client_for(user_id)
    client.post(f"/api/orders/{mine[0].order_id}/cancel/")

    everything = client.get("/api/orders/?page_size=2").json()
    cancelled = client.get("/api/orders/?status=cancelled").json()

    assert everything["count"] == 3
    assert len(everything["results"]) == 2 and everything["next"]
    assert [o["id"] for o in cancelled["results"]] == [mine[0].order_id]
    bad = client.get("/api/orders/?status=lost")
    assert bad.status_code == 400 and "status" in bad.json()["fields"]


def test_someone_elses_or_a_malformed_order_id_is_404(client_for, user_id, place):
    order = place(user_id)
    stranger = client_for(user_id + 1)

    for path in (f"/api/orders/{order.order_id}/", "/api/orders/not-a-uuid/"):
        assert stranger.get(path).status_code == 404
    assert stranger.post(f"/api/orders/{order.order_id}/cancel/").status_code == 404
    assert stranger.get(f"/api/orders/{uuid.uuid4()}/").json()["error"] == "not_found"


def test_cancelling_twice_is_a_409_naming_both_states(auth_client, user_id, place):
    order = place(user_id)

    first = auth_client.post(f"/api/orders/{order.order_id}/cancel/")
    second = auth_client.post(f"/api/orders/{order.order_id}/cancel/")

    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert second.status_code == 409
    assert second.json() == {
        "error": "invalid_transition",
        "detail": "Cannot move order from 'cancelled' to 'cancelled'.",
        "from": "cancelled",
        "to": "cancelled",
    }


def test_only_staff_ship_and_only_paid_orders(auth_client, staff_client, user_id, place):
    from extracted.orders.services import order_payment_record

    order = place(user_id)
    assert auth_client.post(f"/api/orders/{order.order_id}/ship/").status_code == 403
    assert staff_client.post(f"/api/orders/{order.order_id}/ship/").status_code == 409
    order_payment_record(order_id=order.order_id, payment_id=str(uuid.uuid4()))

    shipped = staff_client.post(f"/api/orders/{order.order_id}/ship/")

    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    assert auth_client.get(f"/api/orders/{order.order_id}/").json()["status"] == "shipped"


def test_staff_read_the_count_of_orders_per_status(staff_client, auth_client, user_id, place):
    orders = [place(user_id) for _ in range(3)]
    auth_client.post(f"/api/orders/{orders[0].order_id}/cancel/")

    response = staff_client.get("/api/orders/counts/")

    assert response.status_code == 200
    assert response.json() == {
        "counts": {"pending": 2, "paid": 0, "shipped": 0, "cancelled": 1, "refunded": 0},
        "total": 3,
    }
    assert auth_client.get("/api/orders/counts/").status_code == 403


def test_the_catalogue_is_public_paginated_and_ordered_by_sku(api_client, catalogue):
    response = api_client.get("/api/products/")

    assert response.status_code == 200
    assert response.json()["results"] == [
        {"sku": "BOOK-1", "name": "A book", "unit_price": "9.99"},
        {"sku": "MUG-3", "name": "A mug", "unit_price": "7.50"},
        {"sku": "PEN-2", "name": "A pen", "unit_price": "0.10"},
    ]


def test_without_a_signed_identity_orders_are_401(api_client):
    response = api_client.get("/api/orders/")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_health_answers(api_client):
    assert api_client.get("/healthz").json() == {"status": "ok", "service": "orders"}
