"""Daily sales per sku: a read model built after the fact by replaying the broker's stream.

Consumer "orders_sales" (queue `orders_sales.events`); what counts:

| event              | effect                                                              |
|--------------------|---------------------------------------------------------------------|
| `order.placed`     | remember the order's lines (`SalesOrder`)                           |
| `order.paid`       | add each line's units and amount to its sku on the paid day (UTC)   |
| `payment.refunded` | take them back on the refund's day                                  |

It hears both halves (no echo: its name is not a writer's), and counts an order once however
many `order.paid` reach it (`SalesOrder.paid_on`). The inbox makes each event's effect happen
once, so the same event read from the stream and from the live queue counts once.

Built with `manage.py orders_sales_build` (see `sales_build`): bind the live queue FIRST, then
replay the stream from offset 0, then consume the queue. Every event published after the bind
is in the queue; every event before it is in the stream; those in both are applied once. So no
gap and no double count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db.models import F
from django.utils.dateparse import parse_datetime

from outbox.envelope import Envelope
from outbox.registry import handler, registry

from .models import SalesOrder, SkuDailySales

logger = logging.getLogger(__name__)

CONSUMER = "orders_sales"


def _day(value: str | None, event: Envelope) -> date:
    when: datetime | None = parse_datetime(value) if value else None
    when = when or parse_datetime(event.occurred_at)
    return when.date() if when.tzinfo is None else when.astimezone(UTC).date()


def _add(*, order: SalesOrder, day: date, sign: int) -> None:
    for line in order.items:
        amount = Decimal(line["unit_price"]) * line["quantity"] * sign
        units = line["quantity"] * sign
        rows = SkuDailySales.objects.filter(day=day, sku=line["sku"], currency=order.currency)
        if not rows.update(units=F("units") + units, revenue=F("revenue") + amount):
            SkuDailySales.objects.bulk_create(
                [SkuDailySales(day=day, sku=line["sku"], currency=order.currency)],
                ignore_conflicts=True,
            )
            rows.update(units=F("units") + units, revenue=F("revenue") + amount)


@handler("order.placed", consumer=CONSUMER)
def sales_order_placed(event: Envelope) -> None:
    """Remember the lines, to count them when the order is paid."""
    payload = event.payload
    SalesOrder.objects.get_or_create(
        order_id=payload["order_id"],
        defaults={"currency": payload["currency"], "items": payload["items"]},
    )


@handler("order.paid", consumer=CONSUMER)
def sales_order_paid(event: Envelope) -> None:
    """Count the order's lines on the day it was paid, once."""
    order = (
        SalesOrder.objects.select_for_update().filter(order_id=event.payload["order_id"]).first()
    )
    if order is None:
        logger.warning("order.paid %s: order %s was never placed here; not counted",
                       event.id, event.payload["order_id"])  # fmt: skip
        return
    if order.paid_on is not None:
        return
    order.paid_on = _day(event.payload.get("paid_at"), event)
    order.save(update_fields=["paid_on"])
    _add(order=order, day=order.paid_on, sign=1)


@handler("payment.refunded", consumer=CONSUMER)
def sales_order_refunded(event: Envelope) -> None:
    """Take a paid order's lines back on the day of the refund, once."""
    order = (
        SalesOrder.objects.select_for_update().filter(order_id=event.payload["order_id"]).first()
    )
    if order is None or order.paid_on is None or order.refunded_on is not None:
        return
    order.refunded_on = _day(event.payload.get("refunded_at"), event)
    order.save(update_fields=["refunded_on"])
    _add(order=order, day=order.refunded_on, sign=-1)


def sales_build(
    *,
    offset="first",
    live: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
    broker_url: str | None = None,
) -> dict[str, int]:
    """Bind the live queue, replay the stream from `offset`, then (if `live`) consume the queue.

    Returns the replay's outcome counts (applied, duplicate, ...).
    """
    from outbox.broker import broker_connection
    from outbox.consumer import EventConsumer
    from outbox.stream import replay_into
    from outbox.topology import declare_consumer

    connection = broker_connection(broker_url)
    try:
        connection.connect()
        declare_consumer(connection, service=CONSUMER, binding_keys=registry.binding_keys(CONSUMER))
    finally:
        connection.release()
    counts = replay_into(
        consumer=CONSUMER,
        offset=offset,
        subscriptions_for=lambda event_type: registry.matching(CONSUMER, event_type),
        progress=progress,
        progress_every=100,
    )
    if live:
        EventConsumer(service=CONSUMER, broker_url=broker_url, should_stop=should_stop).run()
    return counts
