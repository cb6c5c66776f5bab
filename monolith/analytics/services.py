"""Add events to the daily totals. Called by the handlers, inside the event's inbox transaction.

Effect-once comes from the inbox (a redelivered event never reaches these functions twice);
the counter update itself is an atomic `count = count + 1` on a locked row, so two consumer
instances counting the same day never lose an increment.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from outbox.envelope import Envelope

from .models import DailyStatusTotal

# event type -> the (aggregate, status) totals it moves. There is no order.refunded event:
# payment.refunded is also the order's refund, so it counts for both.
COUNTED: dict[str, tuple[tuple[str, str], ...]] = {
    "order.placed": (("order", "pending"),),
    "order.paid": (("order", "paid"),),
    "order.cancelled": (("order", "cancelled"),),
    "order.shipped": (("order", "shipped"),),
    "payment.succeeded": (("payment", "succeeded"),),
    "payment.failed": (("payment", "failed"),),
    "payment.refunded": (("payment", "refunded"), ("order", "refunded")),
}


def daily_total_add(
    *, day: date, aggregate_type: str, status: str, currency: str, amount: Decimal
) -> None:
    """Add one occurrence of `amount` to the total of (day, aggregate_type, status, currency)."""
    with transaction.atomic():
        row, created = DailyStatusTotal.objects.select_for_update().get_or_create(
            day=day,
            aggregate_type=aggregate_type,
            status=status,
            currency=currency,
            defaults={"count": 1, "amount": amount},
        )
        if not created:
            DailyStatusTotal.objects.filter(pk=row.pk).update(
                count=F("count") + 1, amount=F("amount") + amount
            )


def daily_totals_count(*, event: Envelope) -> None:
    """Count `event` in the totals of the UTC day it occurred on; ignore uncounted types."""
    day = datetime.fromisoformat(event.occurred_at).date()
    payload = event.payload
    amount = Decimal(payload["amount"] if "amount" in payload else payload["total"])
    for aggregate_type, status in COUNTED.get(event.type, ()):
        daily_total_add(
            day=day,
            aggregate_type=aggregate_type,
            status=status,
            currency=payload["currency"],
            amount=amount,
        )
