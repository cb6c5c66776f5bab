"""The consumer's retry tiers and gap wait on the embedded broker (`filesystem://`).

RabbitMQ brings a delayed message back with TTL + dead-lettering; the filesystem transport of
service_kit.fs_transport does the same with due times, so these run without any server.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection

from outbox.broker import EnvelopePublisher
from outbox.consumer import EventConsumer
from outbox.envelope import Envelope
from outbox.registry import Registry
from service_kit.env import broker_transport_options

from .conftest import order_payload
from .proof_handlers import apply_effect, effect_rows, effect_table_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fs_broker(settings, monkeypatch, tmp_path):
    """Point the outbox at a filesystem broker of its own, with short delays."""
    monkeypatch.setenv("STRANGLER_VAR_DIR", str(tmp_path))
    settings.BROKER_URL = "filesystem://"
    settings.BROKER_TRANSPORT_OPTIONS = broker_transport_options("filesystem://")
    settings.OUTBOX_EXCHANGE = f"t{uuid.uuid4().hex[:8]}.events"
    settings.OUTBOX_RETRY_DELAYS_MS = [300, 300]
    settings.OUTBOX_GAP_WAIT_MS = 200
    effect_table_create()
    return settings


def envelope(aggregate_id: str, sequence: int) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type="order.placed",
        version=1,
        aggregate_type="order",
        aggregate_id=aggregate_id,
        sequence=sequence,
        occurred_at="2026-01-01T10:00:00+00:00",
        origin="monolith",
        correlation_id="c",
        causation_id="",
        payload=order_payload(),
    )


def publish(*envelopes: Envelope) -> None:
    publisher = EnvelopePublisher()
    try:
        publisher.publish(envelopes)
    finally:
        publisher.close()


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Running:
    """A consumer in a thread, stopped (and its database connection closed) on exit."""

    def __init__(self, service: str, registry: Registry):
        self.stop = threading.Event()
        self.consumer = EventConsumer(
            service=service, registry=registry, should_stop=self.stop.is_set
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.consumer.run()
        finally:
            connection.close()

    def __enter__(self) -> EventConsumer:
        self.thread.start()
        # The consumer declares its queues and bindings before anything is published.
        assert wait_for(lambda: any(
            p.name.endswith(".events.retry.1.queue")
            for p in (self.consumer_folder()).glob("*.queue")
        ), timeout=10)  # fmt: skip
        return self.consumer

    def consumer_folder(self):
        from pathlib import Path

        from django.conf import settings

        return Path(settings.BROKER_TRANSPORT_OPTIONS["control_folder"])

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def test_failing_handler_event_comes_back_after_its_delay_and_is_applied_once(fs_broker):
    service = f"fs-{uuid.uuid4().hex[:6]}"
    registry = Registry()
    tries: list[float] = []

    @registry.handler("order.placed", consumer=service)
    def handle(event):
        tries.append(time.monotonic())
        if len(tries) == 1:
            raise ConnectionError("the mail server hiccuped")
        apply_effect(service, event)

    with Running(service, registry) as consumer:
        publish(envelope("A", 1))
        assert wait_for(lambda: len(effect_rows(service)) == 1)
        time.sleep(0.8)  # room for a wrong second delivery to show up
    assert [row[1:] for row in effect_rows(service)] == [("A", 1)]
    assert consumer.stats.outcomes.get("retried", 0) >= 1
    # A failed batch is redone event by event, so the second try may be immediate; the try that
    # applied it came from the retry tier, at least its delay after the first.
    assert tries[-1] - tries[0] >= 0.28


def test_event_ahead_of_its_predecessor_waits_and_is_applied_in_order(fs_broker):
    service = f"fs-{uuid.uuid4().hex[:6]}"
    registry = Registry()

    @registry.handler("order.placed", consumer=service)
    def handle(event):
        apply_effect(service, event)

    first, second = envelope("G", 1), envelope("G", 2)
    with Running(service, registry) as consumer:
        publish(second)  # the predecessor is late (say, it is being retried elsewhere)
        assert wait_for(lambda: consumer.stats.outcomes.get("gap", 0) >= 1, timeout=5)
        time.sleep(0.5)
        assert effect_rows(service) == []
        publish(first)
        assert wait_for(lambda: len(effect_rows(service)) == 2)
        time.sleep(0.5)
    rows = effect_rows(service)
    assert [(row[0], row[2]) for row in rows] == [(first.id, 1), (second.id, 2)]
