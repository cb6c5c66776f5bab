"""The relay: in order, with confirms, through outages, with several relays at once."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import outbox
from outbox.broker import EnvelopePublisher, PublishFailed
from outbox.models import InboxEvent, OutboxEvent
from outbox.relay import (
    Relay,
    _claim,
    delete_in_batches,
    outbox_cleanup,
    relay_batch,
    relay_drain,
)

from .conftest import collect, declare_probe, order_payload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def write(aggregate_id: str, count: int = 1) -> None:
    for _ in range(count):
        with transaction.atomic():
            outbox.publish(
                event_type="order.placed",
                aggregate_type="order",
                aggregate_id=aggregate_id,
                payload=order_payload(),
            )


def run_relay_in_thread(**kwargs) -> tuple[Relay, threading.Thread, threading.Event]:
    stop = threading.Event()
    relay = Relay(should_stop=stop.is_set, **kwargs)

    def target() -> None:
        try:
            relay.run()
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return relay, thread, stop


def test_relay_publishes_pending_rows_in_order_and_marks_them_sent(broker):
    probe = declare_probe(broker)
    write("A", 3)
    write("B", 2)
    publisher = EnvelopePublisher()
    try:
        assert relay_drain(publisher=publisher) == 5
    finally:
        publisher.close()
    bodies = collect(probe, count=5)
    assert [(b["aggregate_id"], b["sequence"]) for b in bodies] == [
        ("A", 1), ("A", 2), ("A", 3), ("B", 1), ("B", 2),
    ]  # fmt: skip
    assert bodies[0]["type"] == "order.placed"
    assert OutboxEvent.objects.filter(sent_at=None).count() == 0


def test_routing_key_is_the_event_type(broker):
    paid = declare_probe(broker, "order.paid")
    placed = declare_probe(broker, "order.*")
    write("A")
    publisher = EnvelopePublisher()
    try:
        relay_drain(publisher=publisher)
    finally:
        publisher.close()
    assert len(collect(placed, count=1)) == 1
    assert collect(paid, count=1, timeout=0.3) == []


def test_unreachable_broker_keeps_rows_pending_and_records_why(broker):
    write("A", 2)
    publisher = EnvelopePublisher("amqp://guest:guest@127.0.0.1:1//")
    with pytest.raises(PublishFailed, match=r"127\.0\.0\.1:1"):
        relay_batch(publisher=publisher)
    rows = list(OutboxEvent.objects.all())
    assert all(r.sent_at is None and r.publish_attempts == 1 for r in rows)
    assert "127.0.0.1:1" in rows[0].last_error


def test_relay_backs_off_while_the_broker_refuses_and_delivers_everything_after(broker):
    probe = declare_probe(broker)
    write("A", 3)
    relay, thread, stop = run_relay_in_thread(broker_url="amqp://guest:guest@127.0.0.1:1//")
    try:
        deadline = time.monotonic() + 5
        while relay.stats.failures < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.stats.failures >= 2
        assert OutboxEvent.objects.filter(sent_at=None).count() == 3
        write("A", 2)  # written during the outage
        # The broker "comes back": the same relay object now reaches the real server.
        relay.publisher.url = None
        relay.publisher.connection = EnvelopePublisher().connection
        bodies = collect(probe, count=5)
    finally:
        stop.set()
        thread.join(5)
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 4, 5]


def test_notify_wakes_the_relay_long_before_its_poll_interval(broker, settings):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    settings.OUTBOX_RELAY_POLL_S = 30.0
    probe = declare_probe(broker)
    _relay, thread, stop = run_relay_in_thread()
    try:
        time.sleep(0.5)  # let it reach its wait
        started = time.monotonic()
        write("A")
        assert len(collect(probe, count=1, timeout=5)) == 1
        assert time.monotonic() - started < 2
    finally:
        stop.set()
        # The relay sleeps in select(); a last NOTIFY lets it see the stop flag.
        write("wake")
        thread.join(5)


def test_two_relays_and_a_burst_keep_every_aggregates_order(broker, settings):
    if connection.vendor != "postgresql":
        pytest.skip("several relays need SKIP LOCKED")
    settings.OUTBOX_RELAY_BATCH = 7  # small batches so the relays interleave
    probe = declare_probe(broker)
    relays = [run_relay_in_thread() for _ in range(2)]
    time.sleep(0.3)  # both relays reach their wait before the burst
    aggregates = [f"agg{n}" for n in range(8)]
    writers = [
        threading.Thread(target=lambda a=a: (write(a, 25), connection.close())) for a in aggregates
    ]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        bodies = collect(probe, count=200, timeout=20)
    finally:
        for _, _, stop in relays:
            stop.set()
        write("wake")
        for _, thread, _ in relays:
            thread.join(5)
    seen: dict[str, list[int]] = defaultdict(list)
    for body in bodies:
        seen[body["aggregate_id"]].append(body["sequence"])
    out_of_order = {a: seen[a] for a in aggregates if seen[a] != list(range(1, 26))}
    assert out_of_order == {}, str(out_of_order)
    assert all(r.stats.sent > 0 for r, _, _ in relays), "both relays took part"


def test_cleanup_deletes_only_expired_sent_rows_in_batches(settings):
    settings.OUTBOX_CLEANUP_EXTRA = []
    settings.OUTBOX_CLEANUP_BATCH = 2
    settings.OUTBOX_RETENTION_S = 60
    write("A", 5)
    old = timezone.now() - timedelta(minutes=5)
    ids = list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))
    OutboxEvent.objects.filter(id__in=ids[:3]).update(sent_at=old)
    OutboxEvent.objects.filter(id=ids[3]).update(sent_at=timezone.now())
    InboxEvent.objects.create(
        consumer="c", event_id="00000000-0000-4000-8000-000000000001", event_type="x.y",
        aggregate_type="x", aggregate_id="1", sequence=1, origin="o",
    )  # fmt: skip
    assert outbox_cleanup() == {"outbox": 3, "inbox": 0}
    remaining = set(OutboxEvent.objects.values_list("id", flat=True))
    assert remaining == {ids[3], ids[4]}  # the fresh sent row and the pending one stay


cleaned_at: list = []


def purge_two(*, now) -> int:
    """A service's own retention function, as OUTBOX_CLEANUP_EXTRA names one."""
    cleaned_at.append(now)
    return 2


def purge_broken(*, now) -> int:
    raise RuntimeError("the service's purge is broken")


def test_cleanup_runs_the_services_retention_functions_past_one_that_fails(settings, caplog):
    settings.OUTBOX_CLEANUP_EXTRA = [f"{__name__}.purge_broken", f"{__name__}.purge_two"]
    cleaned_at.clear()
    now = timezone.now()

    deleted = outbox_cleanup(now=now)

    assert deleted == {"outbox": 0, "inbox": 0, f"{__name__}.purge_two": 2}
    assert cleaned_at == [now]
    assert f"{__name__}.purge_broken failed" in caplog.text


def test_cleanup_refuses_one_path_where_a_list_belongs(settings):
    settings.OUTBOX_CLEANUP_EXTRA = f"{__name__}.purge_two"
    with pytest.raises(ImproperlyConfigured, match="a list of dotted paths, got the string"):
        outbox_cleanup()


def purge_db_down(*, now) -> int:
    raise DatabaseError("server closed the connection unexpectedly")


def test_a_database_error_in_a_retention_function_reaches_the_relay(settings):
    # The relay resets its connections and backs off on DatabaseError; swallowing it here would
    # leave it on a dead connection.
    settings.OUTBOX_CLEANUP_EXTRA = [f"{__name__}.purge_db_down"]
    with pytest.raises(DatabaseError, match="closed the connection"):
        outbox_cleanup()


def test_a_mistyped_retention_function_stops_the_relay_at_start(settings):
    settings.OUTBOX_CLEANUP_EXTRA = [f"{__name__}.no_such_purge"]
    with pytest.raises(ImproperlyConfigured, match=r"cannot import '.*no_such_purge'"):
        Relay(broker_url="memory://")


def test_delete_in_batches_stops_after_max_batches_and_leaves_the_rest():
    write("B", 5)
    everything = OutboxEvent.objects.all()

    assert delete_in_batches(everything, 2, max_batches=2) == 4
    assert OutboxEvent.objects.count() == 1
    assert delete_in_batches(everything, 2) == 1


def test_claim_stops_an_aggregate_at_a_row_another_relay_holds():
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's")
    write("X", 3)
    write("Y", 1)
    second = OutboxEvent.objects.filter(aggregate_id="X").order_by("id")[1]
    locked, release = threading.Event(), threading.Event()

    def other_relay() -> None:
        try:
            with transaction.atomic():
                list(OutboxEvent.objects.select_for_update().filter(id=second.id))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=other_relay)
    holder.start()
    try:
        assert locked.wait(10)
        with transaction.atomic():
            claimed = [(row.aggregate_id, row.sequence) for row in _claim(100)]
    finally:
        release.set()
        holder.join()
    # Row 3 was free to lock, but publishing it before row 2 would break X's order.
    assert claimed == [("X", 1), ("Y", 1)]
