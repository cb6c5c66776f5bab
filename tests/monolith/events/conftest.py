"""Fixtures of the monolith events tests: read what the outbox holds, no broker traffic."""

from __future__ import annotations

from unittest import mock

import pytest

from monolith.orders import tasks as order_tasks
from outbox.envelope import Envelope
from outbox.models import OutboxEvent
from outbox.schemas import envelope_validate, payload_validate
from tests.monolith.payments.recording import RecordingProvider

SUCCEED_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"
# Lines as a client names them; the autouse `catalogue` fixture prices BOOK-1 at 12.50.
ITEMS = [{"sku": "BOOK-1", "quantity": 2}]


@pytest.fixture(autouse=True)
def catalogue(db):
    """Stock the product ITEMS orders, at 12.50."""
    from tests.catalogue import stock

    stock("BOOK-1", "12.50")


@pytest.fixture(autouse=True)
def no_emails_queued():
    """Keep the post-commit Celery emails off the shared broker: they are not under test."""
    with mock.patch.object(order_tasks.send_order_confirmation, "apply_async"):
        yield


@pytest.fixture(autouse=True)
def provider(settings):
    """Charge through the counting simulated provider, instantly."""
    settings.STRANGLER_PAYMENT_PROVIDER = "tests.monolith.payments.recording.RecordingProvider"
    settings.STRANGLER_PAYMENT_LATENCY_MS = 0
    RecordingProvider.reset()
    yield RecordingProvider
    RecordingProvider.reset()


def events(aggregate_type: str | None = None, aggregate_id=None) -> list[OutboxEvent]:
    """Return the outbox rows, of one aggregate when given, in write order."""
    rows = OutboxEvent.objects.order_by("id")
    if aggregate_type is not None:
        rows = rows.filter(aggregate_type=aggregate_type)
    if aggregate_id is not None:
        rows = rows.filter(aggregate_id=str(aggregate_id))
    return list(rows)


def types(rows) -> list[str]:
    return [row.event_type for row in rows]


def assert_valid(row: OutboxEvent) -> None:
    """Fail unless the row is a valid envelope whose payload matches its schema."""
    envelope_validate(Envelope.from_row(row).to_dict())
    payload_validate(event_type=row.event_type, version=row.version, payload=row.payload)
