"""The event store: append an order's events with optimistic concurrency, read them back.

    with store_transaction():
        stream = stream_load(stream_id=order_id)           # snapshot + later events, upcast
        ... decide, project, publish to the outbox ...
        events_append(stream_id=order_id, expected_version=stream.version, events=[...])

Guarantees, and how each is kept:

* **No lost update.** (stream_id, version) is unique; an append names the version it decided
  on and writes the next ones. Two writers that decided on the same version cannot both
  insert: the loser gets `StreamVersionConflict` (the service re-decides, see services).
* **One transaction with the data it causes.** The store never opens its own transaction: the
  caller's `transaction.atomic()` holds the append, the read models' update and the outbox
  row, so all of them commit or none does.
* **Positions in commit order.** `StoredEvent.id` is the global position projections follow.
  A sequence hands ids out at insert time, so two concurrent transactions could commit ids 8
  and 7 in that order, and a reader at 8 would skip 7 for ever. An append therefore takes a
  transaction-scoped advisory lock (`LOG_LOCK`) just before its insert, as the last step of
  the transaction: ids are handed out and committed in one order, and a reader that sees
  position n has seen every committed position below it.
* **Swap without a gap.** Every writing transaction holds `SWAP_LOCK` shared from its start; a
  projection swap takes it exclusively, so no writer is half-way between "updated the old
  generation" and "appended" while generations change (see projections).
* **Upcasting.** Events keep the schema version they were written with; `upcaster(type, v)`
  registers a function turning version v's data into v+1's, applied on every read, so old
  events load in new code without rewriting history.

Supports: PostgreSQL (the locks above are advisory locks) and SQLite (one writer at a time
anyway: an IMMEDIATE transaction is the lock).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .models import Snapshot, StoredEvent

# Keys of the advisory locks (any two constants unique to this database).
LOG_LOCK = 0x0_5EED_0001
SWAP_LOCK = 0x0_5EED_0002


class StreamVersionConflict(Exception):
    """Another writer appended to the stream after the version this append decided on."""

    def __init__(self, *, stream_id: uuid.UUID, expected: int):
        super().__init__(
            f"Stream {stream_id} moved past version {expected} while this change was decided."
        )
        self.stream_id = stream_id
        self.expected = expected


@dataclass(frozen=True)
class NewEvent:
    """An event to append: its type, its data (JSON) and when it happened."""

    type: str
    data: dict[str, Any]
    occurred_at: datetime | None = None
    schema_version: int | None = None  # None: the newest version of `type`


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored, with its data upcast to the newest schema version."""

    position: int
    stream_id: uuid.UUID
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime


@dataclass
class LoadedStream:
    """A stream as read: the snapshot it started from (if any) and the events after it."""

    stream_id: uuid.UUID
    snapshot_state: dict[str, Any] | None = None
    snapshot_version: int = 0
    events: list[RecordedEvent] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.events[-1].version if self.events else self.snapshot_version

    @property
    def exists(self) -> bool:
        return self.version > 0


# ---------------------------------------------------------------- upcasting
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_upcasters: dict[tuple[str, int], Upcaster] = {}
_latest: dict[str, int] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning `event_type` data of `from_version` into `from_version + 1`."""

    def register(fn: Upcaster) -> Upcaster:
        _upcasters[(event_type, from_version)] = fn
        _latest[event_type] = max(_latest.get(event_type, 1), from_version + 1)
        return fn

    return register


def latest_schema_version(event_type: str) -> int:
    """Return the version new events of `event_type` are written with."""
    return _latest.get(event_type, 1)


def event_upcast(*, event_type: str, version: int, data: dict) -> tuple[int, dict]:
    """Return (version, data) upcast one step at a time to the newest version."""
    while (event_type, version) in _upcasters:
        data = _upcasters[(event_type, version)](data)
        version += 1
    return version, data


def _recorded(row: StoredEvent) -> RecordedEvent:
    version, data = event_upcast(
        event_type=row.event_type, version=row.schema_version, data=row.data
    )
    return RecordedEvent(
        position=row.id,
        stream_id=row.stream_id,
        version=row.version,
        type=row.event_type,
        schema_version=version,
        data=data,
        metadata=row.metadata,
        occurred_at=row.occurred_at,
    )


# ---------------------------------------------------------------- locks and transactions
def _advisory(function: str, key: int) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite: the IMMEDIATE transaction already serialises every writer
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [key])


@contextlib.contextmanager
def store_transaction() -> Iterator[None]:
    """Open the transaction of one write: it may append, and a projection swap waits for it."""
    with transaction.atomic():
        _advisory("pg_advisory_xact_lock_shared", SWAP_LOCK)
        yield


def swap_lock_exclusive() -> None:
    """Wait for every writer in flight and keep new ones out until the transaction ends."""
    assert connection.in_atomic_block, "swap_lock_exclusive needs a transaction"
    _advisory("pg_advisory_xact_lock", SWAP_LOCK)


# ---------------------------------------------------------------- reads
def stream_load(*, stream_id: uuid.UUID, snapshot_state_version: int | None = None) -> LoadedStream:
    """Return the stream's latest usable snapshot and every event after it, upcast."""
    loaded = LoadedStream(stream_id=stream_id)
    if snapshot_state_version is not None:
        snapshot = Snapshot.objects.filter(
            stream_id=stream_id, state_version=snapshot_state_version
        ).first()
        if snapshot is not None:
            loaded.snapshot_state = snapshot.state
            loaded.snapshot_version = snapshot.version
    rows = StoredEvent.objects.filter(stream_id=stream_id, version__gt=loaded.snapshot_version)
    loaded.events = [_recorded(row) for row in rows.order_by("version")]
    return loaded


def events_read(*, after: int, limit: int) -> list[RecordedEvent]:
    """Return up to `limit` events of every stream with positions above `after`, in order."""
    rows = StoredEvent.objects.filter(id__gt=after).order_by("id")[:limit]
    return [_recorded(row) for row in rows]


def head_position() -> int:
    """Return the highest committed position (0 for an empty store)."""
    last = StoredEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


# ---------------------------------------------------------------- writes
def events_append(
    *,
    stream_id: uuid.UUID,
    expected_version: int,
    events: Sequence[NewEvent],
    metadata: dict[str, Any] | None = None,
) -> list[RecordedEvent]:
    """Append `events` after `expected_version`; raise StreamVersionConflict if it moved on.

    Call it last in the transaction (the commit-order lock is held from here to the commit).
    """
    if not connection.in_atomic_block:
        raise RuntimeError(
            f"events_append({stream_id}) must run inside the transaction of the change it records."
        )
    if not events:
        return []
    _advisory("pg_advisory_xact_lock", LOG_LOCK)
    now = timezone.now()
    rows = [
        StoredEvent(
            stream_id=stream_id,
            version=expected_version + offset,
            event_type=event.type,
            schema_version=event.schema_version or latest_schema_version(event.type),
            data=event.data,
            metadata=dict(metadata or {}),
            occurred_at=event.occurred_at or now,
        )
        for offset, event in enumerate(events, start=1)
    ]
    try:
        # A savepoint, so a lost race leaves the caller's transaction usable for its error path.
        with transaction.atomic():
            StoredEvent.objects.bulk_create(rows)
    except IntegrityError as exc:
        raise StreamVersionConflict(stream_id=stream_id, expected=expected_version) from exc
    if rows[0].id is None:  # SQLite before RETURNING support: read the ids back
        rows = list(
            StoredEvent.objects.filter(stream_id=stream_id, version__gt=expected_version).order_by(
                "version"
            )
        )
    return [_recorded(row) for row in rows]


def snapshot_save(*, stream_id: uuid.UUID, version: int, state_version: int, state: dict) -> None:
    """Keep `state` as the stream's snapshot at `version` (replacing an older one)."""
    Snapshot.objects.update_or_create(
        stream_id=stream_id,
        defaults={"version": version, "state_version": state_version, "state": state},
    )
