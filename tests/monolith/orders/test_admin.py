"""The admin shows orders with their lines and products, and ships through the service."""

from __future__ import annotations

import pytest
from django.urls import reverse

from monolith.orders.models import Order, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_order_changelist_and_change_page_render(admin_client_, make_order):
    order = make_order()
    changelist = admin_client_.get(reverse("admin:orders_order_changelist"))
    assert changelist.status_code == 200
    assert str(order.id) in changelist.content.decode()
    change = admin_client_.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert change.status_code == 200
    assert "BOOK-1" in change.content.decode()


def test_orders_cannot_be_added_in_the_admin(admin_client_):
    assert admin_client_.get(reverse("admin:orders_order_add")).status_code == 403


def test_admin_edit_cannot_change_status_or_total(admin_client_, make_order):
    order = make_order()
    url = reverse("admin:orders_order_change", args=[order.pk])
    admin_client_.post(url, {"status": "shipped", "total": "0.01", "items-TOTAL_FORMS": "0"})
    order.refresh_from_db()
    assert order.status == "pending"
    assert str(order.total) == "25.00"


def test_ship_action_ships_paid_orders_and_reports_the_rest(admin_client_, make_order):
    paid = make_order(status="paid")
    pending = make_order()
    response = admin_client_.post(
        reverse("admin:orders_order_changelist"),
        {"action": "ship_orders", "_selected_action": [paid.pk, pending.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert Order.objects.get(pk=paid.pk).status == "shipped"
    assert Order.objects.get(pk=pending.pk).status == "pending"
    messages = [str(m) for m in response.context["messages"]]
    assert "Shipped 1 order(s)." in messages
    assert any("Cannot move order from 'pending' to 'shipped'." in m for m in messages)


def test_product_admin_lists_and_searches(admin_client_):
    Product.objects.create(sku="BOOK-1", name="A book", unit_price="12.50")
    Product.objects.create(sku="PEN-1", name="A pen", unit_price="1.00")
    response = admin_client_.get(reverse("admin:orders_product_changelist"), {"q": "book"})
    assert response.status_code == 200
    assert "BOOK-1" in response.content.decode()
    assert "PEN-1" not in response.content.decode()
