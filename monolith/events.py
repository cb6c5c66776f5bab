"""Write the monolith's domain events: one function per event type, payloads as the schemas say.

Each `<event>_publish` calls `outbox.publish(...)` and must run inside the
`transaction.atomic()` of the change it announces (the writer refuses autocommit), so the event
exists if and only if the change commits. Payloads follow `outbox/schemas/<type>.v1.json`
field for field; the writer validates them and fails loudly on any drift.

| event               | aggregate      | written by                                   |
|---------------------|----------------|----------------------------------------------|
| `user.registered`   | user (id)      | `users.services.user_register`               |
| `user.updated`      | user (id)      | `users.services.user_update`, if a field changed |
| `user.token_issued` | user (id)      | `users.services.token_create` (a login)      |
| `user.token_revoked`| user (id)      | logout, password change, deactivation        |
| `order.placed`      | order (uuid)   | `orders.services.order_create`               |
| `order.cancelled`   | order (uuid)   | `orders.services.order_cancel`               |
| `order.paid`        | order (uuid)   | `payments.services.payment_create` (success) |
| `order.shipped`     | order (uuid)   | `orders.services.order_ship`                 |
| `payment.succeeded` | payment (uuid) | `payments.services.payment_create`           |
| `payment.failed`    | payment (uuid) | `payments.services.payment_create` (declined)|
| `payment.refunded`  | payment (uuid) | `payments.services.payment_refund`           |

Correlation: every event of one request shares the request's correlation id (set by
`monolith.correlation.CorrelationMiddleware`); without one the writer uses the event's own id.
Causation: an event written because of another names it (`order.paid` is caused by the
`payment.succeeded` written just before it, in the same transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import outbox
from service_kit import user_events

if TYPE_CHECKING:
    from monolith.orders.models import Order, OrderItem
    from monolith.payments.models import Payment
    from monolith.users.models import User
    from outbox.models import OutboxEvent


def _money(value) -> str:
    return f"{value:.2f}"


def user_registered_publish(*, user: User) -> OutboxEvent:
    """Record `user.registered` (v2, the shared state: service_kit.user_events) for a new user."""
    return user_events.user_registered_publish(user=user)


def user_updated_publish(*, user: User, changed: Iterable[str]) -> OutboxEvent:
    """Record `user.updated` (v2) naming the `changed` fields of a saved user (at least one)."""
    return user_events.user_updated_publish(user=user, changed=changed)


def order_placed_publish(*, order: Order, items: Sequence[OrderItem]) -> OutboxEvent:
    """Record `order.placed` for a pending order and its line items."""
    return outbox.publish(
        event_type="order.placed",
        aggregate_type="order",
        aggregate_id=str(order.pk),
        payload={
            "order_id": order.pk,
            "user_id": order.user_id,
            "status": order.status,
            "total": _money(order.total),
            "currency": order.currency,
            "items": [
                {"sku": i.sku, "quantity": i.quantity, "unit_price": _money(i.unit_price)}
                for i in items
            ],
            "created_at": order.created_at,
        },
    )


def _order_moved(order: Order, *, at: str) -> dict:
    """Return the payload of an order that just changed status, stamped under the key `at`."""
    return {
        "order_id": order.pk,
        "user_id": order.user_id,
        "status": order.status,
        "total": _money(order.total),
        "currency": order.currency,
        at: order.updated_at,
    }


def order_cancelled_publish(*, order: Order) -> OutboxEvent:
    """Record `order.cancelled` for an order just moved to cancelled."""
    return outbox.publish(
        event_type="order.cancelled",
        aggregate_type="order",
        aggregate_id=str(order.pk),
        payload=_order_moved(order, at="cancelled_at"),
    )


def order_shipped_publish(*, order: Order) -> OutboxEvent:
    """Record `order.shipped` for a paid order just moved to shipped."""
    return outbox.publish(
        event_type="order.shipped",
        aggregate_type="order",
        aggregate_id=str(order.pk),
        payload=_order_moved(order, at="shipped_at"),
    )


def order_paid_publish(*, order: Order, payment: Payment, cause: OutboxEvent) -> OutboxEvent:
    """Record `order.paid`, caused by the `payment.succeeded` event `cause`."""
    return outbox.publish(
        event_type="order.paid",
        aggregate_type="order",
        aggregate_id=str(order.pk),
        payload=_order_moved(order, at="paid_at") | {"payment_id": payment.pk},
        correlation_id=cause.correlation_id,
        causation_id=str(cause.event_id),
    )


def _payment_payload(payment: Payment) -> dict:
    return {
        "payment_id": payment.pk,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "amount": _money(payment.amount),
        "currency": payment.currency,
        "card_last4": payment.card_last4,
        "status": payment.status,
    }


def payment_succeeded_publish(*, payment: Payment) -> OutboxEvent:
    """Record `payment.succeeded` for a payment the provider accepted."""
    return outbox.publish(
        event_type="payment.succeeded",
        aggregate_type="payment",
        aggregate_id=str(payment.pk),
        payload=_payment_payload(payment)
        | {"provider_reference": payment.provider_reference, "created_at": payment.created_at},
    )


def payment_failed_publish(*, payment: Payment) -> OutboxEvent:
    """Record `payment.failed` for a declined payment that was recorded."""
    return outbox.publish(
        event_type="payment.failed",
        aggregate_type="payment",
        aggregate_id=str(payment.pk),
        payload=_payment_payload(payment)
        | {
            "failure_reason": payment.failure_reason,
            "provider_reference": payment.provider_reference,
            "created_at": payment.created_at,
        },
    )


def payment_refunded_publish(*, payment: Payment) -> OutboxEvent:
    """Record `payment.refunded`; it also announces that the payment's order is refunded."""
    return outbox.publish(
        event_type="payment.refunded",
        aggregate_type="payment",
        aggregate_id=str(payment.pk),
        payload=_payment_payload(payment) | {"refunded_at": payment.updated_at},
    )
