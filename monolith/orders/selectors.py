"""Reads of orders and the catalogue. A user sees only their own orders; the catalogue is public."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet

from service_kit.errors import NotFound

from .models import Order, Product


def order_list(*, user, status: str | None = None) -> QuerySet[Order]:
    """Return `user`'s orders, newest first, with their items, optionally of one `status`."""
    orders = Order.objects.filter(user=user).prefetch_related("items")
    if status:
        orders = orders.filter(status=status)
    return orders


def order_get(*, user, order_id: uuid.UUID | str) -> Order:
    """Return `user`'s order `order_id`, or raise NotFound for a missing, foreign or bad id."""
    try:
        return order_list(user=user).get(pk=order_id)
    except (Order.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        # The same answer for "no such order" and "not yours": existence never leaks.
        raise NotFound(f"Order {order_id} does not exist.") from None


def product_list() -> QuerySet[Product]:
    """Return the catalogue, ordered by sku."""
    return Product.objects.order_by("sku")
