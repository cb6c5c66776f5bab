"""Backfill from a real monolith database into event streams (resumable); reconcile lists gaps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from extracted.orders.backfill import orders_backfill
from extracted.orders.models import BackfillCheckpoint, Product, StoredEvent
from extracted.orders.reconcile import orders_reconcile
from extracted.orders.services import order_load
from extracted.orders.source import source_connection

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATUSES = ("pending", "paid", "shipped", "cancelled", "refunded")


@pytest.fixture
def source_db(monolith_db_url, monolith_sql):
    return source_connection(url=monolith_db_url)


def shop(cursor, *, orders: int) -> list[uuid.UUID]:
    """Plant a catalogue, a user and `orders` orders of every status, with lines and payments."""
    cursor.execute(
        "INSERT INTO users_user (id, password, is_superuser, first_name, last_name, is_staff, "
        "is_active, date_joined, email, full_name, updated_at) "
        "VALUES (41, '', false, '', '', false, true, now(), 'u41@example.com', '', now())"
    )
    for sku, price in (("BOOK-1", "9.99"), ("PEN-2", "0.10")):
        cursor.execute(
            "INSERT INTO orders_product (sku, name, unit_price, created_at) "
            "VALUES (%s, %s, %s, now())",
            [sku, f"the {sku}", price],
        )
    ids = []
    for n in range(orders):
        order_id, status = uuid.uuid4(), STATUSES[n % len(STATUSES)]
        created, updated = T0 + timedelta(minutes=n), T0 + timedelta(minutes=n, seconds=30)
        cursor.execute(
            "INSERT INTO orders_order (id, user_id, status, total, currency, created_at, "
            "updated_at) VALUES (%s, 41, %s, %s, 'EUR', %s, %s)",
            [str(order_id), status, f"{9.99 * (n + 1) + 0.10:.2f}", created, updated],
        )
        cursor.execute(
            "INSERT INTO orders_orderitem (order_id, sku, quantity, unit_price) VALUES "
            "(%s, 'BOOK-1', %s, '9.99'), (%s, 'PEN-2', 1, '0.10')",
            [str(order_id), n + 1, str(order_id)],
        )
        if status in ("paid", "shipped", "refunded"):
            cursor.execute(
                "INSERT INTO payments_payment (id, order_id, user_id, amount, currency, status, "
                "card_last4, provider_reference, failure_reason, created_at, updated_at) "
                "VALUES (%s, %s, 41, '1.00', 'EUR', %s, '4242', 'ref', '', %s, %s)",
                [str(uuid.uuid4()), str(order_id),
                 "refunded" if status == "refunded" else "succeeded",
                 created + timedelta(seconds=5), updated],
            )  # fmt: skip
        ids.append(order_id)
    return ids


class Killed(Exception):
    """Stands for SIGKILL between two batches."""


def test_each_monolith_order_becomes_a_stream_whose_replay_equals_it(source_db, monolith_sql):
    ids = shop(monolith_sql.cursor(), orders=10)

    result = orders_backfill(source_db=source_db, batch=3, progress=False)

    assert result.copied == {"products": 2, "orders": 10}
    assert str(Product.objects.get(sku="BOOK-1").unit_price) == "9.99"
    shipped = order_load(order_id=ids[2])
    assert (shipped.status, shipped.native, shipped.payment_id is not None) == (
        "shipped",
        False,
        True,
    )
    assert shipped.updated == T0 + timedelta(minutes=2, seconds=30)
    types = StoredEvent.objects.filter(stream_id=ids[2]).order_by("version")
    assert list(types.values_list("event_type", flat=True)) == [
        "OrderImported", "OrderPaid", "OrderShipped",
    ]  # fmt: skip
    report = orders_reconcile(source_db=source_db)
    assert report.exact, [d.describe() for d in report.differences]
    assert (report.monolith_count, report.service_count) == (10, 10)


def test_the_backfill_resumes_after_a_kill_and_a_rerun_changes_nothing(source_db, monolith_sql):
    shop(monolith_sql.cursor(), orders=7)

    def kill(phase: str, copied: int) -> None:
        if phase == "orders" and copied >= 4:
            raise Killed

    with pytest.raises(Killed):
        orders_backfill(source_db=source_db, batch=2, progress=False, after_batch=kill)
    assert BackfillCheckpoint.objects.get(name="orders").copied == 4
    streams_before = StoredEvent.objects.values("stream_id").distinct().count()

    result = orders_backfill(source_db=source_db, batch=2, progress=False)

    assert streams_before == 4 and result.copied["orders"] == 3
    again = orders_backfill(source_db=source_db, batch=2, restart=True, progress=False)
    assert again.copied["orders"] == 7  # walked again: every stream exists, nothing appended
    assert StoredEvent.objects.values("stream_id").distinct().count() == 7
    assert orders_reconcile(source_db=source_db).exact


def test_reconcile_lists_each_difference_and_the_command_fails(source_db, monolith_sql):
    ids = shop(monolith_sql.cursor(), orders=3)
    orders_backfill(source_db=source_db, batch=10, progress=False)
    cursor = monolith_sql.cursor()
    cursor.execute("UPDATE orders_order SET status = 'refunded' WHERE id = %s", [str(ids[2])])
    cursor.execute("UPDATE orders_orderitem SET quantity = 9 WHERE order_id = %s", [str(ids[1])])
    cursor.execute("DELETE FROM orders_orderitem WHERE order_id = %s", [str(ids[0])])
    cursor.execute("DELETE FROM orders_order WHERE id = %s", [str(ids[0])])
    cursor.execute("UPDATE orders_product SET unit_price = '1.00' WHERE sku = 'PEN-2'")

    report = orders_reconcile(source_db=source_db)

    kinds = {(d.kind, d.key) for d in report.differences}
    assert kinds == {
        ("missing_in_monolith", str(ids[0])),
        ("mismatch", str(ids[1])),
        ("mismatch", str(ids[2])),
        ("product_mismatch", "PEN-2"),
    }
    moved = next(d for d in report.differences if d.key == str(ids[2]))
    assert moved.fields == {"status": {"monolith": "refunded", "service": "shipped"}}
    with pytest.raises(CommandError, match="4 difference"):
        call_command("orders_reconcile", "--source-url", monolith_db_url_of(source_db))


def monolith_db_url_of(db) -> str:
    settings = db.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def test_commands_name_the_missing_source(capsys):
    with pytest.raises(CommandError, match="MONOLITH_DATABASE_URL"):
        call_command("orders_backfill")
