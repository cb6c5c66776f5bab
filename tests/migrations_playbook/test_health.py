"""The healthchecks of the processes that serve no HTTP, against the real database and broker."""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu import Connection, Consumer, Queue

from migrations_playbook import health
from migrations_playbook.health import Unhealthy, consumer_check, relay_check
from outbox.models import OutboxEvent

pytestmark = pytest.mark.integration

needs_rabbitmq = pytest.mark.skipif(
    not os.environ.get("BROKER_URL", "").startswith("amqp"),
    reason="counting a queue's consumers needs RabbitMQ: set BROKER_URL=amqp://...",
)


def _pending_row(*, age_s: float) -> OutboxEvent:
    row = OutboxEvent.objects.create(
        event_id=uuid.uuid4(),
        event_type="order.placed",
        aggregate_type="order",
        aggregate_id=str(uuid.uuid4()),
        sequence=1,
        occurred_at=timezone.now(),
        origin="monolith",
        correlation_id="health-test",
        payload={},
    )
    OutboxEvent.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(seconds=age_s)
    )
    return row


@pytest.mark.django_db
def test_relay_is_healthy_while_rows_leave_in_time():
    _pending_row(age_s=5)
    assert "1 rows pending" in relay_check(max_pending_age=60)


@pytest.mark.django_db
def test_relay_is_unhealthy_when_a_row_waits_too_long(capsys):
    _pending_row(age_s=300)
    with pytest.raises(Unhealthy, match=r"the oldest for 300 s .* the relay is not publishing"):
        relay_check(max_pending_age=60)
    assert health.main(["relay", "--max-pending-age", "60"]) == 1
    assert capsys.readouterr().out.startswith("unhealthy: 1 outbox rows unsent")


@needs_rabbitmq
def test_consumer_is_unhealthy_until_something_consumes_its_queue():
    service = f"health-{secrets.token_hex(4)}"
    with pytest.raises(Unhealthy, match="no such queue"):
        consumer_check(service=service)
    queue = Queue(f"{service}.events", auto_delete=True)
    with Connection(os.environ["BROKER_URL"]) as connection:
        channel = connection.channel()
        with Consumer(channel, queues=[queue], callbacks=[lambda body, message: None]):
            assert "1 consumer(s)" in consumer_check(service=service)


def test_health_refuses_an_unknown_kind(capsys):
    with pytest.raises(SystemExit) as exited:
        health.main(["nosuch"])
    assert exited.value.code == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err
