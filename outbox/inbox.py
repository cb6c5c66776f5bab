"""Apply one event for one consumer: effect once, in order per aggregate and writer, echoes dropped.

`event_apply` is the whole decision, free of the broker, so it is tested directly and shared
by the queue consumer and the stream replayer. In one transaction it locks the consumer's
cursor for the aggregate, refuses duplicates (inbox row or sequence already passed), refuses
events whose predecessor has not been applied, then records the inbox row, runs the handlers
and advances the cursor. A handler that raises rolls all of it back.

Every writing service numbers an aggregate's events with its own counter (the monolith and an
extracted service both write `payment.*` during a canary), so the cursor is per (aggregate,
origin): sequence 1 from "payments" is news after sequence 1 from "monolith", not a repeat.
"""

from __future__ import annotations

import contextlib
import enum
import uuid
from collections.abc import Callable, Sequence

from django.db import connection, transaction
from django.utils import timezone

from .context import event_context
from .envelope import Envelope
from .models import ConsumerCursor, DeadLetter, DeadLetterReason, InboxEvent
from .registry import Subscription
from .schemas import SchemaNotFound, payload_upcast, payload_validate


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    ECHO = "echo"
    GAP = "gap"  # an earlier sequence has not been applied yet: wait and try again
    BLOCKED = "blocked"  # an earlier sequence of the aggregate is parked in the DLQ


def envelope_upcast(envelope: Envelope) -> Envelope:
    """Return the envelope validated against its schema and upcast to the newest version."""
    # Another service's event we hold no schema for was validated by its writer.
    with contextlib.suppress(SchemaNotFound):
        payload_validate(
            event_type=envelope.type, version=envelope.version, payload=envelope.payload
        )
    version, payload = payload_upcast(
        event_type=envelope.type, version=envelope.version, payload=envelope.payload
    )
    if version == envelope.version:
        return envelope
    return Envelope(**(envelope.to_dict() | {"version": version, "payload": payload}))


def _cursor_lock(*, consumer: str, envelope: Envelope) -> int:
    """Return the last sequence applied from the envelope's writer, its row locked till commit."""
    table = connection.ops.quote_name(ConsumerCursor._meta.db_table)
    # One statement creates the cursor at 0 or locks the existing one; a no-op update is
    # what makes ON CONFLICT take the row lock and return the row.
    sql = (
        f"INSERT INTO {table} (consumer, aggregate_type, aggregate_id, origin, last_sequence, "  # noqa: S608
        "updated_at) VALUES (%s, %s, %s, %s, 0, %s) "
        "ON CONFLICT (consumer, aggregate_type, aggregate_id, origin) "
        f"DO UPDATE SET last_sequence = {table}.last_sequence RETURNING last_sequence"
    )
    with connection.cursor() as cursor:
        now = ConsumerCursor._meta.get_field("updated_at").get_db_prep_value(
            timezone.now(), connection
        )
        cursor.execute(
            sql,
            [consumer, envelope.aggregate_type, envelope.aggregate_id, envelope.origin, now],
        )
        return cursor.fetchone()[0]


def _inbox_insert(*, consumer: str, envelope: Envelope) -> bool:
    """Record the event as applied by `consumer`; return False if it already was."""
    table = connection.ops.quote_name(InboxEvent._meta.db_table)
    sql = (
        f"INSERT INTO {table} (consumer, event_id, event_type, aggregate_type, aggregate_id, "  # noqa: S608
        "sequence, origin, processed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING id"
    )
    field = InboxEvent._meta.get_field
    event_id = field("event_id").get_db_prep_value(uuid.UUID(envelope.id), connection)
    now = field("processed_at").get_db_prep_value(timezone.now(), connection)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [consumer, event_id, envelope.type, envelope.aggregate_type,
             envelope.aggregate_id, envelope.sequence, envelope.origin, now],
        )  # fmt: skip
        return cursor.fetchone() is not None


def sequence_refusal(
    *, consumer: str, envelope: Envelope, last: int, ordered: bool = True
) -> Outcome | None:
    """Return why `envelope` may not be applied after sequence `last`, or None: apply it.

    The one statement of the rule, for one event (`event_apply`) and a batch alike: a sequence
    at or below the cursor is a duplicate; out of order (ordered delivery), the event waits
    for its predecessor (gap), unless that predecessor is parked (blocked).
    """
    if envelope.sequence <= last:
        return Outcome.DUPLICATE
    if ordered and envelope.sequence != last + 1:
        return (
            Outcome.BLOCKED if _parked_before(consumer=consumer, envelope=envelope) else Outcome.GAP
        )
    return None


def _cursor_advance(*, consumer: str, envelope: Envelope, ordered: bool) -> Outcome | None:
    """Move the aggregate's cursor for this writer to this sequence (None), or say why not."""
    cursors = ConsumerCursor.objects.filter(
        consumer=consumer,
        aggregate_type=envelope.aggregate_type,
        aggregate_id=envelope.aggregate_id,
        origin=envelope.origin,
    )
    # The common case in one statement: the row lock the UPDATE takes serialises competing
    # consumers, and a loser re-reads the row and falls through to the careful path.
    expected = (
        {"last_sequence": envelope.sequence - 1}
        if ordered
        else {"last_sequence__lt": envelope.sequence}
    )
    now = timezone.now()
    if cursors.filter(**expected).update(last_sequence=envelope.sequence, updated_at=now):
        return None
    last = _cursor_lock(consumer=consumer, envelope=envelope)
    refused = sequence_refusal(consumer=consumer, envelope=envelope, last=last, ordered=ordered)
    if refused is None:
        cursors.update(last_sequence=envelope.sequence, updated_at=now)
    return refused


def _parked_before(*, consumer: str, envelope: Envelope) -> bool:
    """Say whether an earlier event of the aggregate from the same writer is parked."""
    return DeadLetter.objects.filter(
        consumer=consumer,
        aggregate_type=envelope.aggregate_type,
        aggregate_id=envelope.aggregate_id,
        origin=envelope.origin,
        sequence__lt=envelope.sequence,
        replayed_at=None,
    ).exists()


def event_apply(
    *,
    consumer: str,
    envelope: Envelope,
    subscriptions: Sequence[Subscription],
    ordered: bool = True,
    savepoint: bool = True,
) -> Outcome:
    """Apply `envelope` for `consumer` through its handlers, at most once; return the outcome.

    Exceptions raised by a handler propagate after the transaction rolled back (inside an
    outer transaction with `savepoint=False`: after marking the outer one for rollback).
    """
    if envelope.origin == consumer:
        return Outcome.ECHO
    with transaction.atomic(savepoint=savepoint):
        if not _inbox_insert(consumer=consumer, envelope=envelope):
            return Outcome.DUPLICATE
        refused = _cursor_advance(consumer=consumer, envelope=envelope, ordered=ordered)
        if refused is not None:
            # Not applied after all: the inbox row must not claim otherwise.
            InboxEvent.objects.filter(consumer=consumer, event_id=envelope.id).delete()
            return refused
        if subscriptions:
            event = envelope_upcast(envelope)
            with event_context(
                correlation_id=envelope.correlation_id,
                causation_id=envelope.id,
                origin=envelope.origin,
            ):
                for subscription in subscriptions:
                    subscription.handler(event)
    return Outcome.APPLIED


def dead_letter_park(
    *, consumer: str, envelope: Envelope, reason: str, error: str, attempts: int
) -> DeadLetter:
    """Record `envelope` as parked for `consumer` (again, if it was replayed and failed)."""
    letter, _ = DeadLetter.objects.update_or_create(
        consumer=consumer,
        event_id=envelope.id,
        defaults={
            "event_type": envelope.type,
            "aggregate_type": envelope.aggregate_type,
            "aggregate_id": envelope.aggregate_id,
            "sequence": envelope.sequence,
            "origin": envelope.origin,
            "envelope": envelope.to_dict(),
            "reason": DeadLetterReason(reason),
            "error": error[:10_000],
            "attempts": attempts,
            "replayed_at": None,
            "created_at": timezone.now(),
        },
    )
    return letter


def dead_letter_vouches(*, consumer: str, envelope: Envelope) -> bool:
    """Say whether `envelope` is exactly an event parked for `consumer` and sent for replay.

    Only events that passed the sender check were parked for reasons other than `untrusted`,
    so such a replay is believed whoever re-published it (`outbox.sender`).
    """
    letter = (
        DeadLetter.objects.filter(consumer=consumer, event_id=envelope.id)
        .exclude(reason=DeadLetterReason.UNTRUSTED)
        .exclude(replayed_at=None)
        .first()
    )
    return letter is not None and letter.envelope == envelope.to_dict()


def _key(envelope: Envelope) -> tuple[str, str, str]:
    """Return the cursor's key within a consumer: the aggregate and the writer numbering it."""
    return envelope.aggregate_type, envelope.aggregate_id, envelope.origin


def events_apply_batch(
    *,
    consumer: str,
    envelopes: Sequence[Envelope],
    subscriptions_for: Callable[[str], Sequence[Subscription]],
) -> list[Outcome]:
    """Apply many envelopes in the caller's transaction with a handful of statements.

    The same decisions as `event_apply` (the inbox row, then `sequence_refusal`), made for the
    whole batch at once on PostgreSQL: one
    statement records the inbox rows, one locks (or creates) every cursor involved, in a fixed
    order so competing consumers cannot deadlock, and one moves the cursors. Handlers run in
    delivery order between the two. A handler error propagates; the caller rolls back.
    """
    if connection.vendor != "postgresql":
        return [
            event_apply(
                consumer=consumer,
                envelope=envelope,
                subscriptions=subscriptions_for(envelope.type),
                savepoint=False,
            )
            for envelope in envelopes
        ]
    outcomes: list[Outcome] = [Outcome.ECHO] * len(envelopes)
    todo = [i for i, envelope in enumerate(envelopes) if envelope.origin != consumer]
    if not todo:
        return outcomes
    inserted = _inbox_insert_many(consumer=consumer, envelopes=[envelopes[i] for i in todo])
    last = _cursors_lock_many(consumer=consumer, keys={_key(envelopes[i]) for i in todo})
    before = dict(last)
    seen: set[str] = set()
    refused: list[str] = []
    for i in todo:
        envelope = envelopes[i]
        key = _key(envelope)
        if envelope.id not in inserted or envelope.id in seen:
            outcomes[i] = Outcome.DUPLICATE
            continue
        seen.add(envelope.id)
        refusal = sequence_refusal(consumer=consumer, envelope=envelope, last=last[key])
        if refusal is not None:
            outcomes[i] = refusal
            refused.append(envelope.id)
            continue
        last[key] = envelope.sequence
        outcomes[i] = Outcome.APPLIED
        subscriptions = subscriptions_for(envelope.type)
        if subscriptions:
            event = envelope_upcast(envelope)
            with event_context(
                correlation_id=envelope.correlation_id,
                causation_id=envelope.id,
                origin=envelope.origin,
            ):
                for subscription in subscriptions:
                    subscription.handler(event)
    if refused:
        InboxEvent.objects.filter(consumer=consumer, event_id__in=refused).delete()
    moved = {key: sequence for key, sequence in last.items() if sequence != before[key]}
    _cursors_update_many(consumer=consumer, sequences=moved)
    return outcomes


def _inbox_insert_many(*, consumer: str, envelopes: Sequence[Envelope]) -> set[str]:
    """Insert inbox rows, skipping ones that exist; return the event ids actually inserted."""
    from psycopg2.extras import execute_values

    table = connection.ops.quote_name(InboxEvent._meta.db_table)
    now = timezone.now()
    rows = [
        (consumer, e.id, e.type, e.aggregate_type, e.aggregate_id, e.sequence, e.origin, now)
        for e in envelopes
    ]
    sql = (
        f"INSERT INTO {table} (consumer, event_id, event_type, aggregate_type, aggregate_id, "  # noqa: S608
        "sequence, origin, processed_at) VALUES %s "
        "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id::text"
    )
    with connection.cursor() as cursor:
        returned = execute_values(
            cursor.cursor,
            sql,
            rows,
            template="(%s, %s::uuid, %s, %s, %s, %s, %s, %s)",
            page_size=len(rows),
            fetch=True,
        )
    return {row[0] for row in returned}


def _cursors_lock_many(*, consumer: str, keys: set[tuple[str, str, str]]) -> dict:
    """Lock (creating at 0) the cursors of `keys`, in sorted order; return their sequences."""
    from psycopg2.extras import execute_values

    table = connection.ops.quote_name(ConsumerCursor._meta.db_table)
    now = timezone.now()
    rows = [(consumer, t, a, o, 0, now) for t, a, o in sorted(keys)]
    sql = (
        f"INSERT INTO {table} (consumer, aggregate_type, aggregate_id, origin, last_sequence, "  # noqa: S608
        "updated_at) VALUES %s ON CONFLICT (consumer, aggregate_type, aggregate_id, origin) "
        f"DO UPDATE SET last_sequence = {table}.last_sequence "
        "RETURNING aggregate_type, aggregate_id, origin, last_sequence"
    )
    with connection.cursor() as cursor:
        returned = execute_values(cursor.cursor, sql, rows, page_size=len(rows), fetch=True)
    return {(t, a, o): sequence for t, a, o, sequence in returned}


def _cursors_update_many(*, consumer: str, sequences: dict) -> None:
    if not sequences:
        return
    from psycopg2.extras import execute_values

    table = connection.ops.quote_name(ConsumerCursor._meta.db_table)
    sql = (
        f"UPDATE {table} AS c SET last_sequence = v.sequence, updated_at = v.at "  # noqa: S608
        "FROM (VALUES %s) AS v(consumer, aggregate_type, aggregate_id, origin, sequence, at) "
        "WHERE c.consumer = v.consumer AND c.aggregate_type = v.aggregate_type "
        "AND c.aggregate_id = v.aggregate_id AND c.origin = v.origin"
    )
    now = timezone.now()
    rows = [(consumer, t, a, o, sequence, now) for (t, a, o), sequence in sequences.items()]
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            sql,
            rows,
            template="(%s, %s, %s, %s, %s::bigint, %s::timestamptz)",
            page_size=len(rows),
        )
