"""Read the event log: the RabbitMQ stream bound to `strangler.events` with `#`.

Our answer to Kafka's log: every published event stays in the stream for
OUTBOX_STREAM_MAX_AGE, and a reader picks where to start with `x-stream-offset`: "first",
"last", "next", an absolute offset (int) or a point in time (datetime). A new consumer can
rebuild its state from the beginning through the same inbox (`replay_into`), so events it had
already applied change nothing.

Supports: RabbitMQ 3.9+ only (streams need manual acks and a basic_qos prefetch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .broker import broker_connect, broker_connection, broker_user
from .conf import setting
from .envelope import Envelope
from .sender import message_sender, sender_refusal


@dataclass(frozen=True)
class StreamRecord:
    offset: int
    envelope: Envelope
    refusal: str | None = None  # why the broker does not vouch for its sender (outbox.sender)


def stream_read(
    *,
    offset: str | int | datetime = "first",
    limit: int | None = None,
    idle_timeout_s: float = 1.0,
    prefetch: int = 500,
    broker_url: str | None = None,
) -> Iterator[StreamRecord]:
    """Yield events from the stream starting at `offset`, until `limit` or `idle_timeout_s`."""
    connection = broker_connection(broker_url, name="outbox stream reader")
    broker_connect(connection)
    own_user = broker_user(connection)
    try:
        channel = connection.connection.channel()
        # A stream consumer must set a prefetch and ack; the offset says where to start.
        channel.basic_qos(0, prefetch, False)
        received: list[StreamRecord] = []

        def on_message(message) -> None:
            headers = message.headers or {}
            envelope = Envelope.from_json(message.body)
            sender = message_sender(
                user_id=message.properties.get("user_id"), headers={}, own_user=own_user
            )
            received.append(
                StreamRecord(
                    int(headers.get("x-stream-offset", -1)),
                    envelope,
                    sender_refusal(envelope=envelope, sender=sender, own_user=own_user),
                )
            )
            channel.basic_ack(message.delivery_tag)

        channel.basic_consume(
            setting("OUTBOX_STREAM_QUEUE"),
            callback=on_message,
            arguments={"x-stream-offset": offset},
        )
        count = 0
        while limit is None or count < limit:
            if not received:
                try:
                    connection.connection.drain_events(timeout=idle_timeout_s)
                except TimeoutError:
                    return
                continue
            record = received.pop(0)
            count += 1
            yield record
    finally:
        with contextlib.suppress(Exception):
            connection.release()


def replay_into(
    *,
    consumer: str,
    offset: str | int | datetime = "first",
    subscriptions_for: Callable[[str], list],
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> dict[str, int]:
    """Apply the stream's events for `consumer` through its inbox; return outcome counts.

    `progress(done)` is called every `progress_every` events, so a long replay shows it moves.
    An event whose sender the broker does not vouch for is parked (`untrusted`), not applied.
    """
    from .inbox import dead_letter_park, event_apply

    counts: dict[str, int] = {}
    for done, record in enumerate(stream_read(offset=offset, limit=limit), start=1):
        if record.refusal is not None and record.envelope.origin != consumer:
            dead_letter_park(
                consumer=consumer,
                envelope=record.envelope,
                reason="untrusted",
                error=record.refusal,
                attempts=0,
            )
            outcome = "untrusted"
        else:
            outcome = event_apply(
                consumer=consumer,
                envelope=record.envelope,
                subscriptions=subscriptions_for(record.envelope.type),
            )
        counts[outcome] = counts.get(outcome, 0) + 1
        if progress is not None and done % progress_every == 0:
            progress(done)
    return counts
