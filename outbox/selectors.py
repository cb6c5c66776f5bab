"""Read-only figures of the outbox: backlog, consumers, dead letters, broker queue depths."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from .broker import broker_connect, broker_connection, connection_errors
from .conf import setting
from .models import ConsumerCursor, DeadLetter, InboxEvent, OutboxEvent
from .registry import registry
from .topology import dlq_name, retry_queue_name, service_queue_name, wait_queue_name


@dataclass(frozen=True)
class QueueDepth:
    name: str
    messages: int | None  # None: the queue does not exist or the broker is unreachable
    consumers: int | None


def dead_letters_filter(
    *,
    consumer: str | None = None,
    event_type: str | None = None,
    aggregate_id: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    ids: list[int] | None = None,
    include_replayed: bool = False,
) -> QuerySet[DeadLetter]:
    """Return parked events matching every given filter, oldest first."""
    letters = DeadLetter.objects.all()
    if not include_replayed:
        letters = letters.filter(replayed_at=None)
    filters = {
        "consumer": consumer,
        "event_type": event_type,
        "aggregate_id": aggregate_id,
        "reason": reason,
        "created_at__gte": since,
        "id__in": ids,
    }
    return letters.filter(**{k: v for k, v in filters.items() if v is not None}).order_by(
        "consumer", "aggregate_type", "aggregate_id", "origin", "sequence"
    )


def known_consumers() -> list[str]:
    """Return every consumer this database or this process knows of."""
    names = set(registry.consumers())
    for model in (ConsumerCursor, DeadLetter):
        names.update(model.objects.values_list("consumer", flat=True).distinct())
    return sorted(names)


def queue_depths(names: list[str], *, broker_url: str | None = None) -> list[QueueDepth]:
    """Return each queue's ready messages and consumers (passive declare; never creates)."""
    depths: list[QueueDepth] = []
    connection = broker_connection(broker_url)
    if connection.transport.driver_type != "amqp":
        return [QueueDepth(name, None, None) for name in names]
    try:
        broker_connect(connection)
    except connection_errors(connection):
        return [QueueDepth(name, None, None) for name in names]
    try:
        for name in names:
            channel = connection.channel()
            try:
                _, messages, consumers = channel.queue_declare(name, passive=True)
                depths.append(QueueDepth(name, messages, consumers))
            except connection_errors(connection):
                depths.append(QueueDepth(name, None, None))
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    finally:
        with contextlib.suppress(Exception):
            connection.release()
    return depths


def consumer_queues(consumer: str) -> list[str]:
    tiers = range(1, len(setting("OUTBOX_RETRY_DELAYS_MS")) + 1)
    return [
        service_queue_name(consumer),
        *[retry_queue_name(consumer, tier) for tier in tiers],
        wait_queue_name(consumer),
        dlq_name(consumer),
    ]


def outbox_status(*, consumers: list[str] | None = None, broker: bool = True) -> dict:
    """Return the figures of `outbox_status` and the metrics page, as plain data."""
    now = timezone.now()
    pending = OutboxEvent.objects.filter(sent_at=None).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    consumers = consumers if consumers is not None else known_consumers()
    parked = dict(
        DeadLetter.objects.filter(replayed_at=None)
        .values_list("consumer")
        .annotate(n=Count("id"))
        .values_list("consumer", "n")
    )
    last = dict(
        InboxEvent.objects.values_list("consumer")
        .annotate(at=Max("processed_at"))
        .values_list("consumer", "at")
    )
    names = [q for c in consumers for q in consumer_queues(c)]
    depths = {d.name: d for d in queue_depths(names)} if broker else {}
    return {
        "pending": pending["n"],
        "oldest_pending_age_s": (now - pending["oldest"]).total_seconds()
        if pending["oldest"]
        else 0.0,
        "sent_retained": OutboxEvent.objects.exclude(sent_at=None).count(),
        "consumers": {
            name: {
                "lag_messages": getattr(depths.get(service_queue_name(name)), "messages", None),
                "queue_consumers": getattr(depths.get(service_queue_name(name)), "consumers", None),
                "dlq_queue_messages": getattr(depths.get(dlq_name(name)), "messages", None),
                "parked": parked.get(name, 0),
                "last_processed_age_s": (now - last[name]).total_seconds()
                if name in last
                else None,
            }
            for name in consumers
        },
        "queues": {name: d.messages for name, d in depths.items()},
    }
