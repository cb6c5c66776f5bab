"""The `analytics` subscriber: `manage.py outbox_consume --service analytics`.

Its queue `analytics.events` is bound to `order.#` and `payment.#`; every counted event moves
the DailyStatusTotal rows of its day (see services.COUNTED).
"""

from __future__ import annotations

from outbox.envelope import Envelope
from outbox.registry import handler

from .services import COUNTED, daily_totals_count

CONSUMER = "analytics"


def count(event: Envelope) -> None:
    """Add one event to the daily totals."""
    daily_totals_count(event=event)


for _event_type in COUNTED:
    handler(_event_type, consumer=CONSUMER)(count)
