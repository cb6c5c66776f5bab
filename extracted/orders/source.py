"""Read the monolith's database: the `monolith` alias from settings, or one made from a URL.

Backfill and reconcile read the monolith's tables (`orders_order`, `orders_orderitem`,
`orders_product`, `payments_payment`, `outbox_aggregatesequence`) with plain SQL, never its
models: the service does not import the monolith. A PostgreSQL source is opened read only
(`default_transaction_read_only=on`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import dj_database_url
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend
from django.utils.dateparse import parse_datetime

from .routers import MONOLITH_ALIAS

URL_ALIAS = f"{MONOLITH_ALIAS}_source"

_by_url: dict[str, BaseDatabaseWrapper] = {}


class SourceNotConfigured(RuntimeError):
    """Neither --source-url nor MONOLITH_DATABASE_URL says where the monolith's database is."""


def source_connection(*, url: str | None = None) -> BaseDatabaseWrapper:
    """Return a connection to the monolith's database: `url`, else the `monolith` alias."""
    if url:
        if url not in _by_url:
            config = dj_database_url.parse(url)
            if config["ENGINE"].endswith("postgresql"):
                config.setdefault("OPTIONS", {})["options"] = "-c default_transaction_read_only=on"
            # A private wrapper, not a settings alias: it is never migrated, routed or flushed.
            settings_dict = connections.configure_settings(
                {**connections.settings, URL_ALIAS: config}
            )
            backend = load_backend(config["ENGINE"])
            _by_url[url] = backend.DatabaseWrapper(settings_dict[URL_ALIAS], URL_ALIAS)
        return _by_url[url]
    if MONOLITH_ALIAS in connections.settings:
        return connections[MONOLITH_ALIAS]
    raise SourceNotConfigured(
        "Where is the monolith's database? Pass --source-url postgres://... or set "
        "MONOLITH_DATABASE_URL."
    )


def rows(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """Run one read on the source and return all its rows."""
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def ids_after(db: BaseDatabaseWrapper, *, table: str, after: str, limit: int) -> list[Any]:
    """Return the next `limit` primary keys of `table` above `after`, in key order (raw values)."""
    if after:
        sql = f"SELECT id FROM {table} WHERE id > %s ORDER BY id LIMIT %s"  # noqa: S608
        return [row[0] for row in rows(db, sql, [after, limit])]
    sql = f"SELECT id FROM {table} ORDER BY id LIMIT %s"  # noqa: S608
    return [row[0] for row in rows(db, sql, [limit])]


def sequences(
    db: BaseDatabaseWrapper, *, aggregate_type: str, ids: Sequence[Any]
) -> dict[str, int]:
    """Return the monolith's last outbox sequence of each aggregate in `ids` (absent: none).

    The counter numbers the events the monolith writes (origin "monolith") and no others: the
    service's own events of the same aggregate have their own counter and cursor.
    """
    names = [str(as_uuid(value)) for value in ids]
    if not names:
        return {}
    sql = (
        "SELECT aggregate_id, last_sequence FROM outbox_aggregatesequence "  # noqa: S608
        f"WHERE aggregate_type = %s AND aggregate_id IN ({placeholders(len(names))})"
    )
    return {name: int(seq) for name, seq in rows(db, sql, [aggregate_type, *names])}


def count(db: BaseDatabaseWrapper, *, table: str) -> int:
    return rows(db, f"SELECT COUNT(*) FROM {table}")[0][0]  # noqa: S608


def as_uuid(value: Any) -> uuid.UUID:
    """Return a key as a UUID, whether the driver gave a UUID (PostgreSQL) or hex text (SQLite)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def as_datetime(value: Any) -> datetime:
    """Return an aware UTC datetime from a driver value (datetime or SQLite text)."""
    when = value if isinstance(value, datetime) else parse_datetime(str(value))
    if when is None:
        raise ValueError(f"{value!r} is not a date-time.")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def as_money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def table_exists(db: BaseDatabaseWrapper, table: str) -> bool:
    with db.cursor() as cursor:
        return table in db.introspection.table_names(cursor)


def order_rows(db: BaseDatabaseWrapper, ids: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Return the monolith's orders with these ids, lines and payment included, by order id.

    Each: order_id, user_id, status, total, currency, created_at, updated_at, items (sku,
    quantity, unit_price in line order), and the order's successful payment, if the monolith
    holds one (payment_id, paid_at, refunded_at).
    """
    if not ids:
        return {}
    marks = placeholders(len(ids))
    sql = (
        "SELECT id, user_id, status, total, currency, created_at, updated_at "  # noqa: S608
        f"FROM orders_order WHERE id IN ({marks})"
    )
    found: dict[str, dict[str, Any]] = {}
    for pk, user_id, status, total, currency, created, updated in rows(db, sql, list(ids)):
        found[str(as_uuid(pk))] = {
            "order_id": as_uuid(pk),
            "user_id": int(user_id),
            "status": status,
            "total": as_money(total),
            "currency": currency,
            "created_at": as_datetime(created),
            "updated_at": as_datetime(updated),
            "items": [],
            "payment": None,
        }
    sql = (
        "SELECT order_id, sku, quantity, unit_price FROM orders_orderitem "  # noqa: S608
        f"WHERE order_id IN ({marks}) ORDER BY order_id, id"
    )
    for order_id, sku, quantity, unit_price in rows(db, sql, list(ids)):
        found[str(as_uuid(order_id))]["items"].append(
            {"sku": sku, "quantity": int(quantity), "unit_price": as_money(unit_price)}
        )
    if table_exists(db, "payments_payment"):
        sql = (
            "SELECT order_id, id, status, created_at, updated_at FROM payments_payment "  # noqa: S608
            f"WHERE order_id IN ({marks}) AND status IN ('succeeded', 'refunded')"
        )
        for order_id, pk, status, created, updated in rows(db, sql, list(ids)):
            found[str(as_uuid(order_id))]["payment"] = {
                "payment_id": str(as_uuid(pk)),
                "paid_at": as_datetime(created),
                "refunded_at": as_datetime(updated) if status == "refunded" else None,
            }
    return found


def product_rows(db: BaseDatabaseWrapper, *, after: str, limit: int) -> list[dict[str, Any]]:
    """Return the next `limit` products of the monolith's catalogue above sku `after`."""
    sql = "SELECT sku, name, unit_price FROM orders_product WHERE sku > %s ORDER BY sku LIMIT %s"
    return [
        {"sku": sku, "name": name, "unit_price": as_money(price)}
        for sku, name, price in rows(db, sql, [after, limit])
    ]
