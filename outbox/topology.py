"""Every exchange and queue of the event system, declared from this one place (kombu).

    strangler.events           topic    domain events, routing key = event type (`order.placed`)
      ├─▶ <service>.events      durable queue per consuming service, bound to its event types;
      │                         dead-letters (reject) to <service>.events.dlq
      ├─▶ strangler.events.stream   RabbitMQ stream bound with `#`: every event, kept for replay
    (default exchange)
      <service>.events.retry.N  retry tier N: TTL = OUTBOX_RETRY_DELAYS_MS[N-1], then dead-letters
                                back to <service>.events (only that service sees the retry)
      <service>.events.wait     out-of-order events wait here (OUTBOX_GAP_WAIT_MS), then return
      <service>.events.dlq      messages the runtime could not even record (malformed bodies)
    strangler.broadcast        fanout   one exclusive queue per process instance (route tables,
                                        cache invalidation)
    strangler.notify           headers  `x-channel: email|sms` -> notify.email / notify.sms,
                                        priority queues (x-max-priority 10)
    strangler.jobs             direct   Celery's job queues (declared by Celery, see settings)

Priorities are deliberately absent from the event queues: a priority queue would reorder the
events of one aggregate. Queue arguments are fixed at declaration; changing a tier's delay
means a new queue name or deleting the old queue first (RabbitMQ refuses a redeclaration).

Queue types (OUTBOX_QUEUE_TYPE): `classic` (default, one node) or `quorum` (a RabbitMQ cluster:
every `<service>.events*` queue is replicated with Raft and survives the death of a minority
of nodes). Quorum delay queues dead-letter `at-least-once` (with `reject-publish` overflow, as
RabbitMQ requires), so a retried event cannot be lost between two queues while a node dies.
The stream is replicated across the cluster by RabbitMQ's own default in either case.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue, binding

from .conf import setting

NOTIFY_CHANNELS = ("email", "sms")
NOTIFY_MAX_PRIORITY = 10
QUEUE_TYPES = ("classic", "quorum")


def queue_type() -> str:
    """Return OUTBOX_QUEUE_TYPE, refusing anything but `classic` or `quorum`."""
    value = setting("OUTBOX_QUEUE_TYPE")
    if value not in QUEUE_TYPES:
        raise ImproperlyConfigured(
            f"OUTBOX_QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}; got {value!r}."
        )
    return value


def _typed(arguments: dict, *, dead_letters: bool = False) -> dict:
    """Return queue `arguments` with the configured queue type's own arguments added."""
    if queue_type() == "classic":
        return arguments
    typed = {**arguments, "x-queue-type": "quorum"}
    if dead_letters:
        # Without this a quorum queue dead-letters at-most-once: a message expiring from a
        # retry tier while the target's leader moves would be dropped.
        typed |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return typed


def events_exchange() -> Exchange:
    """Return the topic exchange every domain event is published to."""
    return Exchange(setting("OUTBOX_EXCHANGE"), type="topic", durable=True)


def service_queue_name(service: str) -> str:
    return f"{service}.events"


def dlq_name(service: str) -> str:
    return f"{service}.events.dlq"


def retry_queue_name(service: str, tier: int) -> str:
    return f"{service}.events.retry.{tier}"


def wait_queue_name(service: str) -> str:
    return f"{service}.events.wait"


def service_queue(service: str, binding_keys: Iterable[str]) -> Queue:
    """Return the durable queue of `service`, bound to the events it subscribes to."""
    exchange = events_exchange()
    return Queue(
        service_queue_name(service),
        bindings=[binding(exchange, routing_key=key) for key in sorted(set(binding_keys))],
        durable=True,
        queue_arguments=_typed(
            {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq_name(service)},
            dead_letters=True,
        ),
    )


def _delay_queue(name: str, *, delay_ms: int, back_to: str) -> Queue:
    # Bound to nothing: the runtime publishes here through the default exchange by name.
    return Queue(
        name,
        durable=True,
        queue_arguments=_typed(
            {
                "x-message-ttl": int(delay_ms),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": back_to,
            },
            dead_letters=True,
        ),
    )


def retry_queues(service: str) -> list[Queue]:
    """Return the retry tiers of `service`, one per delay in OUTBOX_RETRY_DELAYS_MS."""
    back_to = service_queue_name(service)
    return [
        _delay_queue(retry_queue_name(service, tier), delay_ms=delay, back_to=back_to)
        for tier, delay in enumerate(setting("OUTBOX_RETRY_DELAYS_MS"), start=1)
    ]


def wait_queue(service: str) -> Queue:
    """Return the queue where out-of-order events of `service` wait for their predecessor."""
    return _delay_queue(
        wait_queue_name(service),
        delay_ms=setting("OUTBOX_GAP_WAIT_MS"),
        back_to=service_queue_name(service),
    )


def dead_letter_queue(service: str) -> Queue:
    return Queue(dlq_name(service), durable=True, queue_arguments=_typed({}) or None)


def service_queues(service: str, binding_keys: Iterable[str]) -> list[Queue]:
    """Return every queue one consuming service needs."""
    return [
        service_queue(service, binding_keys),
        *retry_queues(service),
        wait_queue(service),
        dead_letter_queue(service),
    ]


def stream_queue() -> Queue:
    """Return the stream that keeps every event for replay (read with x-stream-offset)."""
    return Queue(
        setting("OUTBOX_STREAM_QUEUE"),
        exchange=events_exchange(),
        routing_key="#",
        durable=True,
        queue_arguments={"x-queue-type": "stream", "x-max-age": setting("OUTBOX_STREAM_MAX_AGE")},
    )


def broadcast_exchange() -> Exchange:
    return Exchange(setting("OUTBOX_BROADCAST_EXCHANGE"), type="fanout", durable=True)


def broadcast_queue(instance: str) -> Queue:
    """Return this instance's private queue on the fanout: gone when the process is."""
    return Queue(
        f"{setting('OUTBOX_BROADCAST_EXCHANGE')}.{instance}",
        exchange=broadcast_exchange(),
        exclusive=True,
        auto_delete=True,
        durable=False,
    )


def notify_exchange() -> Exchange:
    return Exchange(setting("OUTBOX_NOTIFY_EXCHANGE"), type="headers", durable=True)


def notify_queue(channel: str) -> Queue:
    """Return the priority queue of one notification channel, routed by the x-channel header."""
    if channel not in NOTIFY_CHANNELS:
        raise ValueError(f"Unknown notification channel {channel!r}; known: {NOTIFY_CHANNELS}.")
    return Queue(
        f"{setting('OUTBOX_NOTIFY_EXCHANGE')}.{channel}",
        exchange=notify_exchange(),
        # RabbitMQ ignores x- headers when matching unless told "all-with-x" (3.10+).
        binding_arguments={"x-match": "all-with-x", "x-channel": channel},
        durable=True,
        max_priority=NOTIFY_MAX_PRIORITY,
    )


def declare(connection, entities: Iterable[Exchange | Queue]) -> None:
    """Declare exchanges and queues (with their bindings) on a kombu connection."""
    channel = connection.default_channel
    for entity in entities:
        entity.bind(channel).declare()


def declare_publisher(connection) -> None:
    """Declare what a relay needs: the events exchange and, on RabbitMQ, the replay stream."""
    entities: list[Exchange | Queue] = [events_exchange()]
    if connection.transport.driver_type == "amqp":
        entities.append(stream_queue())
    declare(connection, entities)


def declare_consumer(connection, *, service: str, binding_keys: Iterable[str]) -> None:
    """Declare the events exchange and every queue of one consuming service."""
    declare(connection, [events_exchange(), *service_queues(service, binding_keys)])
