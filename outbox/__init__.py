"""outbox: events between the halves, never lost, never applied twice, never out of order.

Write with `outbox.publish(...)` inside `transaction.atomic()`; run `manage.py outbox_relay`
to move rows to RabbitMQ and `manage.py outbox_consume --service NAME` to apply them.
See docs/outbox.md for the guarantees and how each is kept.
"""

from __future__ import annotations

from typing import Any


def publish(
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any],
    version: int = 1,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    using: str = "default",
):
    """Record one event inside the caller's transaction.atomic(); see outbox.writer."""
    # Imported here so `import outbox` works before Django's app registry is ready.
    from .writer import event_publish

    return event_publish(
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload,
        version=version,
        correlation_id=correlation_id,
        causation_id=causation_id,
        using=using,
    )
