"""Connect to the broker named by BROKER_URL and publish envelopes with publisher confirms.

Supports:
    * RabbitMQ (`amqp://`, py-amqp): confirms over a window of unacknowledged publishes; a
      batch returns only when the broker has acknowledged every message in it. Every message
      carries `user_id` = the connection's broker user, which RabbitMQ checks (a publish that
      claims another user is refused), so consumers know which half sent it (`outbox.sender`).
    * A cluster: BROKER_URL may list several nodes, `amqp://a//;amqp://b//` (kombu's failover
      syntax). A connection tries them in turn, starting from a different one after each
      failure, so a relay or consumer whose node died moves to a live one.
    * Any other kombu transport (`filesystem://`, `memory://`): kombu's Producer; the write is
      synchronous, there is nothing to confirm (and no broker user to vouch for the sender).
A lost connection, a timeout or a nack raises PublishFailed; the caller keeps the rows pending.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
from collections.abc import Iterable

import amqp
from kombu import Connection, Producer
from kombu.exceptions import KombuError

from .conf import broker_url, setting
from .envelope import CONTENT_TYPE, Envelope
from .errors import OutboxError
from .topology import declare_publisher, events_exchange


class PublishFailed(OutboxError):
    """The broker did not confirm a batch: it is down, refused, nacked or timed out."""


# Each new connection of this process starts at the next node of a multi-node BROKER_URL.
_next_node = itertools.count()


def broker_urls(url: str | None = None) -> list[str]:
    """Return the node URLs of `url` or the outbox's broker (kombu's `;`-separated list)."""
    return [part.strip() for part in (url or broker_url()).split(";") if part.strip()]


def broker_connection(url: str | None = None, *, name: str | None = None) -> Connection:
    """Return a kombu connection to `url` or BROKER_URL (not yet connected).

    With several nodes, successive connections start at successive nodes (and fail over to
    the others in order): after a node dies, the reconnect tries a different one first.
    `name` is shown by RabbitMQ as the connection's name (`rabbitmqctl list_connections`).
    """
    urls = broker_urls(url)
    start = next(_next_node) % len(urls)
    options = dict(setting("BROKER_TRANSPORT_OPTIONS"))
    if name and urls[0].startswith(("amqp", "pyamqp")):
        options["client_properties"] = {"connection_name": f"{name} pid {os.getpid()}"}
    return Connection(
        ";".join(urls[start:] + urls[:start]),
        transport_options=options,
        heartbeat=0,
        connect_timeout=5,
    )


def broker_connect(connection: Connection) -> None:
    """Connect, trying every node of the failover list once before giving up."""
    connection.ensure_connection(
        max_retries=max(1, len(connection.alt)),
        interval_start=0,
        interval_step=0,
        interval_max=0,
        reraise_as_library_errors=False,
    )


def broker_user(connection: Connection) -> str | None:
    """Return the broker user `connection` logs in as (RabbitMQ), None elsewhere."""
    if connection.transport.driver_type != "amqp":
        return None
    return connection.userid or "guest"


def connection_errors(connection: Connection) -> tuple[type[BaseException], ...]:
    """Return every exception type that means 'the broker is gone' for this connection."""
    return (
        *connection.connection_errors,
        *connection.channel_errors,
        OSError,
        socket.timeout,
        amqp.exceptions.AMQPError,
        KombuError,
    )


class EnvelopePublisher:
    """Publish envelopes to the events exchange; `publish()` returns once all are confirmed."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self.connection = broker_connection(url, name="outbox relay")
        self.exchange_name = setting("OUTBOX_EXCHANGE")
        self.window = max(1, int(setting("OUTBOX_RELAY_WINDOW")))
        self.timeout = float(setting("OUTBOX_RELAY_CONFIRM_TIMEOUT_S"))
        self._channel = None
        self._producer: Producer | None = None
        self.user_id: str | None = None
        self._tag = 0
        # Confirmed: every tag <= _floor, plus the few acked out of order above it.
        self._floor = 0
        self._above: set[int] = set()
        self._nacked = 0
        self._nacked_from = 0
        # The pipelined relay's database connections live as long as this publisher does.
        self.db_connections: list = []

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Open the connection, declare the publisher's topology and enter confirm mode."""
        errors = connection_errors(self.connection)
        try:
            broker_connect(self.connection)
            declare_publisher(self.connection)
            self.user_id = broker_user(self.connection)
            if self.is_amqp:
                self._channel = self.connection.connection.channel()
                self._channel.confirm_select()
                self._channel.events["basic_ack"].add(self._on_ack)
                self._channel.events["basic_nack"].add(self._on_nack)
                self._tag = 0
                self._nacked_from = 0
                self._floor = 0
                self._above.clear()
            else:
                self._producer = Producer(self.connection.default_channel)
        except errors as exc:
            self.close()
            raise PublishFailed(f"Cannot reach the broker at {self.safe_url}: {exc!r}") from exc

    def close(self) -> None:
        """Drop the connection; the next publish reconnects."""
        for raw in self.db_connections:
            with contextlib.suppress(Exception):
                raw.close()
        self.db_connections = []
        self._channel = None
        self._producer = None
        # The connection may already be broken; there is nothing left to release then.
        with contextlib.suppress(Exception):
            self.connection.release()
        # A fresh connection from the URL list: it starts at the next node.
        self.connection = broker_connection(self.url, name="outbox relay")

    @property
    def is_amqp(self) -> bool:
        return self.connection.transport.driver_type == "amqp"

    @property
    def connected(self) -> bool:
        return self._channel is not None or self._producer is not None

    @property
    def safe_url(self) -> str:
        return self.connection.as_uri()

    # ------------------------------------------------------------------ confirms
    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        # O(1) per ack: RabbitMQ mostly acks in order, often `multiple`, so a floor suffices.
        if multiple:
            if delivery_tag > self._floor:
                self._floor = delivery_tag
                self._above = {t for t in self._above if t > delivery_tag}
        elif delivery_tag > self._floor:
            self._above.add(delivery_tag)
        while self._floor + 1 in self._above:
            self._floor += 1
            self._above.discard(self._floor)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked += 1
        # The lowest tag a nack covered: any batch at or after it has failed.
        low = self._floor + 1 if multiple else delivery_tag
        self._nacked_from = min(self._nacked_from or low, low)
        self._on_ack(delivery_tag, multiple)

    def _outstanding_count(self) -> int:
        return self._tag - self._floor - len(self._above)

    @property
    def outstanding(self) -> int:
        """Return how many publishes the broker has not confirmed yet."""
        return self._outstanding_count()

    def _wait_until(self, outstanding_at_most: int) -> None:
        while self._outstanding_count() > outstanding_at_most:
            self.connection.connection.drain_events(timeout=self.timeout)

    # ------------------------------------------------------------------ publishing
    def publish(self, envelopes: Iterable[Envelope]) -> int:
        """Publish every envelope, persistent, and return their count once all are confirmed."""
        if not self.connected:
            self.connect()
        errors = connection_errors(self.connection)
        try:
            return self._publish_amqp(envelopes) if self.is_amqp else self._publish_kombu(envelopes)
        except errors as exc:
            self.close()
            raise PublishFailed(f"Publishing to {self.safe_url} failed: {exc!r}") from exc

    def _publish_amqp(self, envelopes: Iterable[Envelope]) -> int:
        self._nacked = 0
        count = 0
        for envelope in envelopes:
            # Keep at most `window` unconfirmed: throughput of a pipeline, safety of confirms.
            self._wait_until(self.window - 1)
            self._send(envelope)
            count += 1
        self._wait_until(0)
        if self._nacked:
            raise PublishFailed(f"The broker nacked {self._nacked} of {count} messages.")
        return count

    def publish_pipelined(self, messages: Iterable[tuple[str, bytes, str, str]]) -> int:
        """Publish ready-made (event type, JSON body, event id, origin) messages without waiting
        for the last confirms; return the last delivery tag.

        RabbitMQ only (the caller checks `is_amqp`). Pair with `wait_confirmed(tag)`.
        """
        if not self.connected:
            self.connect()
        errors = connection_errors(self.connection)
        try:
            for event_type, body, event_id, origin in messages:
                self._wait_until(self.window - 1)
                message = amqp.Message(
                    body,
                    content_type=CONTENT_TYPE,
                    delivery_mode=2,
                    message_id=event_id,
                    type=event_type,
                    app_id=origin,
                    user_id=self.user_id,
                )
                self._tag += 1
                self._channel.basic_publish(message, self.exchange_name, event_type)
            return self._tag
        except errors as exc:
            self.close()
            raise PublishFailed(f"Publishing to {self.safe_url} failed: {exc!r}") from exc

    def wait_confirmed(self, tag: int) -> None:
        """Return once every publish up to `tag` is confirmed; raise PublishFailed on a nack."""
        errors = connection_errors(self.connection)
        try:
            while self._floor < tag:
                self.connection.connection.drain_events(timeout=self.timeout)
        except errors as exc:
            self.close()
            raise PublishFailed(f"Confirms from {self.safe_url} failed: {exc!r}") from exc
        if self._nacked_from and self._nacked_from <= tag:
            raise PublishFailed(f"The broker nacked a message at or before delivery tag {tag}.")

    def _send(self, envelope: Envelope) -> None:
        message = amqp.Message(
            envelope.to_json(),
            content_type=CONTENT_TYPE,
            delivery_mode=2,
            message_id=envelope.id,
            correlation_id=envelope.correlation_id,
            type=envelope.type,
            app_id=envelope.origin,
            user_id=self.user_id,
        )
        self._tag += 1
        self._channel.basic_publish(message, self.exchange_name, envelope.routing_key)

    def _publish_kombu(self, envelopes: Iterable[Envelope]) -> int:
        count = 0
        for envelope in envelopes:
            self._producer.publish(
                envelope.to_dict(),
                exchange=events_exchange(),
                routing_key=envelope.routing_key,
                serializer="json",
                delivery_mode=2,
                message_id=envelope.id,
                correlation_id=envelope.correlation_id,
            )
            count += 1
        return count
