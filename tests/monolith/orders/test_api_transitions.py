"""POST /api/orders/{id}/cancel/ and /ship/: the state machine over HTTP; 409s name both states."""

from __future__ import annotations

import uuid

import pytest

from monolith.orders.models import Order

pytestmark = pytest.mark.django_db


def cancel_url(order_id) -> str:
    return f"/api/orders/{order_id}/cancel/"


def ship_url(order_id) -> str:
    return f"/api/orders/{order_id}/ship/"


def test_owner_cancels_a_pending_order(auth_client, make_order):
    order = make_order()
    response = auth_client.post(cancel_url(order.id))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["items"][0]["sku"] == "BOOK-1"
    assert Order.objects.get(pk=order.pk).status == "cancelled"


@pytest.mark.parametrize("status", ["paid", "shipped", "cancelled", "refunded"])
def test_cancel_of_an_order_past_pending_is_409_naming_both_states(auth_client, make_order, status):
    order = make_order(status=status)
    response = auth_client.post(cancel_url(order.id))
    assert response.status_code == 409
    assert response.json() == {
        "error": "invalid_transition",
        "detail": f"Cannot move order from '{status}' to 'cancelled'.",
        "from": status,
        "to": "cancelled",
    }
    assert Order.objects.get(pk=order.pk).status == status


def test_cancel_of_someone_elses_order_is_404_and_changes_nothing(
    auth_client, make_order, other_user
):
    order = make_order(other_user)
    response = auth_client.post(cancel_url(order.id))
    assert response.status_code == 404
    assert Order.objects.get(pk=order.pk).status == "pending"


@pytest.mark.parametrize("order_id", [uuid.uuid4(), "not-a-uuid"])
def test_cancel_of_an_unknown_or_malformed_id_is_404(auth_client, order_id):
    response = auth_client.post(cancel_url(order_id))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_cancel_unauthenticated_is_401(api_client, make_order):
    order = make_order()
    response = api_client.post(cancel_url(order.id))
    assert response.status_code == 401
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_cancel_by_get_is_405(auth_client, make_order):
    order = make_order()
    assert auth_client.get(cancel_url(order.id)).status_code == 405


def test_staff_ships_a_paid_order(staff_client, make_order):
    order = make_order(status="paid")
    response = staff_client.post(ship_url(order.id))
    assert response.status_code == 200
    assert response.json()["status"] == "shipped"
    assert Order.objects.get(pk=order.pk).status == "shipped"


@pytest.mark.parametrize("status", ["pending", "shipped", "cancelled", "refunded"])
def test_ship_of_an_unpaid_or_finished_order_is_409_naming_both_states(
    staff_client, make_order, status
):
    order = make_order(status=status)
    response = staff_client.post(ship_url(order.id))
    assert response.status_code == 409
    assert response.json()["detail"] == f"Cannot move order from '{status}' to 'shipped'."
    assert Order.objects.get(pk=order.pk).status == status


def test_ship_by_a_customer_is_403_even_for_their_own_order(auth_client, make_order):
    order = make_order(status="paid")
    response = auth_client.post(ship_url(order.id))
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_ship_unauthenticated_is_401(api_client, make_order):
    order = make_order(status="paid")
    assert api_client.post(ship_url(order.id)).status_code == 401


@pytest.mark.parametrize("order_id", [uuid.uuid4(), "nope"])
def test_ship_of_an_unknown_or_malformed_id_is_404(staff_client, order_id):
    response = staff_client.post(ship_url(order_id))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_staff_cannot_cancel_a_customers_order_through_the_customer_api(staff_client, make_order):
    order = make_order()
    assert staff_client.post(cancel_url(order.id)).status_code == 404
