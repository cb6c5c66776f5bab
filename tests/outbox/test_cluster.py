"""The outbox on a real three-node RabbitMQ cluster: a node dies under the relay, then under a
consumer, while orders are written at a steady rate; nothing is lost, doubled or reordered.

The cluster is this test's own (tests/outbox/cluster.py): separate node names, ports and data
folders, bound to 127.0.0.1, removed afterwards; the machine's broker is left alone. Queues are
quorum queues (OUTBOX_QUEUE_TYPE=quorum); the relay and the consumer get every node in
BROKER_URL and fail over by themselves. The numbers are printed (run with -s to see them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

import pytest
from django.db import connection, transaction

import outbox
from outbox.models import OutboxEvent
from outbox.selectors import queue_depths

from .cluster import RabbitCluster, rabbitmq_sbin
from .conftest import order_payload
from .ordered_handlers import ordered_rows, ordered_table_create

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICE = "clustershop"
RATE = 40  # events written per second, one per transaction
AGGREGATES = 25


@pytest.fixture
def cluster():
    if rabbitmq_sbin() is None:
        pytest.skip("rabbitmq-server binaries are not installed (apt-get install rabbitmq-server)")
    if connection.vendor != "postgresql":
        pytest.skip("the relay and consumer processes run against PostgreSQL")
    cluster = RabbitCluster()
    try:
        cluster.form()
        yield cluster
    finally:
        cluster.close()


def process_env(cluster: RabbitCluster) -> dict[str, str]:
    db = connection.settings_dict
    return os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "BROKER_URL": cluster.url,
        "DJANGO_SETTINGS_MODULE": "tests.outbox.subprocess_settings",
        "OUTBOX_TEST_CONSUMER": SERVICE,
        "OUTBOX_TEST_SETTINGS": json.dumps(
            {
                "OUTBOX_QUEUE_TYPE": "quorum",
                "OUTBOX_RELAY_BACKOFF_MAX_S": 1.0,
                "OUTBOX_RETRY_DELAYS_MS": [200],
                "OUTBOX_GAP_WAIT_MS": 100,
            }
        ),
    }


def start(argv: list[str], env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, stdout=log, stderr=log
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Writer(threading.Thread):
    """Write one order.placed per transaction at a steady RATE until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.written: list[str] = []

    def run(self) -> None:
        started = time.monotonic()
        n = 0
        try:
            while not self.stopping.is_set():
                delay = started + n / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with transaction.atomic():
                    row = outbox.publish(
                        event_type="order.placed",
                        aggregate_type="order",
                        aggregate_id=f"agg{n % AGGREGATES}",
                        payload=order_payload(),
                    )
                self.written.append(str(row.event_id))
                n += 1
        finally:
            connection.close()


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def node_of(cluster: RabbitCluster, name: str, *, not_on: int | None = None) -> int:
    """Return the node a process's connection is on (waiting for it to exist, elsewhere)."""
    found: list[int] = []

    def located() -> bool:
        index = cluster.node_of(name)
        if index is None or index == not_on:
            return False
        found.append(index)
        return True

    wait_for(located, 30, f"{name!r} to connect")
    return found[-1]


def test_a_node_dying_under_the_relay_then_under_the_consumer_loses_doubles_and_reorders_nothing(
    cluster, settings, tmp_path
):
    settings.BROKER_URL = cluster.url
    settings.OUTBOX_QUEUE_TYPE = "quorum"
    ordered_table_create()
    env = process_env(cluster)
    log_path = tmp_path / "processes.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed below
    consumer = start(
        ["outbox_consume", "--service", SERVICE, "--handlers", "tests.outbox.ordered_handlers"],
        env,
        log,
    )
    relay = start(["outbox_relay"], env, log)
    writer = Writer()
    kills, restarts = [], 0
    try:
        wait_for(
            lambda: (queue_depths([f"{SERVICE}.events"])[0].consumers or 0) > 0,
            60,
            "the consumer to subscribe",
        )
        writer.start()
        time.sleep(3)

        relay_node = node_of(cluster, "outbox relay")
        cluster.kill(relay_node)
        kills.append(("relay", cluster.nodes[relay_node].name))
        moved_to = node_of(cluster, "outbox relay", not_on=relay_node)
        published_before = len(writer.written)
        wait_for(
            lambda: OutboxEvent.objects.filter(sent_at__isnull=False).count() >= published_before,
            60,
            "the relay to publish what was written before it failed over",
        )
        # Back to three nodes, so the quorum queues keep a majority through the next death.
        cluster.start(relay_node)
        cluster.await_running(relay_node)
        restarts += 1

        consumer_node = node_of(cluster, "outbox consumer")
        cluster.kill(consumer_node)
        kills.append(("consumer", cluster.nodes[consumer_node].name))
        node_of(cluster, "outbox consumer", not_on=consumer_node)
        time.sleep(3)
    finally:
        writer.stopping.set()
        writer.join(10)
    try:
        written = set(writer.written)
        wait_for(
            lambda: len({row[0] for row in ordered_rows(SERVICE)} & written) == len(written),
            90,
            "every written event to be applied",
        )
        time.sleep(1.0)  # room for a wrong second application to show
    finally:
        stop(relay)
        stop(consumer)
        log.close()
    rows = ordered_rows(SERVICE)
    applied = Counter(event_id for event_id, _, _ in rows)
    lost = written - set(applied)
    doubled = {event_id for event_id, n in applied.items() if n > 1}
    by_aggregate: dict[str, list[int]] = defaultdict(list)
    for _, aggregate, sequence in rows:
        by_aggregate[aggregate].append(sequence)
    out_of_order = {
        aggregate: sequences
        for aggregate, sequences in by_aggregate.items()
        if sequences != list(range(1, len(sequences) + 1))
    }
    output = log_path.read_text(errors="replace")
    relay_stats = [line for line in output.splitlines() if "outbox relay stopped" in line]
    consumer_stats = [line for line in output.splitlines() if "stopped: {" in line]
    print(
        f"\ncluster fault test: events written {len(written)} at {RATE}/s over {AGGREGATES} "
        f"aggregates; nodes killed {len(kills)} ({kills}); nodes restarted {restarts}; "
        f"relay moved to node {moved_to + 1}; consumer reconnects "
        f"{output.count('consuming from') - 1}; {relay_stats[-1:]} {consumer_stats[-1:]}; "
        f"lost {len(lost)}, doubled effects {len(doubled)}, aggregates out of order "
        f"{len(out_of_order)}"
    )
    assert len(written) > 0 and len(kills) == 2
    assert not OutboxEvent.objects.filter(sent_at=None).exists()
    assert lost == set()
    assert doubled == set()
    assert out_of_order == {}
