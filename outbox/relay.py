"""Move committed outbox rows to the broker: claim in order, publish with confirms, mark sent.

Guarantees, and how:
    * At-least-once: a row is marked sent only in the transaction that claimed it, after the
      broker confirmed every message of the batch. A crash or an outage between the two leaves
      it pending; it is published again (consumers' inboxes absorb the duplicate).
    * Order per aggregate with several relays: rows are claimed `FOR UPDATE SKIP LOCKED` in id
      order, and a claimed row is held back when an earlier row of its aggregate is still
      pending outside the claim (another relay holds it: SKIP LOCKED leaves such holes). Per
      aggregate, id order is commit order (the writer's counter lock), so the broker sees each
      aggregate's events in sequence.
    * Never drops: a broker outage rolls the claim back and the loop retries with backoff.
    * Bounded table: sent rows older than OUTBOX_RETENTION_S go in small batches, skipping
      locked rows, so cleanup never waits on (or deadlocks with) a relay.
Wakes on PostgreSQL NOTIFY `outbox_events` (sent by a trigger at commit), else polls.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import select
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from .broker import EnvelopePublisher, PublishFailed
from .conf import NOTIFY_CHANNEL, setting
from .envelope import Envelope
from .metrics import instruments
from .models import InboxEvent, OutboxEvent

log = logging.getLogger("outbox.relay")


def _claim(batch_size: int) -> list[OutboxEvent]:
    """Lock up to `batch_size` pending rows in id order, minus those another relay precedes."""
    rows = list(
        OutboxEvent.objects.filter(sent_at=None)
        .order_by("id")
        .select_for_update(skip_locked=True)[:batch_size]
    )
    if not rows or connection.vendor != "postgresql":
        return rows
    pending = (
        OutboxEvent.objects.filter(
            sent_at=None,
            id__lte=rows[-1].id,
            aggregate_id__in={row.aggregate_id for row in rows},
        )
        .order_by("id")
        .values_list("aggregate_type", "aggregate_id", "id")
    )
    keep = _unbroken_runs(
        claimed=[(row.aggregate_type, row.aggregate_id, row.id) for row in rows],
        pending=pending,
        ahead=set(),
    )
    return [row for row in rows if row.id in keep]


def _unbroken_runs(*, claimed: list, pending, ahead: set[int]) -> set[int]:
    """Return the claimed ids that may be published now, in order with their aggregate.

    Per aggregate, only an unbroken run from its oldest pending row may go. SKIP LOCKED can
    leave holes (rows another relay holds): everything of that aggregate after a hole waits.
    Rows in `ahead` are already published by this relay on the same channel, so not holes.
    """
    claimed_ids = {row_id for _, _, row_id in claimed}
    keys = {(aggregate_type, aggregate_id) for aggregate_type, aggregate_id, _ in claimed}
    blocked_from: dict[tuple[str, str], int] = {}
    for aggregate_type, aggregate_id, row_id in pending:
        key = (aggregate_type, aggregate_id)
        if (
            key in keys
            and key not in blocked_from
            and row_id not in claimed_ids
            and row_id not in ahead
        ):
            blocked_from[key] = row_id
    return {
        row_id
        for aggregate_type, aggregate_id, row_id in claimed
        if row_id < blocked_from.get((aggregate_type, aggregate_id), row_id + 1)
    }


def relay_batch(*, publisher: EnvelopePublisher, batch_size: int | None = None) -> int:
    """Publish one claimed batch and mark it sent; return how many rows were sent.

    Raise PublishFailed (rows stay pending, with the error recorded) when the broker fails.
    """
    batch_size = batch_size or int(setting("OUTBOX_RELAY_BATCH"))
    failure: PublishFailed | None = None
    ids: list[int] = []
    with transaction.atomic():
        rows = _claim(batch_size)
        if not rows:
            return 0
        ids = [row.id for row in rows]
        try:
            publisher.publish(Envelope.from_row(row) for row in rows)
        except PublishFailed as exc:
            failure = exc
        else:
            now = timezone.now()
            OutboxEvent.objects.filter(id__in=ids).update(
                sent_at=now, publish_attempts=F("publish_attempts") + 1
            )
            figures = instruments()
            figures.published.inc(len(ids))
            figures.lag.set((now - min(row.created_at for row in rows)).total_seconds())
            return len(ids)
    # Outside the claim: the rows are pending again; note why for operators.
    OutboxEvent.objects.filter(id__in=ids, sent_at=None).update(
        publish_attempts=F("publish_attempts") + 1, last_error=str(failure)[:2000]
    )
    raise failure


def relay_drain(
    *,
    publisher: EnvelopePublisher,
    max_seconds: float | None = None,
    on_sent: Callable[[int], None] = lambda count: None,
) -> int:
    """Publish batches until nothing is pending (or `max_seconds` pass); return rows sent.

    `on_sent(count)` hears of every batch marked sent, also those before a failure.
    """
    if connection.vendor == "postgresql" and publisher.is_amqp:
        return _PipelinedDrain(publisher, on_sent=on_sent).run(max_seconds=max_seconds)
    started = time.monotonic()
    total = 0
    while True:
        sent = relay_batch(publisher=publisher)
        on_sent(sent)
        total += sent
        if not sent or (max_seconds and time.monotonic() - started > max_seconds):
            return total


class _PipelinedDrain:
    """Claim and publish batch k+1 while batch k's confirms are still on their way.

    Each in-flight batch keeps its own transaction (and row locks) on its own connection and
    commits, in order, only once the broker confirmed it. Rows of an in-flight batch are not
    holes for the next one: they went first on the same channel. Any failure rolls back every
    batch in flight, so a later batch is never marked sent before an earlier one.
    PostgreSQL and RabbitMQ only; the ORM path above serves everything else.
    """

    DEPTH = 2

    def __init__(
        self, publisher: EnvelopePublisher, *, on_sent: Callable[[int], None] = lambda n: None
    ) -> None:
        self.publisher = publisher
        self.on_sent = on_sent
        self.batch_size = int(setting("OUTBOX_RELAY_BATCH"))
        self.table = connection.ops.quote_name(OutboxEvent._meta.db_table)
        # Connections outlive one drain (a relay drains on every NOTIFY): kept on the publisher.
        self.idle: list = publisher.db_connections
        self.inflight: deque[tuple[object, list[int], int, float]] = deque()
        self.figures = instruments()
        self.current = None  # claimed, not yet in flight

    def _connection(self):
        if self.idle:
            return self.idle.pop()
        raw = connection.get_new_connection(connection.get_connection_params())
        raw.autocommit = False
        with raw.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        raw.commit()
        return raw

    def _claim(self, raw) -> tuple[list[tuple[int, tuple[str, bytes, str, str]]], float]:
        """Lock the next batch; return its (id, message) pairs and its oldest write time."""
        t = self.table
        with raw.cursor() as cursor:
            # PostgreSQL writes the envelope's JSON itself: no row objects, no json.dumps here.
            cursor.execute(
                "SELECT id, aggregate_type, aggregate_id, event_type, event_id::text, origin, "  # noqa: S608
                "extract(epoch from created_at)::float8, "
                "json_build_object('id', event_id, 'type', event_type, 'version', version, "
                "'aggregate_type', aggregate_type, 'aggregate_id', aggregate_id, "
                "'sequence', sequence, 'occurred_at', occurred_at, 'origin', origin, "
                "'correlation_id', correlation_id, 'causation_id', causation_id, "
                "'payload', payload)::text "
                f"FROM {t} WHERE sent_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                [self.batch_size],
            )
            rows = cursor.fetchall()
            if not rows:
                return [], 0.0
            cursor.execute(
                f"SELECT aggregate_type, aggregate_id, id FROM {t} "  # noqa: S608
                "WHERE sent_at IS NULL AND id <= %s AND aggregate_id = ANY(%s) ORDER BY id",
                [rows[-1][0], list({row[2] for row in rows})],
            )
            pending = cursor.fetchall()
        ahead = {row_id for _, ids, _, _ in self.inflight for row_id in ids}
        keep = _unbroken_runs(
            claimed=[(row[1], row[2], row[0]) for row in rows], pending=pending, ahead=ahead
        )
        claimed = [
            (row_id, (event_type, body.encode(), event_id, origin))
            for row_id, _, _, event_type, event_id, origin, _, body in rows
            if row_id in keep
        ]
        return claimed, min(row[6] for row in rows)

    def _finish_oldest(self) -> int:
        raw, ids, tag, oldest = self.inflight.popleft()
        self.publisher.wait_confirmed(tag)
        self.figures.in_flight.set(self.publisher.outstanding)
        self.figures.lag.set(max(0.0, time.time() - oldest))
        with raw.cursor() as cursor:
            # No wait for the WAL flush: a "sent" mark lost in a database crash only means the
            # rows are published again, which at-least-once delivery allows (inboxes dedupe).
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(
                f"UPDATE {self.table} SET sent_at = clock_timestamp(), "  # noqa: S608
                "publish_attempts = publish_attempts + 1 WHERE id = ANY(%s)",
                [ids],
            )
        raw.commit()
        self.idle.append(raw)
        self.figures.published.inc(len(ids))
        self.on_sent(len(ids))
        return len(ids)

    def run(self, *, max_seconds: float | None) -> int:
        started = time.monotonic()
        total = 0
        try:
            while True:
                if len(self.inflight) >= self.DEPTH:
                    total += self._finish_oldest()
                raw = self.current = self._connection()
                claimed, oldest = self._claim(raw)
                if not claimed:
                    raw.rollback()
                    self.idle.append(raw)
                    self.current = None
                    while self.inflight:
                        total += self._finish_oldest()
                    return total
                tag = self.publisher.publish_pipelined(message for _, message in claimed)
                self.inflight.append((raw, [row_id for row_id, _ in claimed], tag, oldest))
                self.figures.in_flight.set(self.publisher.outstanding)
                self.current = None
                if max_seconds and time.monotonic() - started > max_seconds:
                    while self.inflight:
                        total += self._finish_oldest()
                    return total
        except BaseException as exc:
            self._discard_connections = not isinstance(exc, PublishFailed)
            failed = [ids for _, ids, _, _ in self.inflight]
            open_ones = [raw for raw, *_ in self.inflight] + [self.current] * bool(self.current)
            self.figures.in_flight.set(0)
            for raw in open_ones:
                with contextlib.suppress(Exception):
                    raw.rollback()
                self.idle.append(raw)
            self.inflight.clear()
            self.current = None
            if isinstance(exc, PublishFailed):
                self.publisher.close()  # a fresh channel: no stale confirms or nacks
                ids = [row_id for batch in failed for row_id in batch]
                OutboxEvent.objects.filter(id__in=ids, sent_at=None).update(
                    publish_attempts=F("publish_attempts") + 1, last_error=str(exc)[:2000]
                )
            raise
        finally:
            if getattr(self, "_discard_connections", False):
                # A database error may have broken them: start afresh next time.
                for raw in self.idle:
                    with contextlib.suppress(Exception):
                        raw.close()
                self.idle.clear()


def delete_in_batches(queryset: QuerySet, batch: int, *, max_batches: int | None = None) -> int:
    """Delete `queryset`'s rows `batch` at a time, each batch its own transaction; return how many.

    Rows another transaction holds are skipped (PostgreSQL), so a cleanup never waits on the
    work it cleans up after; they go at a later run, as do rows past `max_batches` batches.
    """
    deleted = 0
    for _ in itertools.count() if max_batches is None else range(max_batches):
        with transaction.atomic():
            ids = list(
                queryset.order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch]
            )
            if ids:
                queryset.model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch:
            break
    return deleted


def cleanup_functions() -> list[tuple[str, Callable[..., int]]]:
    """Return the functions `OUTBOX_CLEANUP_EXTRA` names; raise if a path does not import."""
    extra = setting("OUTBOX_CLEANUP_EXTRA")
    if isinstance(extra, str):
        raise ImproperlyConfigured(
            f"OUTBOX_CLEANUP_EXTRA is a list of dotted paths, got the string {extra!r}."
        )
    functions = []
    for path in extra:
        try:
            functions.append((path, import_string(path)))
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"OUTBOX_CLEANUP_EXTRA: cannot import {path!r}: {exc}"
            ) from exc
    return functions


def outbox_cleanup(*, now=None) -> dict[str, int]:
    """Delete sent rows and inbox rows past their retention, in small batches; return counts.

    Then run the service's own retention functions named in `OUTBOX_CLEANUP_EXTRA` (each called
    as ``f(now=now)`` and returning the rows it deleted; counted under its dotted path). One that
    fails is logged and skipped, so the service's housekeeping never stops event delivery; but a
    database error goes up to the relay, which reconnects and backs off as for its own queries.
    """
    now = now or timezone.now()
    batch = int(setting("OUTBOX_CLEANUP_BATCH"))
    sent = OutboxEvent.objects.filter(
        sent_at__lt=now - timedelta(seconds=setting("OUTBOX_RETENTION_S"))
    )
    processed = InboxEvent.objects.filter(
        processed_at__lt=now - timedelta(seconds=setting("OUTBOX_INBOX_RETENTION_S"))
    )
    deleted = {
        "outbox": delete_in_batches(sent, batch),
        "inbox": delete_in_batches(processed, batch),
    }
    for path, function in cleanup_functions():
        try:
            deleted[path] = int(function(now=now))
        except DatabaseError:
            raise
        except Exception:
            log.exception("cleanup function %s failed; skipped until the next cleanup", path)
    return deleted


class _Listener:
    """Wait for NOTIFY on PostgreSQL (a dedicated autocommit connection); sleep elsewhere."""

    def __init__(self) -> None:
        self.raw = None
        if connection.vendor == "postgresql":
            self.raw = connection.get_new_connection(connection.get_connection_params())
            self.raw.autocommit = True
            with self.raw.cursor() as cursor:
                cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """Return True when woken by a notification, False after `timeout` seconds."""
        if self.raw is None:
            time.sleep(timeout)
            return False
        if not self.raw.notifies:
            select.select([self.raw], [], [], timeout)
            self.raw.poll()
        woken = bool(self.raw.notifies)
        self.raw.notifies.clear()
        return woken

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()


@dataclass
class RelayStats:
    sent: int = 0
    failures: int = 0
    cleaned: int = 0


class Relay:
    """The long-running relay loop of `manage.py outbox_relay`."""

    def __init__(
        self,
        *,
        broker_url: str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.publisher = EnvelopePublisher(broker_url)
        self.should_stop = should_stop
        self.stats = RelayStats()
        self.poll_s = float(setting("OUTBOX_RELAY_POLL_S"))
        self.backoff_max_s = float(setting("OUTBOX_RELAY_BACKOFF_MAX_S"))
        self.cleanup_every_s = float(setting("OUTBOX_CLEANUP_INTERVAL_S"))
        cleanup_functions()  # a mistyped OUTBOX_CLEANUP_EXTRA fails here, at start

    def _count_sent(self, count: int) -> None:
        self.stats.sent += count

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.should_stop() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def run(self) -> RelayStats:
        """Relay until `should_stop()`; survive broker and database outages with backoff."""
        backoff = 0.0
        listener: _Listener | None = None
        next_cleanup = time.monotonic()
        while not self.should_stop():
            try:
                if listener is None:
                    listener = _Listener()
                relay_drain(publisher=self.publisher, max_seconds=5.0, on_sent=self._count_sent)
                backoff = 0.0
                if time.monotonic() >= next_cleanup:
                    self.stats.cleaned += sum(outbox_cleanup().values())
                    next_cleanup = time.monotonic() + self.cleanup_every_s
                if not self.should_stop():
                    listener.wait(self.poll_s)
            except (PublishFailed, DatabaseError, OSError) as exc:
                self.stats.failures += 1
                instruments().failures.inc()
                backoff = min(self.backoff_max_s, max(0.2, backoff * 2))
                delay = backoff * random.uniform(0.5, 1.0)
                log.warning("relay paused %.1fs: %s", delay, exc)
                if isinstance(exc, DatabaseError | OSError) and listener is not None:
                    listener.close()
                    listener = None
                    close_old_connections()
                self._sleep(delay)
        if listener is not None:
            listener.close()
        self.publisher.close()
        return self.stats
