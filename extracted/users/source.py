"""Read the monolith's database: the `monolith` alias from settings, or one made from a URL.

Backfill and reconcile read `users_user`, `knox_authtoken` and `outbox_aggregatesequence` with
plain SQL, never the monolith's models: the service does not import the monolith. A PostgreSQL
source is opened read only (`default_transaction_read_only=on`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dj_database_url
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend
from django.utils.dateparse import parse_datetime

from .routers import MONOLITH_ALIAS

URL_ALIAS = f"{MONOLITH_ALIAS}_source"
#: The columns of a user both halves own, as the monolith's table names them.
USER_COLUMNS = (
    "id",
    "email",
    "full_name",
    "is_staff",
    "is_active",
    "is_superuser",
    "date_joined",
    "password",
    "updated_at",
    "tokens_revoked_at",
)
TOKEN_COLUMNS = ("digest", "user_id", "created", "expiry")

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


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def user_ids_after(db: BaseDatabaseWrapper, *, after: int, limit: int) -> list[int]:
    """Return the next `limit` user ids above `after`, in order."""
    sql = "SELECT id FROM users_user WHERE id > %s ORDER BY id LIMIT %s"
    return [int(row[0]) for row in rows(db, sql, [after, limit])]


def user_count(db: BaseDatabaseWrapper) -> int:
    return int(rows(db, "SELECT COUNT(*) FROM users_user")[0][0])


def users(db: BaseDatabaseWrapper, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Return the monolith's users (those in `ids`, or all) as dicts of USER_COLUMNS."""
    sql = f"SELECT {', '.join(USER_COLUMNS)} FROM users_user"  # noqa: S608
    params: list[Any] = []
    if ids is not None:
        if not ids:
            return []
        sql += f" WHERE id IN ({_marks(len(ids))})"
        params = list(ids)
    return [dict(zip(USER_COLUMNS, row, strict=True)) for row in rows(db, sql, params)]


def tokens(db: BaseDatabaseWrapper, user_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Return the monolith's token digests (of `user_ids`, or all) as dicts of TOKEN_COLUMNS."""
    sql = f"SELECT {', '.join(TOKEN_COLUMNS)} FROM knox_authtoken"  # noqa: S608
    params: list[Any] = []
    if user_ids is not None:
        if not user_ids:
            return []
        sql += f" WHERE user_id IN ({_marks(len(user_ids))})"
        params = list(user_ids)
    return [dict(zip(TOKEN_COLUMNS, row, strict=True)) for row in rows(db, sql, params)]


def sequences(db: BaseDatabaseWrapper, *, ids: Sequence[int]) -> dict[str, int]:
    """Return the monolith's last outbox sequence of each user aggregate in `ids`."""
    names = [str(value) for value in ids]
    if not names:
        return {}
    sql = (
        "SELECT aggregate_id, last_sequence FROM outbox_aggregatesequence "  # noqa: S608
        f"WHERE aggregate_type = 'user' AND aggregate_id IN ({_marks(len(names))})"
    )
    return {name: int(seq) for name, seq in rows(db, sql, names)}


def as_datetime(value: Any) -> datetime | None:
    """Return an aware UTC datetime from a driver value (datetime or SQLite text), or None."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else parse_datetime(str(value))
    if when is None:
        raise ValueError(f"{value!r} is not a date-time.")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
