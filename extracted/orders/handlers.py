"""Events the orders service consumes (consumer "orders", queue `orders.events`).

| event               | from         | effect here                                            |
|---------------------|--------------|--------------------------------------------------------|
| `payment.succeeded` | either half  | pending -> paid (`OrderPaid`); `order.paid` announced   |
|                     |              | for orders placed here                                 |
| `payment.refunded`  | either half  | paid -> refunded (`OrderRefunded`)                     |
| `payment.failed`    | either half  | nothing: the order stays pending                       |
| `order.placed`      | the monolith | a copy of the order starts here (`OrderImported`)      |
| `order.paid`, `order.cancelled`, `order.shipped` | the monolith | the copy moves on  |

So while both halves serve orders (a canary), each learns the other's orders and changes. The
runtime (`outbox.inbox.event_apply`) applies each event once, in order per aggregate and
writer, and drops this service's own events (origin "orders") as echoes before any handler.
An event about an order not known here yet (its copy is still on its way) raises, so the
runtime retries it after a delay and parks it if it never resolves.

The daily sales read model has its own consumer ("orders_sales", see `sales.py`), imported here
so `outbox_consume` finds it.
"""

from __future__ import annotations

from django.utils.dateparse import parse_datetime

from outbox.envelope import Envelope
from outbox.registry import handler

from . import sales  # noqa: F401  (registers the "orders_sales" consumer)
from .services import imported_data, order_mirror, order_payment_record, order_refund_record

CONSUMER = "orders"
MONOLITH = "monolith"


def _when(value: str | None):
    return parse_datetime(value) if value else None


@handler("payment.succeeded", consumer=CONSUMER)
def payment_succeeded_apply(event: Envelope) -> None:
    """Mark the order paid."""
    payload = event.payload
    order_payment_record(
        order_id=payload["order_id"],
        payment_id=payload["payment_id"],
        at=_when(payload.get("created_at")),
    )


@handler("payment.refunded", consumer=CONSUMER)
def payment_refunded_apply(event: Envelope) -> None:
    """Mark the order refunded."""
    payload = event.payload
    order_refund_record(
        order_id=payload["order_id"],
        payment_id=payload["payment_id"],
        at=_when(payload.get("refunded_at")),
    )


@handler("payment.failed", consumer=CONSUMER)
def payment_failed_apply(event: Envelope) -> None:
    """A declined card changes nothing: the order stays pending and can be paid again."""


@handler("order.placed", consumer=CONSUMER)
def order_placed_apply(event: Envelope) -> None:
    """Start the copy of an order the monolith took."""
    if event.origin != MONOLITH:
        return
    payload = event.payload
    order_mirror(
        order_id=payload["order_id"],
        status=payload["status"],
        at=_when(payload["created_at"]),
        placed=imported_data(
            user_id=payload["user_id"],
            status=payload["status"],
            currency=payload["currency"],
            items=payload["items"],
            total=payload["total"],
            created_at=payload["created_at"],
            source="monolith",
        ),
    )


@handler("order.paid", consumer=CONSUMER)
@handler("order.cancelled", consumer=CONSUMER)
@handler("order.shipped", consumer=CONSUMER)
def order_moved_apply(event: Envelope) -> None:
    """Move the copy of a monolith order as the monolith moved it."""
    if event.origin != MONOLITH:
        return
    payload = event.payload
    at = next(
        (payload[key] for key in ("paid_at", "cancelled_at", "shipped_at") if key in payload), None
    )
    order_mirror(order_id=payload["order_id"], status=payload["status"], at=_when(at))
