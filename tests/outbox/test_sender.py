"""The sender check (outbox/sender.py): an event's origin is believed only if RabbitMQ vouches.

Unit tests of the rule, then the paths an event takes after the first check, on real RabbitMQ
with the per-half users of `strangler up`: a retry comes back believed, a replay of a parked
event is believed, a replay of a refused one is refused again, and the stream replay refuses
what the queue would.
"""

from __future__ import annotations

import threading
import time
import uuid

import amqp
import pytest
from django.db import connection
from kombu import Connection

from outbox.broker import EnvelopePublisher
from outbox.consumer import EventConsumer
from outbox.envelope import Envelope
from outbox.models import DeadLetter, InboxEvent
from outbox.registry import Registry
from outbox.selectors import dead_letters_filter, queue_depths
from outbox.sender import SENDER_HEADER, expected_user, message_sender, sender_refusal
from outbox.services import dead_letter_replay
from outbox.stream import replay_into

from .conftest import order_payload
from .half_users import half_users_vhost


def envelope(origin: str = "monolith", sequence: int = 1, aggregate: str = "A") -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type="order.placed",
        version=1,
        aggregate_type="order",
        aggregate_id=aggregate,
        sequence=sequence,
        occurred_at="2026-01-01T10:00:00+00:00",
        origin=origin,
        correlation_id=str(uuid.uuid4()),
        causation_id="",
        payload=order_payload(),
    )


# ---------------------------------------------------------------------- the rule


def test_without_a_map_every_origin_is_expected_from_the_consumers_own_user(settings):
    settings.OUTBOX_BROKER_USERS = {}
    assert expected_user("payments", own_user="guest") == "guest"


def test_with_a_map_an_origin_is_expected_from_its_halfs_user_and_unknown_origins_from_nobody(
    settings,
):
    settings.OUTBOX_BROKER_USERS = {"monolith": "strangler-monolith"}
    assert expected_user("monolith", own_user="x") == "strangler-monolith"
    refusal = sender_refusal(envelope=envelope("intruder"), sender="x", own_user="x")
    assert "origin 'intruder' has no broker user in OUTBOX_BROKER_USERS" in refusal


def test_a_message_without_user_id_is_vouched_for_by_nobody(settings):
    settings.OUTBOX_BROKER_USERS = {"monolith": "strangler-monolith"}
    assert message_sender(user_id=None, headers={}, own_user="me") is None
    refusal = sender_refusal(envelope=envelope(), sender=None, own_user="me")
    assert refusal.startswith("no user_id: the broker does not vouch for the sender")


def test_only_the_consumers_own_user_may_name_the_sender_it_verified_in_a_header():
    headers = {SENDER_HEADER: "strangler-monolith"}
    assert message_sender(user_id="me", headers=headers, own_user="me") == "strangler-monolith"
    assert message_sender(user_id="other", headers=headers, own_user="me") == "other"


def test_an_event_from_its_origins_user_is_believed_and_from_another_user_is_not(settings):
    settings.OUTBOX_BROKER_USERS = {"monolith": "u-m", "payments": "u-p"}
    assert sender_refusal(envelope=envelope("monolith"), sender="u-m", own_user="u-p") is None
    refusal = sender_refusal(envelope=envelope("monolith"), sender="u-p", own_user="u-p")
    assert (
        refusal
        == "sent by broker user 'u-p', but origin 'monolith' must come from broker user 'u-m'"
    )


# ---------------------------------------------------------------------- on RabbitMQ


@pytest.fixture(scope="module")
def half_vhost(tmp_path_factory):
    with half_users_vhost(tmp_path_factory.mktemp("var")) as vhost:
        yield vhost


@pytest.fixture
def payments_side(settings, half_vhost):
    """Settings of a consumer of the payments half; its queue is `payments.events`."""
    settings.OUTBOX_BROKER_URL = half_vhost.users["payments"].url
    settings.OUTBOX_BROKER_USERS = half_vhost.mapping
    settings.OUTBOX_EXCHANGE = "strangler.events"
    settings.OUTBOX_RETRY_DELAYS_MS = [100]
    settings.OUTBOX_GAP_WAIT_MS = 100
    return half_vhost


def run_consumer(registry: Registry):
    stop = threading.Event()
    consumer = EventConsumer(service="payments", registry=registry, should_stop=stop.is_set)

    def target():
        try:
            consumer.run()
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while (queue_depths(["payments.events"])[0].consumers or 0) == 0:
        assert time.monotonic() < deadline, "the consumer never subscribed"
        time.sleep(0.05)
    return stop, thread


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def publish_as(url: str, events: list[Envelope]) -> None:
    publisher = EnvelopePublisher(url)
    try:
        publisher.publish(events)
    finally:
        publisher.close()


def publish_without_user_id(url: str, event: Envelope) -> None:
    with Connection(url) as conn:
        channel = conn.connection.channel()
        message = amqp.Message(event.to_json(), content_type="application/json")
        channel.basic_publish_confirm(message, "strangler.events", event.type)
        channel.close()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_event_retried_through_a_tier_comes_back_believed_and_is_applied(payments_side):
    registry = Registry()
    calls = []

    @registry.handler("order.placed", consumer="payments")
    def flaky(event):
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")

    stop, thread = run_consumer(registry)
    try:
        event = envelope("monolith")
        publish_as(payments_side.users["monolith"].url, [event])
        assert wait_for(lambda: InboxEvent.objects.filter(event_id=event.id).exists())
    finally:
        stop.set()
        thread.join(10)
    assert calls == [event.id, event.id]
    assert not DeadLetter.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_parked_event_replayed_by_the_operator_is_believed_and_a_refused_one_is_refused_again(
    payments_side,
):
    registry = Registry()
    failing = {"on": True}

    @registry.handler("order.placed", consumer="payments")
    def handle(event):
        if failing["on"] and event.aggregate_id == "failing":
            raise RuntimeError("broken until fixed")

    stop, thread = run_consumer(registry)
    try:
        legit = envelope("monolith", aggregate="failing")
        forged = envelope("monolith", aggregate="forged")
        publish_as(payments_side.users["monolith"].url, [legit])
        publish_without_user_id(payments_side.admin_url, forged)
        assert wait_for(lambda: DeadLetter.objects.count() == 2)
        assert DeadLetter.objects.get(event_id=forged.id).reason == "untrusted"
        failing["on"] = False
        # The operator replays both, with the operator's own broker user.
        assert (
            dead_letter_replay(letters=dead_letters_filter(), broker_url=payments_side.admin_url)
            == 2
        )
        assert wait_for(lambda: InboxEvent.objects.filter(event_id=legit.id).exists())
        assert wait_for(lambda: DeadLetter.objects.filter(replayed_at=None).count() == 1)
    finally:
        stop.set()
        thread.join(10)
    again = DeadLetter.objects.get(replayed_at=None)
    assert (str(again.event_id), again.reason) == (forged.id, "untrusted")
    assert not InboxEvent.objects.filter(event_id=forged.id).exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_stream_replay_parks_an_event_nobody_vouches_for_and_applies_the_rest(
    payments_side, settings
):
    settings.OUTBOX_STREAM_QUEUE = "strangler.events.stream"  # the name the users may read
    legit, forged = envelope("monolith", aggregate="L"), envelope("monolith", aggregate="F")
    publish_as(payments_side.users["monolith"].url, [legit])  # declares the stream too
    publish_without_user_id(payments_side.admin_url, forged)
    seen = []
    counts = replay_into(consumer="payments", subscriptions_for=lambda t: [_sub(seen)])
    assert counts.get("untrusted", 0) >= 1  # the stream is the vhost's: earlier tests' too
    assert legit.id in [e.id for e in seen] and forged.id not in [e.id for e in seen]
    assert DeadLetter.objects.get(event_id=forged.id).reason == "untrusted"


def _sub(seen):
    from outbox.registry import Subscription

    return Subscription("payments", "#", seen.append)
