"""The sales report: sums per day, status and currency, over the right window, with progress."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from unittest import mock

import pytest

from monolith.orders.reports import sales_report_window, sales_report_write
from monolith.orders.tasks import generate_sales_report

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 10)


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def read(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_report_sums_orders_per_day_status_and_currency(place_order, tmp_path):
    yesterday = DAY - dt.timedelta(days=1)
    place_order(status="paid", items=(("A", 1, "10.00"),), created_at=at(yesterday, 1))
    place_order(status="paid", items=(("A", 2, "10.00"),), created_at=at(yesterday, 23))
    place_order(status="shipped", items=(("B", 1, "5.55"),), created_at=at(yesterday, 12))
    place_order(
        status="paid", items=(("A", 1, "7.00"),), created_at=at(yesterday, 9), currency="USD"
    )
    place_order(status="cancelled", items=(("C", 1, "1.00"),), created_at=at(DAY, 0))

    path = sales_report_write(start=yesterday, end=DAY + dt.timedelta(days=1), directory=tmp_path)

    assert path.name == "sales-2026-03-09-to-2026-03-10.csv"
    assert read(path) == [
        {"day": "2026-03-09", "status": "paid", "currency": "EUR", "count": "2", "total": "30.00"},
        {"day": "2026-03-09", "status": "paid", "currency": "USD", "count": "1", "total": "7.00"},
        {
            "day": "2026-03-09",
            "status": "shipped",
            "currency": "EUR",
            "count": "1",
            "total": "5.55",
        },
        {
            "day": "2026-03-10",
            "status": "cancelled",
            "currency": "EUR",
            "count": "1",
            "total": "1.00",
        },
    ]


def test_report_leaves_out_orders_outside_the_window(place_order, tmp_path):
    place_order(created_at=at(DAY - dt.timedelta(days=2), 23))  # the day before the window
    place_order(created_at=at(DAY, 0))  # the end day is excluded
    place_order(status="shipped", created_at=at(DAY - dt.timedelta(days=1), 0))

    path = sales_report_write(start=DAY - dt.timedelta(days=1), end=DAY, directory=tmp_path)

    assert [(row["day"], row["status"], row["count"]) for row in read(path)] == [
        ("2026-03-09", "shipped", "1")
    ]


def test_report_streams_in_chunks_and_reports_progress(place_order, tmp_path):
    for hour in range(5):
        place_order(created_at=at(DAY, hour))
    seen = []

    sales_report_write(
        start=DAY,
        end=DAY + dt.timedelta(days=1),
        directory=tmp_path,
        progress=lambda done, total: seen.append((done, total)),
        chunk_size=2,
    )

    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_report_with_no_orders_is_a_header_only_file(db, tmp_path):
    path = sales_report_write(start=DAY, end=DAY + dt.timedelta(days=1), directory=tmp_path)

    assert path.read_text().splitlines() == ["day,status,currency,count,total"]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_window_of_one_day_is_yesterday():
    assert sales_report_window(days=1, until=DAY) == (dt.date(2026, 3, 9), DAY)
    assert sales_report_window(days=7, until=DAY) == (dt.date(2026, 3, 3), DAY)


@pytest.mark.parametrize("days", [0, -1, 1.5, "2", True])
def test_window_refuses_a_days_count_that_is_not_a_positive_whole_number(days):
    with pytest.raises(ValueError, match="days must be a whole number of at least 1"):
        sales_report_window(days=days, until=DAY)


def test_task_writes_under_media_reports_and_publishes_progress(place_order, media_root):
    place_order(status="paid", created_at=at(DAY - dt.timedelta(days=1), 8))

    with mock.patch.object(generate_sales_report, "update_state") as update_state:
        result = generate_sales_report.apply(kwargs={"days": 1, "until": DAY.isoformat()})

    path = Path(result.get())
    assert path.parent == media_root / "reports"
    assert read(path)[0]["count"] == "1"
    states = [call.kwargs for call in update_state.call_args_list]
    assert states[0] == {"state": "PROGRESS", "meta": {"done": 0, "total": 1}}
    assert states[-1] == {"state": "PROGRESS", "meta": {"done": 1, "total": 1}}
