"""The `notifications` subscriber: `manage.py outbox_consume --service notifications`.

Its queue `notifications.events` is bound to `order.#` and `payment.#`; each handled event
becomes the customer's email (and SMS for payments) through `services.notifications_create`.
"""

from __future__ import annotations

from outbox.envelope import Envelope
from outbox.registry import handler

from .services import notifications_create

CONSUMER = "notifications"
EVENT_TYPES = (
    "order.placed",
    "order.paid",
    "order.cancelled",
    "order.shipped",
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
)


def notify(event: Envelope) -> None:
    """Record and schedule the notifications of one event."""
    notifications_create(event=event)


for _event_type in EVENT_TYPES:
    handler(_event_type, consumer=CONSUMER)(notify)
