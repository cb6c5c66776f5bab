"""Daily sales per sku, built from the stream after the fact, then live: no gap, no double."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection

import extracted.orders.handlers  # noqa: F401  (registers both consumers)
import outbox.stream
from extracted.orders.models import SkuDailySales
from extracted.orders.sales import CONSUMER, sales_build
from extracted.orders.services import order_payment_record
from outbox.broker import EnvelopePublisher
from outbox.consumer import EventConsumer
from outbox.relay import relay_drain
from tests.outbox.conftest import BrokerNamespace, broker_is_amqp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def broker(settings):
    if not broker_is_amqp():
        pytest.skip("needs BROKER_URL=amqp://...")
    namespace = BrokerNamespace(settings)
    delays = settings.OUTBOX_RETRY_DELAYS_MS
    namespace.queues += [f"{CONSUMER}.events", f"{CONSUMER}.events.dlq", f"{CONSUMER}.events.wait"]
    namespace.queues += [f"{CONSUMER}.events.retry.{n}" for n in range(1, len(delays) + 1)]
    namespace.delete()  # a queue left by an earlier run would hold its events
    yield namespace
    namespace.delete()


def relay() -> int:
    publisher = EnvelopePublisher()
    publisher.connect()
    try:
        return relay_drain(publisher=publisher)
    finally:
        publisher.close()


def pay(order) -> None:
    order_payment_record(order_id=order.order_id, payment_id=str(uuid.uuid4()))


def sales() -> dict[str, tuple[int, Decimal]]:
    return {row.sku: (row.units, row.revenue) for row in SkuDailySales.objects.all()}


def test_replaying_the_stream_then_going_live_counts_every_paid_order_once(
    broker, monkeypatch, user_id, place
):
    # A: before the read model exists at all.
    first = place(user_id, items=[("BOOK-1", 2), ("PEN-2", 1)])
    second = place(user_id, items=[("BOOK-1", 1)])
    pay(first)
    assert relay() == 3
    # B: published after the live queue is bound but before the replay reads the stream, so
    # these events reach the read model twice (stream and queue): counted once.
    real_replay = outbox.stream.replay_into

    def replay_after_more_traffic(**kwargs):
        pay(second)
        assert relay() == 1
        return real_replay(**kwargs)

    monkeypatch.setattr(outbox.stream, "replay_into", replay_after_more_traffic)

    counts = sales_build(offset="first", live=False)

    assert counts == {"applied": 4}
    assert sales() == {"BOOK-1": (3, Decimal("29.97")), "PEN-2": (1, Decimal("0.10"))}
    # C: live traffic after the replay, consumed from the queue with B's duplicates ahead of it.
    third = place(user_id, items=[("MUG-3", 4)])
    pay(third)
    assert relay() == 2
    stop = threading.Event()

    def consume() -> None:
        EventConsumer(service=CONSUMER, should_stop=stop.is_set).run()
        connection.close()

    worker = threading.Thread(target=consume)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while "MUG-3" not in sales() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # anything double-counted would land by now
    finally:
        stop.set()
        worker.join(15)

    assert sales() == {
        "BOOK-1": (3, Decimal("29.97")),
        "PEN-2": (1, Decimal("0.10")),
        "MUG-3": (4, Decimal("30.00")),
    }
