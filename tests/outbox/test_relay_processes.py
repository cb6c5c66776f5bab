"""Several relay processes against one PostgreSQL, one of them SIGKILLed in the middle of a
batch: every event still reaches the broker, and each aggregate's events arrive in order.

Each relay claims with `FOR UPDATE SKIP LOCKED`; the killed one held claimed rows in an open
transaction while publishing them (seen in pg_stat_activity as "idle in transaction" under its
application_name), so its rows go back to pending and another relay sends them again: copies
are allowed (consumers' inboxes drop them), an event overtaking an earlier one of its aggregate
is not.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from django.db import connection, transaction

import outbox
from outbox.models import OutboxEvent

from .conftest import collect, declare_probe, order_payload
from .test_proof import ROOT, subprocess_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
EVENTS = 2000
AGGREGATES = 40


def write_backlog() -> None:
    for start in range(0, EVENTS, 500):
        with transaction.atomic():
            for n in range(start, start + 500):
                outbox.publish(
                    event_type="order.placed",
                    aggregate_type="order",
                    aggregate_id=f"agg{n % AGGREGATES}",
                    payload=order_payload(),
                )


def start_relay(broker, name: str) -> subprocess.Popen:
    env = subprocess_env(broker, PGAPPNAME=name)
    settings = json.loads(env["OUTBOX_TEST_SETTINGS"]) | {
        "OUTBOX_RELAY_BATCH": 50,  # many small batches, so the relays interleave
        "OUTBOX_RELAY_WINDOW": 50,
    }
    env["OUTBOX_TEST_SETTINGS"] = json.dumps(settings)
    return subprocess.Popen(
        [sys.executable, "manage.py", "outbox_relay"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def mid_batch(name: str) -> bool:
    """Say whether relay `name` holds claimed rows it is publishing, after others were sent.

    Between its claim and its commit a relay's claiming connection is "idle in transaction"
    (its locks held) while it publishes and waits for confirms.
    """
    if OutboxEvent.objects.exclude(sent_at=None).count() < 300:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND state = 'idle in transaction'",
            [name],
        )
        return cursor.fetchone()[0] > 0


def test_three_relays_one_killed_mid_batch_send_everything_in_order_per_aggregate(broker):
    if connection.vendor != "postgresql":
        pytest.skip("several relays need SKIP LOCKED")
    probe = declare_probe(broker)
    write_backlog()
    relays = {name: start_relay(broker, name) for name in ("relay-a", "relay-b", "relay-c")}
    try:
        deadline = time.monotonic() + 30
        while not mid_batch("relay-b"):
            assert time.monotonic() < deadline, "relay-b never claimed a batch"
            time.sleep(0.005)
        relays["relay-b"].send_signal(signal.SIGKILL)
        assert relays["relay-b"].wait(10) == -signal.SIGKILL
        pending_at_kill = OutboxEvent.objects.filter(sent_at=None).count()
        bodies = collect(probe, count=EVENTS, timeout=60)
        deadline = time.monotonic() + 30
        while OutboxEvent.objects.filter(sent_at=None).exists():
            assert time.monotonic() < deadline, "rows stayed pending after the kill"
            time.sleep(0.1)
        bodies += collect(probe, count=EVENTS, timeout=1.0)  # copies of the killed batch
    finally:
        outputs = {}
        for name, process in relays.items():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            outputs[name] = process.communicate(timeout=20)[0]
    first_seen: dict[str, list[int]] = defaultdict(list)
    for body in bodies:
        sequences = first_seen[body["aggregate_id"]]
        if body["sequence"] not in sequences:
            sequences.append(body["sequence"])
    per_aggregate = EVENTS // AGGREGATES
    out_of_order = {
        aggregate: sequences
        for aggregate, sequences in first_seen.items()
        if sequences != list(range(1, per_aggregate + 1))
    }
    sent = {
        name: [line for line in out.splitlines() if "relay stopped" in line]
        for name, out in outputs.items()
    }
    print(
        f"\nthree relays: {EVENTS} events, relay-b SIGKILLed mid-batch with {pending_at_kill} "
        f"pending; {len(bodies)} messages reached the broker ({len(bodies) - EVENTS} copies); "
        f"survivors: {sent['relay-a']} {sent['relay-c']}; aggregates out of order "
        f"{len(out_of_order)}"
    )
    assert len(first_seen) == AGGREGATES
    assert out_of_order == {}
    assert all(sent[name] for name in ("relay-a", "relay-c")), "the survivors stopped cleanly"
