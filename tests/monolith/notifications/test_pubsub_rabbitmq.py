"""Through real RabbitMQ: the relay publishes once, and both subscribers get every event."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from django.core import mail
from django.db import connection

import monolith.analytics.handlers  # noqa: F401 - registers the analytics subscriber
from monolith.analytics.models import DailyStatusTotal
from monolith.notifications.models import Notification
from outbox.broker import EnvelopePublisher, broker_connection
from outbox.consumer import EventConsumer
from outbox.models import InboxEvent, OutboxEvent
from outbox.registry import Registry, registry
from outbox.relay import relay_drain
from outbox.topology import declare_consumer
from tests.monolith.events.builders import pay, place
from tests.outbox.conftest import BrokerNamespace, broker_is_amqp

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker(settings):
    """A private exchange and private queues on the real RabbitMQ, deleted afterwards."""
    if not broker_is_amqp():
        pytest.skip("needs BROKER_URL=amqp://...")
    namespace = BrokerNamespace(settings)
    yield namespace
    namespace.delete()


def private_registry(names: dict[str, str]) -> Registry:
    """Copy the real subscribers' handlers under private consumer names."""
    private = Registry()
    for real, renamed in names.items():
        for subscription in registry.subscriptions(real):
            private.subscribe(dataclasses.replace(subscription, consumer=renamed))
    return private


def test_both_subscribers_get_the_same_events_through_the_relay(broker, user):
    names = {"notifications": broker.service("notifications"), "analytics": broker.service("a")}
    subscribers = private_registry(names)
    with broker_connection() as conn:  # queues exist before the relay publishes
        for service in names.values():
            declare_consumer(conn, service=service, binding_keys=subscribers.binding_keys(service))

    pay(user, place(user))  # order.placed, payment.succeeded, order.paid
    publisher = EnvelopePublisher()
    try:
        assert relay_drain(publisher=publisher) == 3
    finally:
        publisher.close()

    stop = threading.Event()
    consumers = [
        EventConsumer(service=service, registry=subscribers, should_stop=stop.is_set)
        for service in names.values()
    ]

    def run(consumer: EventConsumer) -> None:
        try:
            consumer.run()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in consumers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 15
        while InboxEvent.objects.count() < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)

    written = set(OutboxEvent.objects.values_list("event_id", flat=True))
    for service in names.values():
        received = set(
            InboxEvent.objects.filter(consumer=service).values_list("event_id", flat=True)
        )
        assert received == written, service
    # order.placed is handled but sends nothing: its receipt is the Celery job's.
    assert sorted(m.subject.split(" ")[0] for m in mail.outbox) == ["Order", "Payment"]
    assert Notification.objects.filter(status="sent").count() == 2
    assert sorted(DailyStatusTotal.objects.values_list("aggregate_type", "status", "count")) == [
        ("order", "paid", 1), ("order", "pending", 1), ("payment", "succeeded", 1),
    ]  # fmt: skip
    assert all(c.stats.outcomes == {"applied": 3} for c in consumers), [
        c.stats.outcomes for c in consumers
    ]
