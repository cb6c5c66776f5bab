"""Broker topology: the replay stream, the headers exchange with priorities, the fanout."""

from __future__ import annotations

import amqp
import pytest
from django.db import transaction

import outbox
from outbox.broker import EnvelopePublisher, broker_connection
from outbox.inbox import Outcome
from outbox.messaging import BroadcastListener, broadcast_publish, notify_publish
from outbox.registry import Subscription
from outbox.relay import relay_drain
from outbox.stream import replay_into, stream_read
from outbox.topology import declare_consumer

from .conftest import order_payload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def publish_events(count: int) -> None:
    for _ in range(count):
        with transaction.atomic():
            outbox.publish(
                event_type="order.placed",
                aggregate_type="order",
                aggregate_id="S",
                payload=order_payload(),
            )
    publisher = EnvelopePublisher()
    try:
        relay_drain(publisher=publisher)
    finally:
        publisher.close()


def test_stream_keeps_every_event_and_a_reader_starts_at_any_offset(broker):
    publish_events(3)
    records = list(stream_read(offset="first", idle_timeout_s=1.0))
    assert [r.envelope.sequence for r in records] == [1, 2, 3]
    offsets = [r.offset for r in records]
    assert offsets == sorted(offsets)
    later = list(stream_read(offset=offsets[1], idle_timeout_s=1.0))
    assert [r.envelope.sequence for r in later] == [2, 3]


def test_a_new_consumer_rebuilds_from_the_stream_once(broker):
    publish_events(3)
    seen = []
    subs = [Subscription("newcomer", "#", seen.append)]
    first = replay_into(consumer="newcomer", subscriptions_for=lambda t: subs)
    again = replay_into(consumer="newcomer", subscriptions_for=lambda t: subs)
    assert first == {Outcome.APPLIED: 3}
    assert again == {Outcome.DUPLICATE: 3}
    assert [e.sequence for e in seen] == [1, 2, 3]


def _get_all(queue: str) -> list:
    with broker_connection() as conn:
        channel = conn.channel()
        messages = []
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            messages.append(message)
        return messages


def test_notifications_are_routed_by_channel_header_and_served_by_priority(broker, settings):
    notify = settings.OUTBOX_NOTIFY_EXCHANGE
    broker.queues += [f"{notify}.email", f"{notify}.sms"]
    notify_publish(channel="email", payload={"text": "newsletter"}, priority=1)
    notify_publish(channel="email", payload={"text": "password reset"}, priority=9)
    notify_publish(channel="sms", payload={"text": "code 1234"})
    emails = [m.body for m in _get_all(f"{notify}.email")]
    assert ['"password reset"' in str(b) for b in emails] == [True, False]
    assert len(_get_all(f"{notify}.sms")) == 1


def test_unknown_notification_channel_is_refused():
    with pytest.raises(ValueError, match="pigeon"):
        notify_publish(channel="pigeon", payload={})


def test_broadcast_reaches_every_instance(broker):
    got: dict[str, list] = {"a": [], "b": []}
    listeners = [
        BroadcastListener(lambda kind, payload, n=n: got[n].append((kind, payload)), instance=n)
        for n in ("a", "b")
    ]
    try:
        broadcast_publish(kind="routes.changed", payload={"version": 7})
        for listener in listeners:
            listener.poll(timeout=2)
    finally:
        for listener in listeners:
            listener.close()
    assert got == {
        "a": [("routes.changed", {"version": 7})],
        "b": [("routes.changed", {"version": 7})],
    }


def test_consumer_queue_dead_letters_rejections_to_its_dlq(broker):
    service = broker.service("shop")
    with broker_connection() as conn:
        declare_consumer(conn, service=service, binding_keys=["order.#"])
        channel = conn.channel()
        channel.basic_publish(amqp.Message(b"not an envelope"), "", f"{service}.events")
        message = None
        for _ in range(50):
            message = channel.basic_get(f"{service}.events")
            if message:
                break
        channel.basic_reject(message.delivery_tag, requeue=False)
    assert [m.body for m in _get_all(f"{service}.events.dlq")] == [b"not an envelope"]


def test_outbox_consume_from_stream_rebuilds_a_new_consumer_once(broker, monkeypatch):
    from django.core.management import call_command

    from outbox.management.commands import outbox_consume
    from outbox.registry import Registry

    publish_events(3)
    seen = []
    private = Registry()
    private.subscribe(Subscription("rebuilt", "#", seen.append))
    monkeypatch.setattr(outbox_consume, "registry", private)

    for _ in range(2):  # the second replay finds every event in the inbox already
        call_command(
            "outbox_consume", "--service", "rebuilt", "--from-stream", "first", "--replay-only"
        )

    assert [e.sequence for e in seen] == [1, 2, 3]


def test_outbox_consume_refuses_a_stream_offset_it_cannot_read():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--from-stream 'yesterday': expected first, last"):
        call_command("outbox_consume", "--service", "x", "--from-stream", "yesterday")
