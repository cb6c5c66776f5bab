"""Benchmark the outbox: relay throughput against the broker's ceiling, commit-to-handled latency.

    python benchmarks/outbox.py [--events 20000] [--rate 500] [--seconds 8]

Needs PostgreSQL and RabbitMQ (BROKER_URL, default amqp://guest:guest@127.0.0.1:5672//); uses
its own database (OUTBOX_BENCH_DATABASE_URL, default .../strangler_outbox_bench) and its own
exchange and queues, deleted at the end.

* CPU s per round: where each side's CPU went (broker, PostgreSQL, this process), from /proc.
* ceiling_rps: a tight loop of unconfirmed persistent publishes of the same messages (bodies and
  properties) to the same exchange and queues, ended by one synchronous round trip.
* relay_rps: one relay draining the same rows: claim, publish with a window of confirms, mark
  sent. Rounds alternate ceiling and relay; medians are reported (vs_ceiling: median ratio).
* p50_ms / p99_ms: events committed one per transaction at a steady `--rate` by 8 writer
  threads; latency from the writer's commit (the time `transaction.atomic()` returned) to the
  commit of the consumer's effect (the time the consumer's transaction, which wrote the effect
  row, returned from COMMIT: a `transaction.on_commit` callback in the consumer process stamps
  it). Relay and consumer run as their own processes, as in production.
* handled / unhandled: events whose effect committed within `--window` seconds after the last
  write, and the others. An unhandled event counts as infinitely late in the percentiles, so a
  run that drops or strands events cannot report a good p99.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# `python benchmarks/outbox.py` would otherwise make this file the `outbox` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
os.environ["DATABASE_URL"] = os.environ.get(
    "OUTBOX_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/strangler_outbox_bench"
)
os.environ["DJANGO_SETTINGS_MODULE"] = "monolith.settings"
os.environ.setdefault("STRANGLER_LOG_LEVEL", "WARNING")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

EFFECT_TABLE = "outbox_bench_effect"
WRITERS = 8  # request threads of the monolith committing events


def configure(tag: str) -> None:
    """Set up Django and point every outbox name at this run's private namespace."""
    import django
    from django.conf import settings

    django.setup()
    settings.OUTBOX_EXCHANGE = f"bench{tag}.events"
    settings.OUTBOX_STREAM_QUEUE = f"bench{tag}.events.stream"
    settings.OUTBOX_RETRY_DELAYS_MS = [1000]
    settings.OUTBOX_RELAY_POLL_S = 1.0
    settings.OUTBOX_CLEANUP_INTERVAL_S = 3600.0


def service_name(tag: str) -> str:
    return f"bench{tag}"


def ensure_database() -> None:
    import psycopg2
    from dj_database_url import parse

    cfg = parse(os.environ["DATABASE_URL"])
    admin = psycopg2.connect(
        dbname="postgres", user=cfg["USER"], host=cfg["HOST"], port=cfg["PORT"] or 5432,
        password=cfg["PASSWORD"] or None,
    )  # fmt: skip
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    admin.close()


@contextlib.contextmanager
def accounted(role: str):
    """Print the CPU seconds this role used; with OUTBOX_BENCH_PROFILE=DIR, dump a cProfile."""
    folder = os.environ.get("OUTBOX_BENCH_PROFILE")
    profile = cProfile.Profile() if folder else None
    if profile:
        profile.enable()
    try:
        yield
    finally:
        if profile:
            profile.disable()
            profile.dump_stats(str(Path(folder) / f"{role}.prof"))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{role} cpu: {usage.ru_utime + usage.ru_stime:.2f} s", file=sys.stderr)


def role_relay(tag: str) -> None:
    configure(tag)
    from outbox.relay import Relay

    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    with accounted("relay"):
        Relay(should_stop=lambda: stopping["now"]).run()


def role_consume(tag: str, stamps_path: str) -> None:
    configure(tag)
    from django.db import connection, transaction

    from outbox.consumer import EventConsumer
    from outbox.registry import handler

    service = service_name(tag)
    stamps: list[tuple[str, float]] = []

    @handler("order.placed", consumer=service)
    def record(event) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {EFFECT_TABLE} (event_id) VALUES (%s)",  # noqa: S608
                [event.id],
            )
        # Stamped when the transaction holding the effect has committed, not before.
        transaction.on_commit(lambda: stamps.append((event.id, time.time())))

    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    try:
        with accounted("consumer"):
            stats = EventConsumer(service=service, should_stop=lambda: stopping["now"]).run()
    finally:
        Path(stamps_path).write_text(json.dumps(stamps))
    print(f"consumer outcomes: {stats.outcomes}", file=sys.stderr)


def payload() -> dict:
    return {
        "order_id": str(uuid.uuid4()),
        "user_id": 1,
        "status": "pending",
        "total": "20.00",
        "currency": "EUR",
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
        "created_at": "2026-01-01T10:00:00+00:00",
    }


def write_events(count: int, *, per_transaction: int = 500) -> None:
    from django.db import transaction

    import outbox

    for start in range(0, count, per_transaction):
        with transaction.atomic():
            for n in range(start, min(count, start + per_transaction)):
                outbox.publish(
                    event_type="order.placed",
                    aggregate_type="order",
                    aggregate_id=f"agg{n % 1000}",
                    payload=payload(),
                )


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE outbox_outboxevent")


def cpu_seconds() -> dict[str, float]:
    """Return CPU seconds used so far per broker (beam.smp) and PostgreSQL process, and ours.

    Linux /proc, best effort: every beam.smp and postgres process of the machine is counted,
    other tenants' work included; `cpu_delta` sums the processes alive at the end of a phase
    (one that ended during it is missed).
    """
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        key = {"beam.smp": "broker", "postgres": "database"}.get(name)
        if key:
            fields = text[text.rindex(")") + 2 :].split()
            found[f"{key}:{stat.parent.name}"] = (int(fields[11]) + int(fields[12])) / tick
    return found | {"client": time.process_time()}


def cpu_delta(before: dict[str, float]) -> str:
    after = cpu_seconds()
    totals = {"broker": 0.0, "database": 0.0, "client": 0.0}
    for key, value in after.items():
        # A process started during the phase (the relay's own backends) counts whole.
        totals[key.split(":")[0]] += value - before.get(key, 0.0)
    return " ".join(f"{key} {value:.2f}" for key, value in totals.items())


def measure_ceiling(bodies: list[tuple[str, bytes, str, str]], exchange: str) -> float:
    """Return messages/s of unconfirmed persistent publishes, ended by one round trip.

    The same messages as the relay's, properties included (message_id, type, app_id, user_id:
    each costs the broker CPU), without confirms and without the database.
    """
    import amqp

    from outbox.broker import broker_connection, broker_user

    conn = broker_connection()
    conn.connect()
    user = broker_user(conn)
    channel = conn.connection.channel()
    started = time.perf_counter()
    for routing_key, body, event_id, origin in bodies:
        message = amqp.Message(
            body,
            content_type="application/json",
            delivery_mode=2,
            message_id=event_id,
            type=routing_key,
            app_id=origin,
            user_id=user,
        )
        channel.basic_publish(message, exchange, routing_key)
    channel.exchange_declare(exchange, "topic", passive=True)  # the round trip
    elapsed = time.perf_counter() - started
    conn.release()
    return len(bodies) / elapsed


def declare_sink(tag: str) -> str:
    from kombu import Queue

    from outbox.broker import broker_connection
    from outbox.topology import declare_publisher, events_exchange

    name = f"bench{tag}.sink"
    with broker_connection() as conn:
        declare_publisher(conn)
        Queue(name, events_exchange(), routing_key="#", durable=True).bind(
            conn.default_channel
        ).declare()
    return name


def purge(queue: str) -> None:
    from outbox.broker import broker_connection

    with broker_connection() as conn:
        conn.default_channel.queue_purge(queue)


def teardown(tag: str) -> None:
    from django.conf import settings

    from outbox.broker import broker_connection
    from outbox.selectors import consumer_queues

    service = service_name(tag)
    queues = [f"bench{tag}.sink", settings.OUTBOX_STREAM_QUEUE, *consumer_queues(service)]
    with broker_connection() as conn:
        for name in queues:
            channel = conn.channel()
            try:
                channel.queue_delete(name)
            except Exception:  # noqa: S112 - never declared in this run
                continue
            finally:
                channel.close()
        conn.channel().exchange_delete(settings.OUTBOX_EXCHANGE)


def spawn(role: str, tag: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--role", role, "--tag", tag, *extra],
        cwd=ROOT,
        env=os.environ.copy(),
    )


def measure_latency(
    tag: str, *, rate: int, seconds: float, window: float
) -> tuple[list[float], int]:
    """Return commit-to-effect-commit latencies in ms (unhandled: inf) and the events written."""
    import tempfile

    from django.db import connection, transaction

    import outbox
    from outbox.selectors import queue_depths
    from outbox.topology import service_queue_name

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {EFFECT_TABLE}")
        cursor.execute(f"CREATE TABLE {EFFECT_TABLE} (event_id uuid)")
    stamps_path = Path(tempfile.mkdtemp(prefix="outbox-bench-")) / "stamps.json"
    children = [spawn("relay", tag), spawn("consume", tag, "--stamps", str(stamps_path))]
    try:
        queue = service_queue_name(service_name(tag))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (queue_depths([queue])[0].consumers or 0):
            time.sleep(0.2)
        committed: dict[str, float] = {}
        total = int(rate * seconds)
        started = time.perf_counter()

        def writer(offset: int) -> None:
            # Writers share one steady schedule: event n is due at n / rate seconds.
            try:
                for n in range(offset, total, WRITERS):
                    delay = started + n / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    with transaction.atomic():
                        row = outbox.publish(
                            event_type="order.placed",
                            aggregate_type="order",
                            aggregate_id=f"lat{n % 200}",
                            payload=payload(),
                        )
                    committed[str(row.event_id)] = time.time()
            finally:
                connection.close()

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        achieved = total / (time.perf_counter() - started)
        # The window: events whose effect has not committed `window` s after the last write
        # are failures.
        deadline = time.monotonic() + window
        effects = 0
        while time.monotonic() < deadline and effects < total:
            time.sleep(0.1)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {EFFECT_TABLE}")  # noqa: S608
                effects = cursor.fetchone()[0]
        window_end = time.time() if effects < total else math.inf
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(15)
    stamps = dict(json.loads(stamps_path.read_text())) if stamps_path.exists() else {}
    handled = {k: v for k, v in stamps.items() if k in committed and v <= window_end}
    print(
        f"latency: {len(handled)}/{total} handled within {window:.0f} s of the last write, "
        f"written at {achieved:.0f}/s"
    )
    return [
        (handled[k] - committed[k]) * 1000 if k in handled else math.inf for k in committed
    ], total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.inf
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="rows per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--window", type=float, default=5.0, help="seconds after the last write to handle all"
    )
    parser.add_argument("--role", choices=["relay", "consume"])
    parser.add_argument("--tag", default=uuid.uuid4().hex[:8])
    parser.add_argument("--stamps", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "relay":
        return role_relay(args.tag)
    if args.role == "consume":
        return role_consume(args.tag, args.stamps)

    ensure_database()
    configure(args.tag)
    from django.conf import settings
    from django.core.management import call_command

    from outbox.broker import EnvelopePublisher
    from outbox.envelope import Envelope
    from outbox.models import AggregateSequence, ConsumerCursor, InboxEvent, OutboxEvent
    from outbox.relay import relay_drain

    call_command("migrate", verbosity=0)
    for model in (AggregateSequence, InboxEvent, ConsumerCursor, OutboxEvent):
        model.objects.all().delete()
    try:
        sink = declare_sink(args.tag)
        relay_rates, ceilings, ratios = [], [], []
        # Interleaved rounds, medians reported: the machine is shared, so any single
        # measurement may be hit by a neighbour; both sides are measured under the same noise.
        for round_ in range(args.rounds):
            OutboxEvent.objects.all().delete()
            write_events(args.events)
            vacuum()  # earlier rounds' rows out of the way, as on a fresh table
            bodies = [
                (row.event_type, Envelope.from_row(row).to_json(), str(row.event_id), row.origin)
                for row in OutboxEvent.objects.filter(sent_at=None).order_by("id")
            ]
            before = cpu_seconds()
            ceiling = measure_ceiling(bodies, settings.OUTBOX_EXCHANGE)
            ceiling_cpu = cpu_delta(before)
            purge(sink)
            publisher = EnvelopePublisher()
            publisher.connect()  # as the ceiling: connected before the clock starts
            before = cpu_seconds()
            started = time.perf_counter()
            sent = relay_drain(publisher=publisher)
            relay_rps = sent / (time.perf_counter() - started)
            relay_cpu = cpu_delta(before)
            publisher.close()
            purge(sink)
            relay_rates.append(relay_rps)
            ceilings.append(ceiling)
            ratios.append(relay_rps / ceiling)
            print(
                f"round {round_ + 1}: relay {relay_rps:.0f}/s ({sent} rows), "
                f"ceiling {ceiling:.0f}/s, ratio {relay_rps / ceiling:.2f}; CPU s: ceiling "
                f"[{ceiling_cpu}], relay [{relay_cpu}]"
            )
        latencies, written = measure_latency(
            args.tag, rate=args.rate, seconds=args.seconds, window=args.window
        )
    finally:
        teardown(args.tag)
    if not ratios:  # --rounds 0: latency only
        relay_rates, ceilings, ratios = [0.0], [0.0], [0.0]
    relay_rps, ceiling = statistics.median(relay_rates), statistics.median(ceilings)
    handled = sum(1 for value in latencies if math.isfinite(value))
    print(f"relay vs ceiling per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(
        f"RESULT outbox relay_rps={relay_rps:.0f} ceiling_rps={ceiling:.0f} "
        f"vs_ceiling={statistics.median(ratios):.2f} p50_ms={percentile(latencies, 50):.1f} "
        f"p99_ms={percentile(latencies, 99):.1f} handled={handled} unhandled={written - handled}"
    )


if __name__ == "__main__":
    main()
