"""Fixtures of the outbox tests: payloads, a unique broker namespace, and a broker connection."""

from __future__ import annotations

import os
import uuid

import pytest


def order_payload(**overrides) -> dict:
    payload = {
        "order_id": str(uuid.uuid4()),
        "user_id": 1,
        "status": "pending",
        "total": "20.00",
        "currency": "EUR",
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
        "created_at": "2026-01-01T10:00:00+00:00",
    }
    return payload | overrides


@pytest.fixture
def placed_payload():
    return order_payload


def broker_is_amqp() -> bool:
    return os.environ.get("BROKER_URL", "").startswith("amqp")


needs_rabbitmq = pytest.mark.skipif(not broker_is_amqp(), reason="needs BROKER_URL=amqp://...")


class BrokerNamespace:
    """Unique exchange and queue names for one test, deleted afterwards."""

    def __init__(self, settings) -> None:
        self.tag = uuid.uuid4().hex[:10]
        self.exchange = f"t{self.tag}.events"
        self.stream = f"t{self.tag}.events.stream"
        self.queues: list[str] = [self.stream]
        self.exchanges: list[str] = [self.exchange]
        settings.OUTBOX_EXCHANGE = self.exchange
        settings.OUTBOX_STREAM_QUEUE = self.stream
        settings.OUTBOX_BROADCAST_EXCHANGE = f"t{self.tag}.broadcast"
        settings.OUTBOX_NOTIFY_EXCHANGE = f"t{self.tag}.notify"
        self.exchanges += [settings.OUTBOX_BROADCAST_EXCHANGE, settings.OUTBOX_NOTIFY_EXCHANGE]
        settings.OUTBOX_RETRY_DELAYS_MS = [100, 200]
        settings.OUTBOX_GAP_WAIT_MS = 100
        settings.OUTBOX_RELAY_POLL_S = 0.2
        settings.OUTBOX_RELAY_BACKOFF_MAX_S = 0.5
        self.settings = settings

    def service(self, name: str) -> str:
        """Return a unique service name and remember its queues for deletion."""
        service = f"t{self.tag}-{name}"
        delays = self.settings.OUTBOX_RETRY_DELAYS_MS
        self.queues += [f"{service}.events", f"{service}.events.dlq", f"{service}.events.wait"]
        self.queues += [f"{service}.events.retry.{n}" for n in range(1, len(delays) + 1)]
        return service

    def env(self) -> dict[str, str]:
        """Return environment variables that give a subprocess the same names."""
        import json

        return {
            "OUTBOX_TEST_SETTINGS": json.dumps(
                {
                    key: getattr(self.settings, key)
                    for key in (
                        "OUTBOX_EXCHANGE",
                        "OUTBOX_STREAM_QUEUE",
                        "OUTBOX_RETRY_DELAYS_MS",
                        "OUTBOX_GAP_WAIT_MS",
                        "OUTBOX_RELAY_POLL_S",
                        "OUTBOX_RELAY_BACKOFF_MAX_S",
                    )
                }
            )
        }

    def delete(self) -> None:
        from kombu import Connection

        with Connection(os.environ["BROKER_URL"]) as conn:
            for name in self.queues:
                channel = conn.channel()
                try:
                    channel.queue_delete(name)
                except Exception:  # noqa: S110 - never declared by this test
                    pass
                finally:
                    channel.close()
            for name in self.exchanges:
                channel = conn.channel()
                try:
                    channel.exchange_delete(name)
                except Exception:  # noqa: S110 - never declared by this test
                    pass
                finally:
                    channel.close()


@pytest.fixture
def broker(settings):
    """A RabbitMQ namespace private to this test (skipped without RabbitMQ)."""
    if not broker_is_amqp():
        pytest.skip("needs BROKER_URL=amqp://...")
    namespace = BrokerNamespace(settings)
    yield namespace
    namespace.delete()


def collect(queue_name: str, *, count: int, timeout: float = 10.0) -> list[dict]:
    """Return `count` JSON bodies taken (and acked) from a queue, waiting up to `timeout`."""
    import json
    import time

    from kombu import Connection

    bodies: list[dict] = []
    deadline = time.monotonic() + timeout
    with Connection(os.environ["BROKER_URL"]) as conn:
        channel = conn.channel()
        while len(bodies) < count and time.monotonic() < deadline:
            message = channel.basic_get(queue_name, no_ack=True)
            if message is None:
                time.sleep(0.02)
                continue
            bodies.append(json.loads(message.body))
    return bodies


def declare_probe(broker: BrokerNamespace, binding_key: str = "#") -> str:
    """Declare a plain queue bound to the test's events exchange; return its name."""
    from kombu import Connection, Exchange, Queue

    name = f"t{broker.tag}.probe.{uuid.uuid4().hex[:6]}"
    broker.queues.append(name)
    with Connection(os.environ["BROKER_URL"]) as conn:
        exchange = Exchange(broker.exchange, type="topic", durable=True)
        Queue(name, exchange, routing_key=binding_key, durable=True).bind(
            conn.default_channel
        ).declare()
    return name
