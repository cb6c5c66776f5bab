"""Write events into the outbox, inside the caller's transaction (the only way events are made).

    with transaction.atomic():
        order = Order.objects.create(...)
        outbox.publish(event_type="order.placed", aggregate_type="order",
                       aggregate_id=str(order.id), payload={...})

The row commits or rolls back with the data, so an event exists if and only if the change
does. The payload is checked against `schemas/<type>.v<version>.json` here, loudly, so a bad
event fails the request that made it instead of every consumer downstream.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.utils import timezone

from .conf import service_name, setting
from .context import current_ids, current_origin
from .envelope import Envelope
from .errors import NotInTransaction, SchemaNotFound
from .models import AggregateSequence, OutboxEvent
from .schemas import envelope_validate, payload_validate


class _PayloadEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, but datetimes keep their microseconds.

    DjangoJSONEncoder cuts them to milliseconds (ECMA-262 style), so a row copied to the other
    half through an event would differ from its original below the millisecond, and reconcile
    would rightly call that a mismatch.
    """

    def default(self, o):
        if isinstance(o, datetime):
            text = o.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return super().default(o)


def _next_sequence(*, using: str, aggregate_type: str, aggregate_id: str) -> int:
    """Return the aggregate's next sequence; its counter row stays locked until commit."""
    connection = connections[using]
    table = connection.ops.quote_name(AggregateSequence._meta.db_table)
    # One upsert both creates the counter and increments it; the row lock it takes serialises
    # writers of the same aggregate, so sequences (and row ids) follow commit order.
    sql = (
        f"INSERT INTO {table} (aggregate_type, aggregate_id, last_sequence) "  # noqa: S608
        f"VALUES (%s, %s, 1) ON CONFLICT (aggregate_type, aggregate_id) "
        f"DO UPDATE SET last_sequence = {table}.last_sequence + 1 RETURNING last_sequence"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [aggregate_type, aggregate_id])
        return cursor.fetchone()[0]


def event_publish(
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any],
    version: int = 1,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    occurred_at: datetime | None = None,
    using: str = "default",
) -> OutboxEvent:
    """Record one event in the outbox inside the caller's transaction.atomic(); return its row.

    Raise NotInTransaction outside a transaction, SchemaNotFound for a type without a schema
    (unless OUTBOX_REQUIRE_SCHEMA is off) and PayloadInvalid naming each field that is wrong.
    """
    if not connections[using].in_atomic_block:
        raise NotInTransaction(
            f"outbox.publish({event_type!r}) must run inside transaction.atomic() with the "
            "change it announces; it was called in autocommit mode."
        )
    # Decimals, uuids and datetimes become the strings consumers will read, before validation.
    document = json.loads(json.dumps(payload, cls=_PayloadEncoder))
    try:
        payload_validate(event_type=event_type, version=version, payload=document)
    except SchemaNotFound:
        if setting("OUTBOX_REQUIRE_SCHEMA"):
            raise
    context_correlation, context_causation = current_ids()
    event_id = uuid.uuid4()
    occurred = occurred_at or timezone.now()
    envelope = Envelope(
        id=str(event_id),
        type=event_type,
        version=version,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        sequence=1,
        occurred_at=occurred.isoformat(),
        origin=current_origin() or service_name(),
        correlation_id=correlation_id or context_correlation or str(event_id),
        causation_id=causation_id or context_causation or "",
        payload=document,
    )
    envelope_validate(envelope.to_dict())
    sequence = _next_sequence(
        using=using, aggregate_type=aggregate_type, aggregate_id=envelope.aggregate_id
    )
    return OutboxEvent.objects.using(using).create(
        event_id=event_id,
        event_type=event_type,
        version=version,
        aggregate_type=aggregate_type,
        aggregate_id=envelope.aggregate_id,
        sequence=sequence,
        occurred_at=occurred,
        origin=envelope.origin,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        payload=document,
    )
