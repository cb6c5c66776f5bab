"""Fixtures of the background-job tests: orders made straight from the models, eager Celery."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from monolith.celery import app as celery_app
from monolith.orders.models import Order, OrderItem


@pytest.fixture
def eager_celery():
    """Run tasks in-process (apply_async runs at once), letting their exceptions through."""
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    yield celery_app
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def place_order(user):
    """Create an order with items, in any status, placed at any time (default: now)."""

    def make(
        owner=None,
        *,
        status: str = "pending",
        items=(("BOOK-1", 2, "12.50"),),
        created_at: dt.datetime | None = None,
        currency: str = "EUR",
    ) -> Order:
        total = sum((qty * Decimal(price) for _, qty, price in items), Decimal("0.00"))
        order = Order.objects.create(
            user=owner or user, status=status, total=total, currency=currency
        )
        OrderItem.objects.bulk_create(
            OrderItem(order=order, sku=sku, quantity=qty, unit_price=Decimal(price))
            for sku, qty, price in items
        )
        if created_at:  # created_at is auto_now_add: back-date it after the insert
            Order.objects.filter(pk=order.pk).update(created_at=created_at)
            order.refresh_from_db()
        return order

    return make
