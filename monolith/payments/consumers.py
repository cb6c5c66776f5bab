"""The monolith applies the payments service's events (consumer "monolith", queue monolith.events).

While both halves serve payments, a payment taken or refunded by the extracted service
(`origin == "payments"`) must reach the monolith, which still owns orders and keeps a full copy
of payments so that routing back to it (rollback) loses no write:

| event               | effect in the monolith                                                |
|---------------------|-----------------------------------------------------------------------|
| `payment.succeeded` | upsert the Payment by id; order pending -> paid; write `order.paid`   |
| `payment.failed`    | upsert the Payment by id; the order stays pending                     |
| `payment.refunded`  | the Payment moves to refunded; order paid -> refunded                 |

Upserts converge in any order: a payment's status only moves forward (succeeded -> refunded), an
order only along its state machine. A transition the order refuses (it was cancelled here while
the service charged it: two halves, one race) is logged, the payment still recorded, and
reconcile shows it. The monolith's own events come back as echoes and are dropped by the runtime
before any handler; events of other origins are not this module's business.

Run with `manage.py outbox_consume --service monolith` (payments/handlers.py imports this module).
`order.paid` is written with origin "monolith" (the monolith owns orders), so the payments
service applies it like any other order event and nothing loops.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from types import SimpleNamespace

from django.utils.dateparse import parse_datetime

from monolith.events import order_paid_publish
from monolith.orders.models import OrderStatus
from monolith.orders.services import order_lock, order_mark_paid, order_mark_refunded
from monolith.orders.states import can_transition
from outbox.context import event_context
from outbox.envelope import Envelope
from outbox.registry import handler

from .models import Payment, PaymentStatus

logger = logging.getLogger(__name__)

CONSUMER = "monolith"
PAYMENTS_SERVICE = "payments"

_FORWARD = {PaymentStatus.SUCCEEDED: {PaymentStatus.REFUNDED}}


def _payment_upsert(event: Envelope) -> Payment:
    """Insert or update the monolith's copy of the payment; its status only moves forward."""
    payload = event.payload
    fields = {
        "order_id": payload["order_id"],
        "user_id": payload["user_id"],
        "amount": Decimal(payload["amount"]),
        "currency": payload["currency"],
        "card_last4": payload["card_last4"],
    }
    for name in ("provider_reference", "failure_reason"):
        if name in payload:
            fields[name] = payload[name]
    payment = Payment.objects.select_for_update().filter(pk=payload["payment_id"]).first()
    if payment is None:
        payment = Payment(id=payload["payment_id"], status=payload["status"], **fields)
        payment.save(force_insert=True)
    else:
        for name, value in fields.items():
            setattr(payment, name, value)
        if payload["status"] in _FORWARD.get(payment.status, set()):
            payment.status = payload["status"]
        payment.save()
    # auto_now(_add) stamped "now"; the service's timestamps are the payment's real ones.
    times = {}
    if payload.get("created_at"):
        times["created_at"] = parse_datetime(payload["created_at"])
    when = payload.get("refunded_at") or payload.get("created_at")
    if when:
        times["updated_at"] = parse_datetime(when)
    if times:
        Payment.objects.filter(pk=payment.pk).update(**times)
    return payment


def _order_move(*, event: Envelope, payment: Payment) -> None:
    """Move the payment's order as the payment implies, if the state machine allows it."""
    target = {
        PaymentStatus.SUCCEEDED: OrderStatus.PAID,
        PaymentStatus.REFUNDED: OrderStatus.REFUNDED,
    }.get(payment.status)
    if target is None:
        return
    order = order_lock(order_id=payment.order_id)
    if order.status == target:
        return
    if not can_transition(order.status, target):
        logger.warning(
            "%s %s: order %s is %r and cannot become %r; payment recorded, order left as is",
            event.type, event.id, order.pk, order.status, target,
        )  # fmt: skip
        return
    if target == OrderStatus.PAID:
        order_mark_paid(order=order)
        # The monolith owns orders, so order.paid is its news (origin "monolith"), caused by
        # the service's payment.succeeded.
        cause = SimpleNamespace(correlation_id=event.correlation_id, event_id=event.id)
        with event_context(correlation_id=event.correlation_id, causation_id=event.id):
            order_paid_publish(order=order, payment=payment, cause=cause)
    else:
        order_mark_refunded(order=order)


@handler("payment.succeeded", consumer=CONSUMER)
@handler("payment.failed", consumer=CONSUMER)
@handler("payment.refunded", consumer=CONSUMER)
def payment_event_apply(event: Envelope) -> None:
    """Apply a payment the extracted payments service took or refunded."""
    if event.origin != PAYMENTS_SERVICE:
        return
    payment = _payment_upsert(event)
    _order_move(event=event, payment=payment)
