"""Read models: rebuilt from position 0 into a new generation while the old one serves, swapped."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command

from extracted.orders.models import OrderView, ProjectionState, StatusCount, StoredEvent
from extracted.orders.projections import active_generation, projection_rebuild
from extracted.orders.selectors import order_status_counts
from extracted.orders.services import order_cancel, order_payment_record

pytestmark = pytest.mark.django_db(transaction=True)


def _views(generation: int) -> dict[str, tuple]:
    return {
        str(v.order_id): (v.user_id, v.status, v.total, v.items, v.created_at, v.updated_at)
        for v in OrderView.objects.filter(generation=generation)
    }


class Killed(Exception):
    """Stands for SIGKILL between two batches: nothing after the last commit survives."""


def test_a_rebuild_from_position_zero_equals_the_inline_read_models(user_id, place):
    orders = [place(user_id + n % 3, items=[("BOOK-1", n + 1)]) for n in range(12)]
    order_cancel(order_id=orders[0].order_id, user_id=orders[0].user_id)
    order_payment_record(order_id=orders[1].order_id, payment_id=str(uuid.uuid4()))
    before, counts = _views(active_generation()), order_status_counts()

    result = projection_rebuild(batch=5, progress=False)

    assert (result.previous_generation, result.generation) == (1, 2)
    assert result.events == 14
    assert _views(2) == before
    assert order_status_counts() == counts == {
        "pending": 10, "paid": 1, "shipped": 0, "cancelled": 1, "refunded": 0,
    }  # fmt: skip
    assert not OrderView.objects.filter(generation=1).exists()
    assert not StatusCount.objects.filter(generation=1).exists()


def test_the_old_generation_serves_during_a_rebuild_and_writes_made_then_are_not_lost(
    client_for, user_id, place
):
    client = client_for(user_id)
    first = [place(user_id) for _ in range(6)]
    seen_during: list[int] = []
    written_during: list[str] = []

    def meanwhile(position: int) -> None:
        # The old generation answers, and a write lands in it (and in the log) mid-build.
        seen_during.append(client.get("/api/orders/").json()["count"])
        written_during.append(place(user_id).order_id)
        if len(written_during) == 1:
            client.post(f"/api/orders/{first[0].order_id}/cancel/")

    projection_rebuild(batch=2, progress=False, after_batch=meanwhile)

    assert seen_during[0] == 6 and seen_during == sorted(seen_during)
    listed = client.get("/api/orders/?page_size=100").json()
    assert listed["count"] == 6 + len(written_during)
    assert {o["id"] for o in listed["results"]} >= set(written_during)
    assert client.get(f"/api/orders/{first[0].order_id}/").json()["status"] == "cancelled"
    assert active_generation() == 2


def test_a_killed_rebuild_resumes_from_its_position_and_counts_nothing_twice(user_id, place):
    for _ in range(9):
        place(user_id)
    sixth = StoredEvent.objects.order_by("id").values_list("id", flat=True)[5]
    batches: list[int] = []

    def kill_after_two_batches(position: int) -> None:
        batches.append(position)
        if len(batches) == 2:
            raise Killed

    with pytest.raises(Killed):
        projection_rebuild(batch=3, progress=False, after_batch=kill_after_two_batches)
    state = ProjectionState.objects.get()
    assert (state.active_generation, state.building_generation) == (1, 2)
    assert state.building_position == sixth
    assert OrderView.objects.filter(generation=2).count() == 6

    result = projection_rebuild(batch=3, progress=False)

    assert result.resumed_from == sixth and result.events == 3
    assert order_status_counts()["pending"] == 9
    assert OrderView.objects.filter(generation=2).count() == 9


def test_the_rebuild_command_shows_progress_and_swaps(user_id, place, capsys):
    for _ in range(3):
        place(user_id)

    call_command("orders_projection_rebuild", "--batch", "2")

    captured = capsys.readouterr()
    assert "rebuilt generation 2 from 3 events" in captured.out
    assert "rebuild orders read models" in captured.err  # the progress bar
    assert active_generation() == 2
