"""The other two exchange types, each where it fits (topic is `broker`, direct is Celery's).

* Fanout `strangler.broadcast`: a message to every running instance of a process (a new route
  table for every proxy, a cache to drop). Each instance binds its own exclusive queue, which
  dies with it: instances that are down miss broadcasts by design; they reload on start.
* Headers `strangler.notify`: notifications routed by their `x-channel` header (email | sms)
  to one durable priority queue per channel; a password reset (priority 9) overtakes a
  newsletter (priority 1) in the same queue.
Neither carries domain events: those need the outbox's ordering and effect-once guarantees.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from kombu import Consumer, Producer

from .broker import broker_connect, broker_connection
from .topology import (
    NOTIFY_CHANNELS,
    NOTIFY_MAX_PRIORITY,
    broadcast_exchange,
    broadcast_queue,
    declare,
    notify_exchange,
    notify_queue,
)


def broadcast_publish(*, kind: str, payload: dict[str, Any], broker_url: str | None = None) -> None:
    """Send `payload` to every instance listening on the broadcast exchange."""
    with broker_connection(broker_url) as connection:
        connection.transport_options["confirm_publish"] = True
        declare(connection, [broadcast_exchange()])
        Producer(connection.default_channel).publish(
            {"kind": kind, "payload": payload},
            exchange=broadcast_exchange(),
            serializer="json",
        )


class BroadcastListener:
    """An instance's subscription to broadcasts: `poll()` hands each message to `callback`."""

    def __init__(
        self,
        callback: Callable[[str, dict[str, Any]], None],
        *,
        instance: str | None = None,
        broker_url: str | None = None,
    ) -> None:
        self.instance = instance or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.callback = callback
        self.connection = broker_connection(broker_url, name="broadcast listener")
        broker_connect(self.connection)
        channel = self.connection.channel()
        self.queue = broadcast_queue(self.instance)(channel)
        self.queue.declare()
        self.consumer = Consumer(channel, queues=[self.queue], callbacks=[self._on_message])
        self.consumer.consume()

    def _on_message(self, body, message) -> None:
        data = body if isinstance(body, dict) else json.loads(body)
        self.callback(data["kind"], data["payload"])
        message.ack()

    def poll(self, timeout: float = 1.0) -> None:
        """Wait up to `timeout` seconds for broadcasts and handle them."""
        with contextlib.suppress(TimeoutError):
            self.connection.drain_events(timeout=timeout)

    def close(self) -> None:
        self.connection.release()


def notify_publish(
    *,
    channel: str,
    payload: dict[str, Any],
    priority: int = 5,
    broker_url: str | None = None,
) -> None:
    """Queue a notification for `channel` (email | sms), persistent, with `priority` 0-10."""
    if channel not in NOTIFY_CHANNELS:
        raise ValueError(f"Unknown notification channel {channel!r}; known: {NOTIFY_CHANNELS}.")
    if not 0 <= priority <= NOTIFY_MAX_PRIORITY:
        raise ValueError(f"priority must be 0-{NOTIFY_MAX_PRIORITY}, got {priority}.")
    with broker_connection(broker_url) as connection:
        connection.transport_options["confirm_publish"] = True
        declare(connection, [notify_exchange(), *(notify_queue(c) for c in NOTIFY_CHANNELS)])
        Producer(connection.default_channel).publish(
            payload,
            exchange=notify_exchange(),
            routing_key="",
            headers={"x-channel": channel},
            priority=priority,
            serializer="json",
            delivery_mode=2,
        )
