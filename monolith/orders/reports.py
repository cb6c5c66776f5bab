"""Sales reports: orders of a date range, summed per day, status and currency, as a CSV file.

* Memory: orders are streamed from the database in chunks (a server-side cursor on
  PostgreSQL); only one running sum per (day, status, currency) is kept.
* Atomicity: the file is written under a temporary name and renamed into place, so a reader
  never sees half a report and a re-run (a retried or redelivered task) replaces it whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .models import Order

REPORT_COLUMNS = ("day", "status", "currency", "count", "total")

Progress = Callable[[int, int], None]


@dataclass
class _Sum:
    count: int = 0
    total: Decimal = Decimal("0.00")


def sales_report_window(*, days: int, until: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """Return (first day, day after the last) of the `days` days before `until`.

    `until` (excluded) defaults to today in UTC, so `days=1` is yesterday: what the nightly run
    needs.
    """
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise ValueError(f"days must be a whole number of at least 1, got {days!r}.")
    end = until or dt.datetime.now(dt.UTC).date()
    return end - dt.timedelta(days=days), end


def sales_report_write(
    *,
    start: dt.date,
    end: dt.date,
    directory: Path,
    progress: Progress | None = None,
    chunk_size: int = 2000,
) -> Path:
    """Write the sales CSV for orders created on days `start` <= day < `end`; return its path."""
    since = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    until = dt.datetime.combine(end, dt.time.min, tzinfo=dt.UTC)
    orders = Order.objects.filter(created_at__gte=since, created_at__lt=until).order_by()
    total = orders.count()
    report = progress or (lambda done, total: None)
    report(0, total)

    sums: dict[tuple[dt.date, str, str], _Sum] = {}
    done = 0
    rows = orders.values_list("created_at", "status", "currency", "total")
    for created_at, status, currency, amount in rows.iterator(chunk_size=chunk_size):
        bucket = sums.setdefault((created_at.astimezone(dt.UTC).date(), status, currency), _Sum())
        bucket.count += 1
        bucket.total += amount
        done += 1
        if done % chunk_size == 0:
            report(done, total)

    directory.mkdir(parents=True, exist_ok=True)
    last_day = end - dt.timedelta(days=1)
    path = directory / f"sales-{start.isoformat()}-to-{last_day.isoformat()}.csv"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".sales-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(REPORT_COLUMNS)
            for (day, status, currency), bucket in sorted(sums.items()):
                writer.writerow(
                    [day.isoformat(), status, currency, bucket.count, f"{bucket.total:.2f}"]
                )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    report(done, total)
    return path
