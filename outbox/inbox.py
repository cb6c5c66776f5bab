"""Apply one event for one consumer: effect once, in order per aggregate, echoes dropped.

`event_apply` is the whole decision, free of the broker, so it is tested directly and shared
by the queue consumer and the stream replayer. In one transaction it locks the consumer's
cursor for the aggregate, refuses duplicates (inbox row or sequence already passed), refuses
events whose predecessor has not been applied, then records the inbox row, runs the handlers
and advances the cursor. A handler that raises rolls all of it back.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence

from django.db import transaction
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


def event_apply(
    *,
    consumer: str,
    envelope: Envelope,
    subscriptions: Sequence[Subscription],
    ordered: bool = True,
) -> Outcome:
    """Apply `envelope` for `consumer` through its handlers, at most once; return the outcome.

    Exceptions raised by a handler propagate after the transaction rolled back.
    """
    if envelope.origin == consumer:
        return Outcome.ECHO
    with transaction.atomic():
        cursor, _ = ConsumerCursor.objects.select_for_update().get_or_create(
            consumer=consumer,
            aggregate_type=envelope.aggregate_type,
            aggregate_id=envelope.aggregate_id,
        )
        if (
            envelope.sequence <= cursor.last_sequence
            or InboxEvent.objects.filter(consumer=consumer, event_id=envelope.id).exists()
        ):
            return Outcome.DUPLICATE
        if ordered and envelope.sequence != cursor.last_sequence + 1:
            parked_before = DeadLetter.objects.filter(
                consumer=consumer,
                aggregate_type=envelope.aggregate_type,
                aggregate_id=envelope.aggregate_id,
                sequence__lt=envelope.sequence,
                replayed_at=None,
            ).exists()
            return Outcome.BLOCKED if parked_before else Outcome.GAP
        InboxEvent.objects.create(
            consumer=consumer,
            event_id=envelope.id,
            event_type=envelope.type,
            aggregate_type=envelope.aggregate_type,
            aggregate_id=envelope.aggregate_id,
            sequence=envelope.sequence,
            origin=envelope.origin,
        )
        if subscriptions:
            event = envelope_upcast(envelope)
            with event_context(
                correlation_id=envelope.correlation_id,
                causation_id=envelope.id,
                origin=envelope.origin,
            ):
                for subscription in subscriptions:
                    subscription.handler(event)
        cursor.last_sequence = envelope.sequence
        cursor.save(update_fields=["last_sequence", "updated_at"])
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
            "envelope": envelope.to_dict(),
            "reason": DeadLetterReason(reason),
            "error": error[:10_000],
            "attempts": attempts,
            "replayed_at": None,
            "created_at": timezone.now(),
        },
    )
    return letter
