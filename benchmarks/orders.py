"""Benchmark the event-sourced orders service against plain ORM rows, in the same run.

    python benchmarks/orders.py [--seconds 4] [--threads 4] [--events 100000] [--samples 300]

Needs PostgreSQL; uses its own database (ORDERS_BENCH_DATABASE_URL, default
.../strangler_orders_bench), created and dropped here. No broker: outbox rows are written (as
every write does) but not relayed.

* appends_per_s: orders placed per second by `--threads` threads for `--seconds`, through
  `order_place` (load, decide, inline projection, outbox row, append at the expected version
  under the commit-order lock). baseline_writes_per_s: the monolith's write, plain rows in
  one transaction (order row, its item rows, the outbox row), same threads and time.
* catchup_events_per_s: `projection_rebuild` of a store holding `--events` events (orders
  placed, then paid, shipped, cancelled or refunded), from position 0 to the swap.
  baseline_read_events_per_s: the same rows read with the plain ORM, nothing folded or written.
* rw_p50_ms / rw_p99_ms: write then read back (the read-your-writes path: `order_place`, then
  the read model; no wait, since the write updated it in its own transaction).
  baseline_p50_ms / baseline_p99_ms: a plain row write then a plain read of it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
BENCH_URL = os.environ.get(
    "ORDERS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/strangler_orders_bench"
)
os.environ["DATABASE_URL"] = BENCH_URL
os.environ["DJANGO_SETTINGS_MODULE"] = "extracted.orders.settings"
os.environ.setdefault("STRANGLER_LOG_LEVEL", "WARNING")

import argparse  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402

PLAIN_TABLES = """
CREATE TABLE IF NOT EXISTS bench_plain_order (
    id uuid PRIMARY KEY, user_id bigint NOT NULL, status varchar(16) NOT NULL,
    total numeric(12, 2) NOT NULL, currency varchar(3) NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS bench_plain_item (
    id bigserial PRIMARY KEY, order_id uuid NOT NULL REFERENCES bench_plain_order (id),
    sku varchar(64) NOT NULL, quantity integer NOT NULL, unit_price numeric(10, 2) NOT NULL);
CREATE INDEX IF NOT EXISTS bench_plain_item_order ON bench_plain_item (order_id);
"""
ITEMS = [{"sku": "BOOK-1", "quantity": 2}, {"sku": "PEN-2", "quantity": 1}]


def database_create() -> None:
    import psycopg2

    server, _, name = BENCH_URL.rpartition("/")
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def database_drop() -> None:
    import psycopg2
    from django.db import connections

    connections.close_all()
    server, _, name = BENCH_URL.rpartition("/")
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def setup() -> None:
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(PLAIN_TABLES)
    from extracted.orders.models import Product

    Product.objects.create(sku="BOOK-1", name="A book", unit_price=Decimal("9.99"))
    Product.objects.create(sku="PEN-2", name="A pen", unit_price=Decimal("0.10"))


# ---------------------------------------------------------------- the two writes
def plain_write(user_id: int) -> uuid.UUID:
    """The monolith's write: order row, item rows and the outbox row in one transaction."""
    from django.db import connection, transaction

    import outbox

    order_id, now = uuid.uuid4(), datetime.now(UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_plain_order VALUES (%s, %s, 'pending', %s, 'EUR', %s, %s)",
            [order_id, user_id, Decimal("20.08"), now, now],
        )
        cursor.execute(
            "INSERT INTO bench_plain_item (order_id, sku, quantity, unit_price) "
            "VALUES (%s, 'BOOK-1', 2, 9.99), (%s, 'PEN-2', 1, 0.10)",
            [order_id, order_id],
        )
        outbox.publish(
            event_type="order.placed",
            aggregate_type="order",
            aggregate_id=str(order_id),
            payload={
                "order_id": order_id,
                "user_id": user_id,
                "status": "pending",
                "total": "20.08",
                "currency": "EUR",
                "items": [
                    {"sku": "BOOK-1", "quantity": 2, "unit_price": "9.99"},
                    {"sku": "PEN-2", "quantity": 1, "unit_price": "0.10"},
                ],
                "created_at": now,
            },
        )
    return order_id


def plain_read(order_id: uuid.UUID) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.status, o.total, i.sku, i.quantity, i.unit_price FROM bench_plain_order o "
            "JOIN bench_plain_item i ON i.order_id = o.id WHERE o.id = %s",
            [order_id],
        )
        return bool(cursor.fetchall())


def sourced_write(user_id: int) -> str:
    from extracted.orders.services import order_place

    return order_place(user_id=user_id, items=ITEMS).order_id


def sourced_read(order_id: str, user_id: int) -> bool:
    from extracted.orders.selectors import order_get

    return order_get(user_id=user_id, order_id=order_id) is not None


# ---------------------------------------------------------------- measurements
def throughput(write, *, threads: int, seconds: float) -> float:
    """Return writes per second of `threads` threads calling `write(user_id)` for `seconds`."""
    from django.db import connection

    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at: list[float] = []

    def run(index: int) -> None:
        start.wait()
        while time.monotonic() < stop_at[0]:
            write(1000 + index)
            counts[index] += 1
        connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    stop_at.append(time.monotonic() + seconds)
    began = time.monotonic()
    start.wait()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - began)


def read_after_write(write, read, *, samples: int) -> list[float]:
    """Return, per sample, ms from the write's call to the first read that finds it."""
    waits = []
    for n in range(samples):
        began = time.perf_counter()
        key = write(5000 + n % 50)
        while not read(key, 5000 + n % 50):
            pass
        waits.append((time.perf_counter() - began) * 1000)
    return waits


def log_fill(events: int) -> None:
    """Write `events` events straight into the store: orders placed, and most moved on."""
    from extracted.orders.models import StoredEvent

    item = {"sku": "BOOK-1", "quantity": 1, "unit_price": "9.99"}
    placed = {"user_id": 7, "currency": "EUR", "items": [item], "total": "9.99"}
    moves = [[], ["OrderPaid"], ["OrderPaid", "OrderShipped"], ["OrderCancelled"]]
    rows, n, t0 = [], 0, datetime(2026, 1, 1, tzinfo=UTC)
    while n < events:
        stream = uuid.uuid4()
        kinds = ["OrderPlaced", *moves[n % len(moves)]][: events - n]
        for version, kind in enumerate(kinds, start=1):
            data = placed if kind == "OrderPlaced" else {}
            if kind == "OrderPaid":
                data = {"payment_id": str(uuid.uuid4())}
            rows.append(
                StoredEvent(
                    stream_id=stream,
                    version=version,
                    event_type=kind,
                    schema_version=2 if kind == "OrderPlaced" else 1,
                    data=data,
                    occurred_at=t0 + timedelta(seconds=n),
                )
            )
            n += 1
        if len(rows) >= 5000:
            StoredEvent.objects.bulk_create(rows)
            rows = []
    StoredEvent.objects.bulk_create(rows)


def catch_up(events: int) -> tuple[float, float]:
    """Return (rebuild events/s from position 0, plain ORM read events/s) over `events`."""
    from extracted.orders.models import StoredEvent
    from extracted.orders.projections import projection_rebuild

    StoredEvent.objects.all().delete()
    log_fill(events)
    began = time.monotonic()
    seen = sum(1 for _ in StoredEvent.objects.order_by("id").iterator(chunk_size=2000))
    read_rate = seen / (time.monotonic() - began)
    began = time.monotonic()
    result = projection_rebuild(batch=2000, progress=False)
    return result.events / (time.monotonic() - began), read_rate


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    database_create()
    try:
        setup()
        baseline_wps = throughput(plain_write, threads=args.threads, seconds=args.seconds)
        appends_ps = throughput(sourced_write, threads=args.threads, seconds=args.seconds)
        print(f"writes: plain rows {baseline_wps:.0f}/s, event-sourced {appends_ps:.0f}/s")
        plain = read_after_write(plain_write, lambda key, _: plain_read(key), samples=args.samples)
        sourced = read_after_write(sourced_write, sourced_read, samples=args.samples)
        print(
            f"write+read back: plain p50 {statistics.median(plain):.2f} ms, event-sourced "
            f"p50 {statistics.median(sourced):.2f} ms"
        )
        catchup_ps, read_ps = catch_up(args.events)
        print(f"catch-up of {args.events} events: {catchup_ps:.0f}/s (plain read {read_ps:.0f}/s)")
    finally:
        database_drop()
    print(
        "RESULT orders "
        f"appends_per_s={appends_ps:.0f} baseline_writes_per_s={baseline_wps:.0f} "
        f"vs_baseline_writes={appends_ps / baseline_wps:.2f} "
        f"catchup_events_per_s={catchup_ps:.0f} baseline_read_events_per_s={read_ps:.0f} "
        f"vs_baseline_read={catchup_ps / read_ps:.2f} "
        f"rw_p50_ms={statistics.median(sourced):.2f} rw_p99_ms={pct(sourced, 0.99):.2f} "
        f"baseline_p50_ms={statistics.median(plain):.2f} baseline_p99_ms={pct(plain, 0.99):.2f}"
    )


if __name__ == "__main__":
    main()
