"""The delivery guarantees, each proven by breaking something on purpose.

Real PostgreSQL and RabbitMQ; relays and consumers run as separate processes where a crash
has to be real (SIGKILL, os._exit), and in threads where only timing matters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest.mock import patch

import pytest
from django.core.management import call_command
from django.db import connection, transaction

import outbox
from outbox.broker import EnvelopePublisher
from outbox.consumer import EventConsumer
from outbox.models import DeadLetter, OutboxEvent
from outbox.registry import Registry
from outbox.relay import Relay, relay_drain

from .conftest import collect, declare_probe, order_payload
from .proof_handlers import apply_effect, effect_rows, effect_table_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("proofs run against PostgreSQL")
    effect_table_create()


def write(aggregate_id: str, count: int = 1) -> None:
    for _ in range(count):
        with transaction.atomic():
            outbox.publish(
                event_type="order.placed",
                aggregate_type="order",
                aggregate_id=aggregate_id,
                payload=order_payload(),
            )


def subprocess_env(broker, **extra) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    settings_module = {"DJANGO_SETTINGS_MODULE": "tests.outbox.subprocess_settings"}
    return os.environ | broker.env() | {"DATABASE_URL": url} | settings_module | extra


def start_consumer_process(broker, service: str, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "outbox_consume", "--service", service,
         "--handlers", "tests.outbox.proof_handlers",
         "--settings", "tests.outbox.subprocess_settings"],
        cwd=ROOT, env=subprocess_env(broker, OUTBOX_TEST_CONSUMER=service, **extra),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def wait_consuming(service: str) -> None:
    """Wait until a consumer process has declared, bound and subscribed to its queue."""
    from outbox.selectors import queue_depths

    assert wait_for(lambda: (queue_depths([f"{service}.events"])[0].consumers or 0) > 0)


def relay_once() -> None:
    publisher = EnvelopePublisher()
    try:
        relay_drain(publisher=publisher)
    finally:
        publisher.close()


def consumer_thread(service: str, registry: Registry):
    stop_flag = threading.Event()
    consumer = EventConsumer(service=service, registry=registry, should_stop=stop_flag.is_set)

    def target():
        try:
            consumer.run()
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return consumer, thread, stop_flag


def test_relay_killed_after_publish_before_mark_sent_duplicates_delivery_not_effect(broker):
    service = broker.service("shop")
    probe = declare_probe(broker)
    consumer = start_consumer_process(broker, service)
    try:
        wait_consuming(service)  # the consumer declares and binds its queue
        write("A", 3)
        killed = subprocess.run(
            [sys.executable, "-m", "tests.outbox.proc"], cwd=ROOT, env=subprocess_env(broker),
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        assert killed.returncode == -9, killed.stderr.decode()[-2000:]
        assert OutboxEvent.objects.filter(sent_at=None).count() == 3  # confirmed, never marked
        relay_once()  # a healthy relay publishes the same rows again
        assert wait_for(lambda: len(effect_rows(service)) >= 3)
        time.sleep(1.0)  # room for a wrong second application to show up
    finally:
        stop(consumer)
    deliveries = collect(probe, count=6)
    assert sorted(b["sequence"] for b in deliveries) == [1, 1, 2, 2, 3, 3]  # arrived twice
    assert [row[1:] for row in effect_rows(service)] == [("A", 1), ("A", 2), ("A", 3)]


def test_consumer_crashing_mid_handler_is_redelivered_and_applies_once(broker, tmp_path):
    service = broker.service("shop")
    marker = tmp_path / "crash-once"
    marker.touch()
    first = start_consumer_process(broker, service, OUTBOX_TEST_CRASH_MARKER=str(marker))
    try:
        wait_consuming(service)
        write("A", 2)
        write("B", 2)
        relay_once()
        assert first.wait(20) == 137  # died inside the handler of the first event
    finally:
        stop(first)
    second = start_consumer_process(broker, service)
    try:
        assert wait_for(lambda: len(effect_rows(service)) >= 4)
        time.sleep(1.0)
    finally:
        stop(second)
    assert [row[1:] for row in effect_rows(service)] == [("A", 1), ("A", 2), ("B", 1), ("B", 2)]


def test_poison_event_goes_through_the_tiers_to_the_dlq_others_flow_and_replay_applies_once(
    broker,
):
    service = broker.service("shop")
    registry = Registry()
    fixed = threading.Event()
    attempts: list[int] = []

    @registry.handler("order.placed", consumer=service)
    def handle(event):
        if event.aggregate_id == "poison" and event.sequence == 1 and not fixed.is_set():
            attempts.append(event.sequence)
            raise ValueError("cannot handle this order")
        apply_effect(service, event)

    _consumer, thread, stop_flag = consumer_thread(service, registry)
    try:
        time.sleep(1.0)
        write("poison", 2)
        write("healthy", 3)
        relay_once()
        # One try plus a retry per tier (100 ms, 200 ms), then parked; seq 2 parked behind it.
        assert wait_for(lambda: DeadLetter.objects.filter(consumer=service).count() == 2)
        # A first try and one per tier; a failing batch is also redone event by event.
        assert len(attempts) >= 3
        assert [r[1:] for r in effect_rows(service)] == [("healthy", s) for s in (1, 2, 3)]
        first, second = DeadLetter.objects.filter(consumer=service).order_by("sequence")
        assert (first.reason, first.attempts, second.reason) == ("failed", 3, "blocked")
        assert "cannot handle this order" in first.error

        fixed.set()  # the handler is fixed and deployed
        call_command("outbox_dlq", "replay", str(first.id), "--consumer", service)
        assert wait_for(lambda: len(effect_rows(service)) == 5)
        time.sleep(0.5)
    finally:
        stop_flag.set()
        thread.join(10)
    assert [r[1:] for r in effect_rows(service) if r[1] == "poison"] == [
        ("poison", 1), ("poison", 2),
    ]  # fmt: skip
    assert not DeadLetter.objects.filter(consumer=service, replayed_at=None).exists()


def test_event_rolled_back_with_its_transaction_is_never_published(broker):
    probe = declare_probe(broker)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        write("ghost")
        _ = 1 / 0
    write("real")
    relay_once()
    bodies = collect(probe, count=2, timeout=1.5)
    assert [b["aggregate_id"] for b in bodies] == ["real"]


def _rabbit_connection_on_port(port: int) -> str | None:
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "peer_port"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == str(port):
            return parts[0]
    return None


def test_broker_dropping_the_relays_connection_mid_burst_loses_nothing(broker):
    if subprocess.run(["which", "rabbitmqctl"], capture_output=True, check=False).returncode:
        pytest.skip("needs rabbitmqctl")
    probe = declare_probe(broker)
    stop_flag = threading.Event()
    relay = Relay(should_stop=stop_flag.is_set)
    thread = threading.Thread(target=lambda: (relay.run(), connection.close()), daemon=True)
    thread.start()
    try:
        write("A", 20)
        assert wait_for(lambda: relay.publisher.connected, 10)
        port = relay.publisher.connection.connection.sock.getsockname()[1]
        pid = _rabbit_connection_on_port(port)
        assert pid, "relay connection not found by rabbitmqctl"
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, "outbox test: broker gone"],
            capture_output=True, check=True, timeout=30,
        )  # fmt: skip
        write("A", 20)  # written while the relay reconnects
        bodies = collect(probe, count=40, timeout=20)
    finally:
        stop_flag.set()
        write("wake")
        thread.join(10)
    sequences = sorted({b["sequence"] for b in bodies if b["aggregate_id"] == "A"})
    assert sequences == list(range(1, 41))
    assert relay.stats.failures >= 1
    assert OutboxEvent.objects.filter(aggregate_id="A", sent_at=None).count() == 0


def test_relay_command_publishes_until_sigterm_then_exits_cleanly(broker):
    probe = declare_probe(broker)
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "outbox_relay"],
        cwd=ROOT, env=subprocess_env(broker), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        write("A", 3)
        bodies = collect(probe, count=3, timeout=20)
    finally:
        relay.terminate()
        out, err = relay.communicate(timeout=20)
    assert [b["sequence"] for b in bodies] == [1, 2, 3]
    assert relay.returncode == 0, err.decode()[-2000:]
    assert b"outbox relay stopped: sent=3" in out


def test_celery_task_variant_publishes_what_is_pending(broker):
    from outbox.tasks import outbox_relay_tick

    probe = declare_probe(broker)
    write("A", 2)
    assert outbox_relay_tick.apply().get() == 2
    assert [b["sequence"] for b in collect(probe, count=2)] == [1, 2]


def test_celery_task_variant_cleans_up_once_per_interval_not_every_tick(broker, settings):
    from outbox import tasks

    settings.OUTBOX_CLEANUP_INTERVAL_S = 3600
    tasks._next_cleanup = 0.0
    with patch.object(outbox.relay, "outbox_cleanup", return_value={}) as cleanup:
        for _ in range(3):
            tasks.outbox_relay_tick.apply().get()
    assert cleanup.call_count == 1
