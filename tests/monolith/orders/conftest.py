"""Fixtures of the orders tests: orders in any status, a staff client, no broker traffic."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest

from monolith.orders import services, tasks
from monolith.orders.models import Order
from tests.catalogue import stocked

DEFAULT_ITEMS = [{"sku": "BOOK-1", "quantity": 2, "unit_price": Decimal("12.50")}]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hash the fixtures' passwords cheaply: these tests are about orders, not logins."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def confirmation_apply_async():
    """Replace the confirmation task's apply_async: these tests never talk to the broker."""
    with mock.patch.object(tasks.send_order_confirmation, "apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def make_order(user):
    """Create an order through the service, then put it in `status` for the test's setup."""

    def make(owner=None, *, status: str = "pending", items=None) -> Order:
        order = services.order_create(user=owner or user, items=stocked(items or DEFAULT_ITEMS))
        if status != "pending":
            # Setup only: jump straight to the state under test instead of walking the machine.
            Order.objects.filter(pk=order.pk).update(status=status)
            order.refresh_from_db()
        return order

    return make


@pytest.fixture
def other_user(make_user):
    return make_user()


@pytest.fixture
def staff_user(make_user):
    return make_user(is_staff=True)


@pytest.fixture
def staff_client(client_for, staff_user):
    return client_for(staff_user)
