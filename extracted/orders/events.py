"""Announce order changes through the service's outbox: the monolith's types and payloads.

Same routing keys and payloads as `monolith/events.py` (`outbox/schemas/order.*.v1.json`), so
payments, notifications and analytics cannot tell which half wrote them; only the envelope's
`origin` ("orders") differs. Call inside the change's transaction, like the append itself.

The origin is set to this service explicitly, even inside a consumer's handler (which would
otherwise inherit the handled event's origin): the sequence of an order event comes from this
service's counter, and a sequence means something only with the origin that numbered it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import outbox
from outbox.context import current_ids, event_context

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

    from .domain import OrderState


def _publish(*, event_type: str, state: OrderState, payload: dict) -> OutboxEvent:
    correlation_id, causation_id = current_ids()
    with event_context(correlation_id=correlation_id, causation_id=causation_id, origin=None):
        return outbox.publish(
            event_type=event_type,
            aggregate_type="order",
            aggregate_id=state.order_id,
            payload=payload,
        )


def _moved(state: OrderState, *, at: str) -> dict:
    return {
        "order_id": state.order_id,
        "user_id": state.user_id,
        "status": state.status,
        "total": state.total,
        "currency": state.currency,
        at: state.updated,
    }


def order_placed_publish(*, state: OrderState) -> OutboxEvent:
    """Record `order.placed` for an order just placed here."""
    return _publish(
        event_type="order.placed",
        state=state,
        payload={
            "order_id": state.order_id,
            "user_id": state.user_id,
            "status": state.status,
            "total": state.total,
            "currency": state.currency,
            "items": state.items,
            "created_at": state.created,
        },
    )


def order_cancelled_publish(*, state: OrderState) -> OutboxEvent:
    """Record `order.cancelled` for an order just cancelled."""
    return _publish(
        event_type="order.cancelled", state=state, payload=_moved(state, at="cancelled_at")
    )


def order_shipped_publish(*, state: OrderState) -> OutboxEvent:
    """Record `order.shipped`: from now on its payment cannot be refunded."""
    return _publish(event_type="order.shipped", state=state, payload=_moved(state, at="shipped_at"))


def order_paid_publish(*, state: OrderState) -> OutboxEvent:
    """Record `order.paid` (caused by the `payment.succeeded` being handled)."""
    return _publish(
        event_type="order.paid",
        state=state,
        payload=_moved(state, at="paid_at") | {"payment_id": state.payment_id},
    )


PUBLISHERS = {
    "OrderPlaced": order_placed_publish,
    "OrderCancelled": order_cancelled_publish,
    "OrderShipped": order_shipped_publish,
    "OrderPaid": order_paid_publish,
}
