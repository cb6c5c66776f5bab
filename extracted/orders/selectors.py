"""Reads: every one from the serving generation of the read models, never from the event log.

A user sees only their own orders; anything else does not exist for them (the monolith's rule).
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet

from service_kit.errors import NotFound

from .models import OrderStatus, OrderView, Product, StatusCount
from .projections import active_generation


def order_list(*, user_id: int, status: str | None = None) -> QuerySet[OrderView]:
    """Return `user_id`'s orders, newest first, optionally of one `status`."""
    orders = OrderView.objects.filter(generation=active_generation(), user_id=user_id)
    if status:
        orders = orders.filter(status=status)
    return orders


def order_get(*, user_id: int, order_id: uuid.UUID | str) -> OrderView:
    """Return `user_id`'s order, or raise NotFound for a missing, foreign or malformed id."""
    try:
        return order_list(user_id=user_id).get(order_id=order_id)
    except (OrderView.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(f"Order {order_id} does not exist.") from None


def order_status_counts() -> dict[str, int]:
    """Return how many orders are in each status (every status, zeros included)."""
    counts = dict.fromkeys(OrderStatus.values, 0)
    rows = StatusCount.objects.filter(generation=active_generation())
    counts.update({row.status: row.count for row in rows})
    return counts


def product_list() -> QuerySet[Product]:
    """Return the catalogue, ordered by sku."""
    return Product.objects.order_by("sku")
