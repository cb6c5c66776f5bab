"""The writer: an event exists iff its transaction commits, and only in the design's shape."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction

import outbox
from outbox.context import event_context
from outbox.envelope import Envelope
from outbox.errors import NotInTransaction, PayloadInvalid, SchemaNotFound
from outbox.models import OutboxEvent

from .conftest import order_payload


def _publish(aggregate_id: str = "A", **payload_overrides) -> OutboxEvent:
    with transaction.atomic():
        return outbox.publish(
            event_type="order.placed",
            aggregate_type="order",
            aggregate_id=aggregate_id,
            payload=order_payload(**payload_overrides),
        )


@pytest.mark.django_db
def test_published_event_carries_every_envelope_field(settings):
    settings.STRANGLER_SERVICE_NAME = "monolith"
    row = _publish()
    envelope = Envelope.from_row(row).to_dict()
    assert set(envelope) == {
        "id", "type", "version", "aggregate_type", "aggregate_id", "sequence",
        "occurred_at", "origin", "correlation_id", "causation_id", "payload",
    }  # fmt: skip
    assert envelope["type"] == "order.placed"
    assert envelope["origin"] == "monolith"
    assert envelope["sequence"] == 1
    assert envelope["correlation_id"] == envelope["id"]
    assert row.sent_at is None
    Envelope.from_dict(envelope)  # valid against the envelope schema


@pytest.mark.django_db
def test_sequence_counts_per_aggregate_from_one():
    sequences = [_publish("A").sequence, _publish("A").sequence, _publish("B").sequence]
    assert sequences == [1, 2, 1]


@pytest.mark.django_db
def test_decimal_and_uuid_payload_values_are_stored_as_strings():
    order_id = uuid.uuid4()
    row = _publish(order_id=order_id, total=Decimal("20.00"))
    assert row.payload["order_id"] == str(order_id)
    assert row.payload["total"] == "20.00"


@pytest.mark.django_db
def test_datetime_payload_values_keep_their_microseconds():
    created = datetime(2026, 1, 1, 10, 0, 0, 367206, tzinfo=UTC)
    row = _publish(created_at=created)
    # A copy made from the event must equal the original row, to the microsecond.
    assert row.payload["created_at"] == "2026-01-01T10:00:00.367206Z"
    assert datetime.fromisoformat(row.payload["created_at"]) == created


@pytest.mark.django_db
def test_payload_not_matching_its_schema_is_refused_naming_the_field():
    with pytest.raises(PayloadInvalid) as caught:
        _publish(total=12.5)
    assert "total" in str(caught.value)
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_payload_with_an_unknown_field_is_refused():
    with pytest.raises(PayloadInvalid, match="tota"):
        _publish(tota="1.00")


@pytest.mark.django_db
def test_event_type_without_a_schema_is_refused():
    with pytest.raises(SchemaNotFound, match=r"order\.teleported\.v1\.json"), transaction.atomic():
        outbox.publish(
            event_type="order.teleported", aggregate_type="order", aggregate_id="A", payload={}
        )


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_is_refused():
    with pytest.raises(NotInTransaction, match=r"transaction\.atomic"):
        outbox.publish(
            event_type="order.placed",
            aggregate_type="order",
            aggregate_id="A",
            payload=order_payload(),
        )


@pytest.mark.django_db(transaction=True)
def test_event_of_a_rolled_back_transaction_never_exists():
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        outbox.publish(
            event_type="order.placed",
            aggregate_type="order",
            aggregate_id="A",
            payload=order_payload(),
        )
        raise Boom
    assert OutboxEvent.objects.count() == 0
    # The rolled-back sequence is not burnt: the next committed event is still number 1.
    assert _publish("A").sequence == 1


@pytest.mark.django_db
def test_events_written_in_a_context_carry_its_correlation_and_causation():
    with event_context(correlation_id="req-1", causation_id="evt-0"):
        row = _publish()
    assert (row.correlation_id, row.causation_id) == ("req-1", "evt-0")


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_aggregate_get_consecutive_sequences():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(10):
                _publish("hot")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = list(OutboxEvent.objects.filter(aggregate_id="hot").order_by("id"))
    # Row order (the relay's order) equals sequence order equals commit order.
    assert [r.sequence for r in rows] == list(range(1, 41))


SAMPLES = {
    "user.registered": {
        "user_id": 7,
        "email": "ada@example.com",
        "full_name": "Ada",
        "is_staff": False,
        "date_joined": "2026-01-01T10:00:00+00:00",
    },
    "user.updated": {
        "user_id": 7,
        "email": "ada@example.com",
        "full_name": "Ada L.",
        "changed": ["full_name"],
        "updated_at": "2026-01-01T10:00:00+00:00",
    },
    "order.placed": order_payload(),
    "order.cancelled": {
        "order_id": str(uuid.uuid4()),
        "user_id": 7,
        "status": "cancelled",
        "total": "20.00",
        "currency": "EUR",
        "cancelled_at": "2026-01-01T10:00:00Z",
    },
    "order.shipped": {
        "order_id": str(uuid.uuid4()),
        "user_id": 7,
        "status": "shipped",
        "total": "20.00",
        "currency": "EUR",
        "shipped_at": "2026-01-01T11:00:00Z",
    },
    "order.paid": {
        "order_id": str(uuid.uuid4()),
        "user_id": 7,
        "status": "paid",
        "payment_id": str(uuid.uuid4()),
        "total": "20.00",
        "currency": "EUR",
        "paid_at": "2026-01-01T10:00:00Z",
    },
}
_PAYMENT = {
    "payment_id": str(uuid.uuid4()),
    "order_id": str(uuid.uuid4()),
    "user_id": 7,
    "amount": "20.00",
    "currency": "EUR",
    "card_last4": "4242",
    "created_at": "2026-01-01T10:00:00Z",
}
SAMPLES["payment.succeeded"] = _PAYMENT | {"status": "succeeded", "provider_reference": "sim_1"}
SAMPLES["payment.failed"] = _PAYMENT | {"status": "failed", "failure_reason": "card_declined"}
SAMPLES["payment.refunded"] = {k: v for k, v in _PAYMENT.items() if k != "created_at"} | {
    "status": "refunded",
    "refunded_at": "2026-01-01T10:00:00Z",
}


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_monolith_event_has_a_schema_that_accepts_its_payload(event_type):
    with transaction.atomic():
        row = outbox.publish(
            event_type=event_type,
            aggregate_type=event_type.split(".")[0],
            aggregate_id="1",
            payload=SAMPLES[event_type],
        )
    assert row.event_type == event_type


@pytest.mark.django_db
def test_a_timestamp_that_is_not_iso_8601_is_refused():
    with pytest.raises(PayloadInvalid, match="created_at"):
        _publish(created_at="yesterday")
