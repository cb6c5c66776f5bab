"""The event store: optimistic concurrency, no lost update under races, snapshots, upcasting."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, transaction

from extracted.orders.domain import PLACED, OrderState, fold
from extracted.orders.eventstore import (
    NewEvent,
    StreamVersionConflict,
    events_append,
    events_read,
    store_transaction,
    stream_load,
)
from extracted.orders.models import Snapshot, StoredEvent
from extracted.orders.services import order_load, order_payment_record
from outbox.models import OutboxEvent


def _placed(user_id: int = 7) -> NewEvent:
    item = {"sku": "BOOK-1", "quantity": 1, "unit_price": "9.99"}
    return NewEvent(
        PLACED, {"user_id": user_id, "currency": "EUR", "items": [item], "total": "9.99"}
    )


@pytest.mark.django_db
def test_an_append_at_a_version_someone_else_already_wrote_is_a_conflict():
    stream = uuid.uuid4()
    with transaction.atomic():
        events_append(stream_id=stream, expected_version=0, events=[_placed()])

    with pytest.raises(StreamVersionConflict), transaction.atomic():
        events_append(stream_id=stream, expected_version=0, events=[NewEvent("OrderPaid", {})])

    assert [e.version for e in stream_load(stream_id=stream).events] == [1]


@pytest.mark.django_db(transaction=True)
def test_an_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events_append(stream_id=uuid.uuid4(), expected_version=0, events=[_placed()])


@pytest.mark.django_db(transaction=True)
def test_two_writers_deciding_on_the_same_version_one_wins_one_conflicts():
    """Real concurrency on PostgreSQL: both read version 1, both append; exactly one lands."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    stream = uuid.uuid4()
    with transaction.atomic():
        events_append(stream_id=stream, expected_version=0, events=[_placed()])
    both_read = threading.Barrier(2)
    outcomes: list[str] = []

    def writer(kind: str) -> None:
        try:
            with store_transaction():
                version = stream_load(stream_id=stream).version
                both_read.wait(timeout=5)
                events_append(
                    stream_id=stream, expected_version=version, events=[NewEvent(kind, {})]
                )
            outcomes.append("appended")
        except StreamVersionConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("OrderPaid", "OrderCancelled")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(outcomes) == ["appended", "conflict"]
    assert [e.version for e in stream_load(stream_id=stream).events] == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_cancels_over_http_one_wins_the_other_gets_409(client_for, user_id, place):
    """Many rounds of two threads cancelling one order: never two cancels, never a lost event."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    for _ in range(5):
        order = place(user_id)
        start = threading.Barrier(2)
        answers: list[tuple[int, dict]] = []

        def cancel(order_id=order.order_id, start=start, answers=answers) -> None:
            client = client_for(user_id)
            start.wait(timeout=5)
            response = client.post(f"/api/orders/{order_id}/cancel/")
            answers.append((response.status_code, response.json()))
            connection.close()

        threads = [threading.Thread(target=cancel) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

        assert sorted(code for code, _ in answers) == [200, 409]
        refused = next(body for code, body in answers if code == 409)
        assert refused["error"] in {"invalid_transition", "concurrent_update"}
        stream = StoredEvent.objects.filter(stream_id=order.order_id).order_by("version")
        assert list(stream.values_list("event_type", flat=True)) == [PLACED, "OrderCancelled"]
        assert (
            OutboxEvent.objects.filter(
                aggregate_id=order.order_id, event_type="order.cancelled"
            ).count()
            == 1
        )


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_a_payment_has_exactly_one_winner(client_for, user_id, place):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    order = place(user_id)
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def cancel() -> None:
        start.wait(timeout=5)
        results["cancel"] = client_for(user_id).post(f"/api/orders/{order.order_id}/cancel/")
        connection.close()

    def pay() -> None:
        start.wait(timeout=5)
        results["pay"] = order_payment_record(order_id=order.order_id, payment_id=str(uuid.uuid4()))
        connection.close()

    threads = [threading.Thread(target=cancel), threading.Thread(target=pay)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    final = order_load(order_id=order.order_id)
    types = list(
        StoredEvent.objects.filter(stream_id=order.order_id)
        .order_by("version")
        .values_list("event_type", flat=True)
    )
    assert len(types) == 2 and types[0] == PLACED
    if final.status == "cancelled":
        assert types[1] == "OrderCancelled" and results["pay"].status == "cancelled"
    else:
        assert final.status == "paid" and types[1] == "OrderPaid"
        assert results["cancel"].status_code == 409


@pytest.mark.django_db
def test_the_state_is_snapshotted_every_n_events_and_loads_from_it(settings, user_id, place):
    settings.STRANGLER_ORDERS_SNAPSHOT_EVERY = 2
    order = place(user_id)
    assert not Snapshot.objects.exists()

    order_payment_record(order_id=order.order_id, payment_id=str(uuid.uuid4()))

    snapshot = Snapshot.objects.get(stream_id=order.order_id)
    assert snapshot.version == 2 and snapshot.state["status"] == "paid"
    loaded = stream_load(stream_id=order.order_id, snapshot_state_version=snapshot.state_version)
    assert loaded.snapshot_version == 2 and loaded.events == []
    # The snapshot is what loads: change it and the state follows (proof it is not replayed).
    Snapshot.objects.filter(pk=order.order_id).update(state=snapshot.state | {"total": "1234.00"})
    assert order_load(order_id=order.order_id).total == "1234.00"


@pytest.mark.django_db
def test_a_snapshot_of_an_older_state_layout_is_ignored_and_the_stream_replayed(
    settings, user_id, place
):
    settings.STRANGLER_ORDERS_SNAPSHOT_EVERY = 1
    order = place(user_id)
    Snapshot.objects.filter(pk=order.order_id).update(state_version=0, state={"junk": True})

    assert order_load(order_id=order.order_id).status == "pending"


@pytest.mark.django_db
def test_v1_order_placed_events_load_in_v2_code_through_the_upcaster():
    """A v1 OrderPlaced (before the catalogue: `lines` of sku/qty/price, no currency)."""
    stream = uuid.uuid4()
    StoredEvent.objects.create(
        stream_id=stream,
        version=1,
        event_type=PLACED,
        schema_version=1,
        data={
            "user_id": 5,
            "lines": [{"sku": "OLD-1", "qty": 2, "price": "4.50"}],
            "total": "9.00",
        },
    )

    loaded = stream_load(stream_id=stream)
    state = fold(None, loaded.events)

    assert loaded.events[0].schema_version == 2
    assert isinstance(state, OrderState)
    assert state.currency == "EUR"
    assert state.items == [{"sku": "OLD-1", "quantity": 2, "unit_price": "4.50"}]
    assert events_read(after=0, limit=10)[0].data["items"][0]["quantity"] == 2
    # The stored row is history: it stays v1.
    assert StoredEvent.objects.get(stream_id=stream).schema_version == 1
