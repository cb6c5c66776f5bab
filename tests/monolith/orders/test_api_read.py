"""GET /api/orders/ and /api/orders/{id}/: one's own orders only, paginated, filtered."""

from __future__ import annotations

import uuid

import pytest

from monolith.orders.models import Order

pytestmark = pytest.mark.django_db

URL = "/api/orders/"


def test_list_shows_only_the_callers_orders_newest_first(auth_client, make_order, other_user):
    first = make_order()
    second = make_order(status="paid")
    make_order(other_user)
    response = auth_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [o["id"] for o in body["results"]] == [str(second.id), str(first.id)]
    assert body["results"][0]["items"] == [
        {"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50", "line_total": "25.00"}
    ]
    assert body["results"][0]["total"] == "25.00"


def test_list_is_paginated_20_a_page(auth_client, make_order):
    for _ in range(25):
        make_order()
    first = auth_client.get(URL).json()
    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert first["previous"] is None
    assert first["next"].endswith("/api/orders/?page=2")
    second = auth_client.get(first["next"]).json()
    assert len(second["results"]) == 5
    assert second["next"] is None
    ids = [o["id"] for o in first["results"] + second["results"]]
    assert len(set(ids)) == 25


def test_list_page_size_can_be_chosen_up_to_100(auth_client, make_order):
    for _ in range(3):
        make_order()
    assert len(auth_client.get(URL, {"page_size": 2}).json()["results"]) == 2
    assert len(auth_client.get(URL, {"page_size": 1000}).json()["results"]) == 3


@pytest.mark.parametrize("page", ["99", "0", "abc"])
def test_list_page_out_of_range_is_404_json(auth_client, make_order, page):
    make_order()
    response = auth_client.get(URL, {"page": page})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_list_reads_items_in_a_fixed_number_of_queries(
    auth_client, make_order, django_assert_max_num_queries
):
    for _ in range(10):
        make_order(items=[{"sku": "A", "quantity": 1, "unit_price": 1}] * 3)
    # token, count, orders, items: no query per order.
    with django_assert_max_num_queries(4):
        response = auth_client.get(URL)
    assert len(response.json()["results"]) == 10


@pytest.mark.parametrize("status", ["pending", "paid", "shipped", "cancelled", "refunded"])
def test_list_filters_by_status(auth_client, make_order, status):
    wanted = make_order(status=status)
    for other in {"pending", "paid", "cancelled"} - {status}:
        make_order(status=other)
    body = auth_client.get(URL, {"status": status}).json()
    assert [o["id"] for o in body["results"]] == [str(wanted.id)]
    assert body["count"] == 1


@pytest.mark.parametrize("status", ["bogus", "PAID", " paid", "paid,shipped"])
def test_list_with_an_unknown_status_is_refused_naming_status(auth_client, status):
    response = auth_client.get(URL, {"status": status})
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert list(response.json()["fields"]) == ["status"]


def test_list_with_an_empty_status_is_not_filtered(auth_client, make_order):
    make_order()
    make_order(status="paid")
    response = auth_client.get(f"{URL}?status=")
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_list_unauthenticated_is_401(api_client):
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_list_is_empty_for_a_user_without_orders(auth_client):
    assert auth_client.get(URL).json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_detail_shows_the_callers_order(auth_client, make_order):
    order = make_order()
    response = auth_client.get(f"{URL}{order.id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(order.id)
    assert body["status"] == "pending"
    assert body["total"] == "25.00"
    assert body["currency"] == "EUR"
    assert body["created_at"] and body["updated_at"]


def test_detail_of_someone_elses_order_is_404_like_a_missing_one(
    auth_client, make_order, other_user
):
    foreign = make_order(other_user)
    response = auth_client.get(f"{URL}{foreign.id}/")
    missing = auth_client.get(f"{URL}{uuid.uuid4()}/")
    assert response.status_code == missing.status_code == 404
    assert response.json()["error"] == missing.json()["error"] == "not_found"


@pytest.mark.parametrize("order_id", ["not-a-uuid", "123", "%20", "x" * 300])
def test_detail_of_a_malformed_id_is_404_json(auth_client, order_id):
    response = auth_client.get(f"{URL}{order_id}/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_detail_unauthenticated_is_401_even_for_a_real_order(api_client, make_order):
    order = make_order()
    response = api_client.get(f"{URL}{order.id}/")
    assert response.status_code == 401


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_orders_cannot_be_edited_or_deleted(auth_client, make_order, method):
    order = make_order()
    response = getattr(auth_client, method)(f"{URL}{order.id}/", {"total": "0.01"}, format="json")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert Order.objects.get(pk=order.pk).total == order.total


def test_list_with_a_nul_byte_in_status_is_400(auth_client):
    response = auth_client.get(URL, {"status": "paid\x00"})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["status"]


def test_detail_with_a_nul_byte_in_the_id_is_404(auth_client):
    response = auth_client.get(f"{URL}%00/")
    assert response.status_code == 404
