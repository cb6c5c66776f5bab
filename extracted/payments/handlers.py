"""Events the payments service consumes (consumer "payments", queue `payments.events`).

| event               | from       | effect here                                          |
|---------------------|------------|------------------------------------------------------|
| `order.placed`      | orders owner | the order enters the replica as pending            |
| `order.cancelled`   | orders owner | the replica moves pending -> cancelled             |
| `order.paid`        | orders owner | the replica moves pending -> paid                  |
| `order.shipped`     | orders owner | the replica moves paid -> shipped: no more refunds |
| `payment.succeeded` | monolith   | the payment is upserted by id; the order is paid    |
| `payment.failed`    | monolith   | the payment is upserted by id                       |
| `payment.refunded`  | monolith   | the payment moves to refunded; the order too        |

The runtime (`outbox.inbox.event_apply`) applies each event once, in order per aggregate, inside
the transaction that records it, and drops the service's own `payment.*` events (origin
"payments") as echoes before any handler runs. Found by `outbox_consume`'s autodiscovery.
"""

from __future__ import annotations

from outbox.envelope import Envelope
from outbox.registry import handler

from .models import OrderStatus, ReplicaSource
from .replicas import order_replica_apply
from .sync import payment_sync_apply

CONSUMER = "payments"


def _order_event_apply(event: Envelope, status: str) -> None:
    payload = event.payload
    order_replica_apply(
        order_id=payload["order_id"],
        user_id=payload["user_id"],
        status=status,
        total=payload["total"],
        currency=payload["currency"],
        source=ReplicaSource.EVENT,
    )


@handler("order.placed", consumer=CONSUMER)
def order_placed_apply(event: Envelope) -> None:
    """Learn a new order, pending and payable."""
    _order_event_apply(event, OrderStatus.PENDING)


@handler("order.cancelled", consumer=CONSUMER)
def order_cancelled_apply(event: Envelope) -> None:
    """Stop accepting payments for a cancelled order."""
    _order_event_apply(event, OrderStatus.CANCELLED)


@handler("order.paid", consumer=CONSUMER)
def order_paid_apply(event: Envelope) -> None:
    """Record that the owner marked the order paid (by either half's payment)."""
    _order_event_apply(event, OrderStatus.PAID)


@handler("order.shipped", consumer=CONSUMER)
def order_shipped_apply(event: Envelope) -> None:
    """Record that the order shipped, so its payment can no longer be refunded."""
    _order_event_apply(event, OrderStatus.SHIPPED)


@handler("payment.succeeded", consumer=CONSUMER)
@handler("payment.failed", consumer=CONSUMER)
@handler("payment.refunded", consumer=CONSUMER)
def payment_event_apply(event: Envelope) -> None:
    """Upsert a payment the monolith took or refunded, so a rollback loses no write."""
    payload = event.payload
    payment_sync_apply(
        payment_id=payload["payment_id"],
        order_id=payload["order_id"],
        user_id=payload["user_id"],
        amount=payload["amount"],
        currency=payload["currency"],
        status=payload["status"],
        card_last4=payload["card_last4"],
        provider_reference=payload.get("provider_reference"),
        failure_reason=payload.get("failure_reason"),
        created_at=payload.get("created_at"),
        updated_at=payload.get("refunded_at") or payload.get("created_at"),
        source=ReplicaSource.EVENT,
    )
