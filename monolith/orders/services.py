"""Order business logic. Every status change goes through `order_transition`."""

from __future__ import annotations

import uuid

from django.db import transaction

from service_kit.errors import NotFound

from .models import Order, OrderStatus
from .states import assert_transition


def order_lock(*, order_id: uuid.UUID | str) -> Order:
    """Return the order row locked FOR UPDATE; call inside transaction.atomic()."""
    try:
        return Order.objects.select_for_update().get(pk=order_id)
    except (Order.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Order {order_id} does not exist.") from None


def order_transition(*, order: Order, to: str) -> Order:
    """Move a locked `order` to status `to`, or raise InvalidTransition (409) naming both states."""
    assert transaction.get_connection().in_atomic_block, "order_transition needs a transaction"
    assert_transition(current=order.status, target=to)
    order.status = to
    order.save(update_fields=["status", "updated_at"])
    return order


def order_mark_paid(*, order: Order) -> Order:
    """Record that a locked pending order has been paid."""
    return order_transition(order=order, to=OrderStatus.PAID)


def order_mark_refunded(*, order: Order) -> Order:
    """Record that a locked paid order has been refunded."""
    return order_transition(order=order, to=OrderStatus.REFUNDED)
