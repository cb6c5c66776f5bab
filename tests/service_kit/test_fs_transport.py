"""The robust filesystem transport: whole messages, one taker each, shared bindings, delays."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from kombu import Connection, Exchange, Queue
from kombu.transport import get_transport_cls

from service_kit import fs_transport
from service_kit.env import broker_transport_options


@pytest.fixture
def options(monkeypatch, tmp_path):
    """Transport options of a filesystem broker private to this test (installs the transport)."""
    monkeypatch.setenv("STRANGLER_VAR_DIR", str(tmp_path))
    return broker_transport_options("filesystem://")


def connect(options) -> Connection:
    return Connection("filesystem://", transport_options=options)


def declare(options, name: str, **arguments) -> None:
    with connect(options) as conn:
        Queue(name, durable=True, queue_arguments=arguments or None).bind(
            conn.default_channel
        ).declare()


def publish(options, queue: str, body, **kwargs) -> None:
    with connect(options) as conn:
        conn.Producer().publish(body, exchange="", routing_key=queue, serializer="json", **kwargs)


def take_all(options, queue: str, *, until: int, timeout: float = 20.0) -> list:
    """Return bodies taken from `queue` until `until` arrived or `timeout` passed."""
    bodies = []
    deadline = time.monotonic() + timeout
    with connect(options) as conn:
        channel = conn.channel()
        while len(bodies) < until and time.monotonic() < deadline:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                time.sleep(0.001)
                continue
            bodies.append(json.loads(message.body))
    return bodies


def test_filesystem_urls_use_the_robust_transport_once_options_are_read(options):
    assert get_transport_cls("filesystem") is fs_transport.Transport
    with connect(options) as conn:
        assert isinstance(conn.default_channel, fs_transport.Channel)


def test_a_reader_racing_the_writer_never_sees_a_partial_message(options):
    queue = f"race.{uuid.uuid4().hex[:6]}"
    declare(options, queue)
    count, blob = 60, "x" * 400_000  # large bodies widen the window a writer is mid-write
    received: list = []
    errors: list[BaseException] = []

    def reader():
        try:
            received.extend(take_all(options, queue, until=count))
        except BaseException as exc:  # a JSONDecodeError here is the bug this test is about
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for number in range(count):
        publish(options, queue, {"n": number, "blob": blob})
    thread.join(30)
    assert errors == []
    assert [body["n"] for body in received] == list(range(count))
    assert all(body["blob"] == blob for body in received)


def test_two_consumers_never_take_the_same_message(options):
    queue = f"share.{uuid.uuid4().hex[:6]}"
    declare(options, queue)
    count = 300
    for number in range(count):
        publish(options, queue, {"n": number})
    taken: list[list] = [[], []]

    def consume(slot: int) -> None:
        with connect(options) as conn:
            channel = conn.channel()
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < 0.5:
                message = channel.basic_get(queue, no_ack=True)
                if message is None:
                    continue
                idle_since = time.monotonic()
                taken[slot].append(json.loads(message.body)["n"])

    threads = [threading.Thread(target=consume, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(taken[0] + taken[1]) == list(range(count))


def test_bindings_declared_at_once_by_many_processes_are_all_kept(options):
    exchange = Exchange(f"ex{uuid.uuid4().hex[:6]}", type="topic", durable=True)
    names = [f"bind.{n}.{uuid.uuid4().hex[:4]}" for n in range(12)]
    barrier = threading.Barrier(len(names))

    def bind(name: str) -> None:
        with connect(options) as conn:
            barrier.wait()
            Queue(name, exchange, routing_key="order.*").bind(conn.default_channel).declare()

    threads = [threading.Thread(target=bind, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    with connect(options) as conn:
        table = conn.default_channel.get_table(exchange.name)
    assert sorted(entry.queue for entry in table) == sorted(names)


def test_a_delay_queue_hands_its_message_to_the_dead_letter_queue_after_the_ttl(options):
    target = f"events.{uuid.uuid4().hex[:6]}"
    delay = f"{target}.retry.1"
    declare(options, target)
    declare(
        options,
        delay,
        **{
            "x-message-ttl": 400,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": target,
        },
    )
    published = time.monotonic()
    publish(options, delay, {"event": "late"}, headers={"x-outbox-attempts": 1})
    assert take_all(options, target, until=1, timeout=0.25) == []
    with connect(options) as conn:
        channel = conn.channel()
        message = None
        while message is None and time.monotonic() - published < 5:
            message = channel.basic_get(target, no_ack=True)
        waited = time.monotonic() - published
    assert message is not None
    assert json.loads(message.body) == {"event": "late"}
    assert message.headers["x-outbox-attempts"] == 1
    assert 0.39 <= waited < 2.0
    assert take_all(options, delay, until=1, timeout=0.1) == []  # nothing stays in the tier


def test_a_delay_queue_declared_by_another_process_is_honoured(options):
    target = f"events.{uuid.uuid4().hex[:6]}"
    delay = f"{target}.wait"
    declare(
        options,
        delay,
        **{"x-message-ttl": 300, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": target},
    )
    # A fresh connection (as in another process) knows the queue only from the control folder.
    publish(options, delay, {"event": "waiting"})
    assert take_all(options, target, until=1, timeout=0.2) == []
    assert take_all(options, target, until=1, timeout=5) == [{"event": "waiting"}]


def test_messages_published_in_one_burst_are_taken_in_order(options):
    queue = f"order.{uuid.uuid4().hex[:6]}"
    declare(options, queue)
    with connect(options) as conn:
        producer = conn.Producer()
        for number in range(200):  # many within the same millisecond
            producer.publish({"n": number}, exchange="", routing_key=queue, serializer="json")
    assert [body["n"] for body in take_all(options, queue, until=200)] == list(range(200))
