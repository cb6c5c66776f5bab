"""The consumer runtime of `manage.py outbox_consume --service NAME`.

Per message from `<service>.events`:
    * malformed body (not an envelope)          -> rejected: the broker moves it to the DLQ queue
    * origin == service                        -> acked and dropped (an echo of our own change)
    * RabbitMQ does not vouch for the sender    -> parked (`untrusted`, the reason recorded),
      (user_id is not the origin's broker user)   nothing applied (`outbox.sender`)
    * at-least-once (default): apply (inbox + handlers + cursor in one transaction), then ack;
        - duplicate                            -> ack, nothing happens
        - gap (predecessor not applied yet)    -> sent to `<service>.events.wait`, comes back
          after OUTBOX_GAP_WAIT_MS; parked after OUTBOX_GAP_MAX_WAIT_S
        - blocked (predecessor parked)         -> parked too, replayed with it in order
        - handler raised                       -> retry tier N+1 (growing TTL), parked after the
          last tier; other aggregates keep flowing meanwhile
        - payload invalid for its schema       -> parked at once (retrying cannot fix it)
    * at-most-once: acked before the handler runs; a failure is logged and the event is gone.
A crash anywhere before the ack redelivers the message; the inbox makes the second run a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DatabaseError, close_old_connections, transaction
from kombu import Consumer, Producer

from .broker import broker_connect, broker_connection, broker_user, connection_errors
from .conf import setting
from .envelope import CONTENT_TYPE, Envelope
from .errors import PayloadInvalid
from .inbox import (
    Outcome,
    dead_letter_park,
    dead_letter_vouches,
    event_apply,
    events_apply_batch,
)
from .metrics import consumer_outcomes_count
from .models import DeadLetterReason
from .registry import AT_MOST_ONCE, Registry, registry
from .sender import REPLAYED_HEADER, SENDER_HEADER, message_sender, sender_refusal
from .topology import (
    declare_consumer,
    retry_queue_name,
    service_queue,
    wait_queue_name,
)

log = logging.getLogger("outbox.consumer")

ATTEMPTS_HEADER = "x-outbox-attempts"
WAITING_SINCE_HEADER = "x-outbox-waiting-since"


@dataclass(frozen=True)
class Delivery:
    envelope: Envelope
    headers: dict
    ack: Callable[[], None]
    sender: str | None = None  # the broker user that vouched for it (RabbitMQ)
    refusal: str | None = None  # why the sender is not believed; None: believed or unchecked


@dataclass
class ConsumerStats:
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.outcomes[what] = self.outcomes.get(what, 0) + 1


def gap_max_wait_s() -> float:
    """Return how long an out-of-order event may wait: longer than a predecessor's retries."""
    configured = setting("OUTBOX_GAP_MAX_WAIT_S")
    if configured is not None:
        return float(configured)
    return sum(setting("OUTBOX_RETRY_DELAYS_MS")) / 1000 * 1.5 + 5.0


class EventConsumer:
    """Consume one service's queue and apply its events through the registry's handlers."""

    def __init__(
        self,
        *,
        service: str,
        registry: Registry = registry,
        broker_url: str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.service = service
        self.registry = registry
        self.broker_url = broker_url
        self.should_stop = should_stop
        self.stats = ConsumerStats()
        self.delays = list(setting("OUTBOX_RETRY_DELAYS_MS"))
        self._connection = None
        self._publisher = None  # a second connection with confirms, for retries and waits
        self._buffer: list[Delivery] = []
        # This process's broker user once connected (RabbitMQ); None: no sender to check.
        self.own_user: str | None = None

    # ------------------------------------------------------------------ broker plumbing
    def _publish_to_queue(self, queue: str, delivery: Delivery, headers: dict) -> None:
        """Send `delivery` back to `queue` (default exchange), persistent and confirmed.

        On RabbitMQ it goes as this half's user, naming the sender it verified: the only
        publisher whose word on the sender the consumer takes (`outbox.sender`).
        """
        if self._publisher is None:
            connection = broker_connection(self.broker_url, name=f"outbox consumer {self.service}")
            connection.transport_options["confirm_publish"] = True
            broker_connect(connection)
            self._publisher = Producer(connection.default_channel)
        properties = {}
        user = broker_user(self._publisher.connection)
        if user is not None:
            properties["user_id"] = user
            headers = {**headers, SENDER_HEADER: delivery.sender or ""}
        self._publisher.publish(
            delivery.envelope.to_json(),
            exchange="",
            routing_key=queue,
            headers=headers,
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=2,
            retry=True,
            retry_policy={"max_retries": 3},
            **properties,
        )

    def _close(self) -> None:
        for conn in (self._connection, self._publisher and self._publisher.connection):
            if conn is not None:
                # Possibly broken already; there is nothing left to release then.
                with contextlib.suppress(Exception):
                    conn.release()
        self._connection = self._publisher = None

    # ------------------------------------------------------------------ messages
    def _on_raw_message(self, message) -> None:
        self.on_message(None, message)

    def on_message(self, body, message) -> None:
        """Buffer one delivery (or reject it when it is not an envelope)."""
        raw = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        try:
            envelope = Envelope.from_json(raw)
        except (ValueError, TypeError, PayloadInvalid) as exc:
            log.error("%s: rejecting a message that is not an envelope: %s", self.service, exc)
            self.stats.count("malformed")
            consumer_outcomes_count(consumer=self.service, outcomes=["malformed"])
            message.reject(requeue=False)
            return
        headers = dict(message.headers or {})
        sender = refusal = None
        if self.own_user is not None:
            sender = message_sender(
                user_id=(message.properties or {}).get("user_id"),
                headers=headers,
                own_user=self.own_user,
            )
            refusal = sender_refusal(envelope=envelope, sender=sender, own_user=self.own_user)
            if (
                refusal
                and headers.get(REPLAYED_HEADER)
                and dead_letter_vouches(consumer=self.service, envelope=envelope)
            ):
                sender, refusal = f"replay of a parked event ({sender})", None
        self._buffer.append(Delivery(envelope, headers, message.ack, sender, refusal))

    def handle(self, envelope: Envelope, headers: dict, *, ack: Callable[[], None]) -> str:
        """Decide and act on one envelope; `ack` is called exactly once. Return the outcome."""
        return self.process([Delivery(envelope, headers, ack)])[0]

    def process(self, deliveries: list[Delivery]) -> list[str]:
        """Apply a batch in one transaction, then settle (ack, retry, park) each delivery.

        One commit for many events is what lets a consumer keep up with a busy monolith. When
        a handler fails, the batch is rolled back and redone one event per transaction, so
        only the failing event goes to the retry tiers. Acks happen after the commit.
        """
        settled: dict[int, str] = {}
        applied: list[tuple[int, Delivery, str, BaseException | None]] = []
        for index, delivery in enumerate(deliveries):
            subscriptions = self.registry.matching(self.service, delivery.envelope.type)
            if delivery.envelope.origin == self.service:
                delivery.ack()
                settled[index] = Outcome.ECHO
            elif delivery.refusal is not None:
                log.error(
                    "%s: refusing %s %s: %s",
                    self.service, delivery.envelope.type, delivery.envelope.id, delivery.refusal,
                )  # fmt: skip
                attempts = int(delivery.headers.get(ATTEMPTS_HEADER, 0))
                self._park(
                    delivery.envelope,
                    DeadLetterReason.UNTRUSTED,
                    delivery.refusal,
                    attempts,
                    delivery.ack,
                )
                settled[index] = "untrusted"
            elif subscriptions and all(s.mode == AT_MOST_ONCE for s in subscriptions):
                settled[index] = self._at_most_once(delivery, subscriptions)
            else:
                applied.append((index, delivery, "", None))
        if applied:
            outcomes = self._apply_batch([delivery for _, delivery, _, _ in applied])
            for (index, delivery, _, _), (outcome, exc) in zip(applied, outcomes, strict=True):
                settled[index] = self._settle(delivery, outcome, exc)
        results = [settled[i] for i in range(len(deliveries))]
        for result in results:
            self.stats.count(result)
        consumer_outcomes_count(consumer=self.service, outcomes=results)
        return results

    def _apply_batch(self, deliveries: list[Delivery]) -> list[tuple[str, BaseException | None]]:
        """Apply deliveries in one transaction; if one fails, redo them one transaction each."""
        if len(deliveries) > 1:
            try:
                with transaction.atomic():
                    outcomes = events_apply_batch(
                        consumer=self.service,
                        envelopes=[delivery.envelope for delivery in deliveries],
                        subscriptions_for=lambda event_type: self.registry.matching(
                            self.service, event_type
                        ),
                    )
                    return [(str(outcome), None) for outcome in outcomes]
            except DatabaseError:
                raise  # the connection, not an event: nothing is acked, all are redelivered
            except Exception:  # noqa: S110 - a handler failed: find which, one by one
                pass
        results: list[tuple[str, BaseException | None]] = []
        for delivery in deliveries:
            try:
                results.append((self._apply(delivery, savepoint=True), None))
            except PayloadInvalid as exc:
                results.append(("invalid", exc))
            except DatabaseError:
                raise
            except Exception as exc:
                results.append(("failed", exc))
        return results

    def _apply(self, delivery: Delivery, *, savepoint: bool) -> str:
        return event_apply(
            consumer=self.service,
            envelope=delivery.envelope,
            subscriptions=self.registry.matching(self.service, delivery.envelope.type),
            savepoint=savepoint,
        )

    def _at_most_once(self, delivery: Delivery, subscriptions) -> str:
        delivery.ack()  # at-most-once: from here on, a failure loses the event by choice
        try:
            return event_apply(
                consumer=self.service,
                envelope=delivery.envelope,
                subscriptions=subscriptions,
                ordered=False,
            )
        except Exception:
            log.exception(
                "%s: at-most-once handler failed; event %s dropped",
                self.service,
                delivery.envelope.id,
            )
            return "dropped"

    def _settle(self, delivery: Delivery, outcome: str, exc: BaseException | None) -> str:
        envelope, headers, ack = delivery.envelope, delivery.headers, delivery.ack
        attempts = int(headers.get(ATTEMPTS_HEADER, 0))
        if outcome == "invalid":
            self._park(envelope, DeadLetterReason.INVALID, str(exc), attempts, ack)
            return "parked"
        if outcome == "failed":
            self._retry_or_park(delivery, exc, attempts)
            return "retried" if attempts < len(self.delays) else "parked"
        if outcome == Outcome.GAP:
            since = float(headers.get(WAITING_SINCE_HEADER, time.time()))
            if time.time() - since > gap_max_wait_s():
                error = f"sequence {envelope.sequence} waited {time.time() - since:.0f}s"
                self._park(envelope, DeadLetterReason.GAP, error, attempts, ack)
                return "parked"
            self._publish_to_queue(
                wait_queue_name(self.service),
                delivery,
                {ATTEMPTS_HEADER: attempts, WAITING_SINCE_HEADER: since},
            )
        elif outcome == Outcome.BLOCKED:
            error = "an earlier event of this aggregate is parked; replay them together"
            self._park(envelope, DeadLetterReason.BLOCKED, error, attempts, ack)
            return "parked"
        ack()
        return str(outcome)

    def _retry_or_park(self, delivery: Delivery, exc, attempts) -> None:
        envelope, ack = delivery.envelope, delivery.ack
        error = "".join(traceback.format_exception(exc))
        if attempts < len(self.delays):
            log.warning(
                "%s: %s %s failed (attempt %d), retrying in %dms: %r",
                self.service, envelope.type, envelope.id, attempts + 1,
                self.delays[attempts], exc,
            )  # fmt: skip
            self._publish_to_queue(
                retry_queue_name(self.service, attempts + 1),
                delivery,
                {ATTEMPTS_HEADER: attempts + 1},
            )
            ack()
        else:
            self._park(envelope, DeadLetterReason.FAILED, error, attempts + 1, ack)

    def _park(self, envelope, reason, error, attempts, ack) -> None:
        log.error("%s: parking %s %s (%s)", self.service, envelope.type, envelope.id, reason)
        dead_letter_park(
            consumer=self.service, envelope=envelope, reason=reason, error=error, attempts=attempts
        )
        ack()

    # ------------------------------------------------------------------ the loop
    def _drain(self, connection) -> None:
        """Wait for a delivery, take whatever else is already here, and process the batch."""
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=0.5)
        batch_max = int(setting("OUTBOX_CONSUMER_BATCH"))
        while self._buffer and len(self._buffer) < batch_max:
            try:
                connection.drain_events(timeout=0.001)
            except TimeoutError:
                break
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self.process(batch)

    def run(self) -> ConsumerStats:
        """Consume until `should_stop()`; reconnect with backoff when the broker goes away."""
        if not self.registry.subscriptions(self.service):
            raise ValueError(
                f"No handlers are registered for consumer {self.service!r}; "
                f"known consumers: {self.registry.consumers()}."
            )
        backoff = 0.0
        while not self.should_stop():
            self._buffer = []  # unacked deliveries of a lost channel come back by themselves
            connection = broker_connection(self.broker_url, name=f"outbox consumer {self.service}")
            errors = connection_errors(connection)
            try:
                self._connection = connection
                broker_connect(connection)
                self.own_user = broker_user(connection)
                log.info("%s: consuming from %s", self.service, connection.as_uri())
                declare_consumer(
                    connection,
                    service=self.service,
                    binding_keys=self.registry.binding_keys(self.service),
                )
                channel = connection.channel()
                channel.basic_qos(0, int(setting("OUTBOX_CONSUMER_PREFETCH")), False)
                queue = service_queue(self.service, self.registry.binding_keys(self.service))
                # on_message: the raw delivery, undecoded (the envelope is parsed once, here).
                with Consumer(channel, queues=[queue], on_message=self._on_raw_message):
                    backoff = 0.0
                    while not self.should_stop():
                        self._drain(connection)
            except (*errors, DatabaseError) as exc:
                backoff = min(float(setting("OUTBOX_RELAY_BACKOFF_MAX_S")), max(0.2, backoff * 2))
                log.warning(
                    "%s: broker unavailable (%r); retrying in %.1fs", self.service, exc, backoff
                )
                close_old_connections()
                time.sleep(backoff)
            finally:
                self._close()
        return self.stats
