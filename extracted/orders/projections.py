"""Keep the read models (OrderView, StatusCount) from the event log, and rebuild them at will.

Two ways in, one fold (`domain.evolve`):

* **Inline**, for read-your-writes: every write updates the serving generation in its own
  transaction (`view_write`), so the answer to a POST is read back from the read model and a
  GET right after it sees the change. The serving generation is therefore always at the log's
  head; its position is the head's.
* **From the log**, for a rebuild: `projection_rebuild` fills a new generation from position 0
  in batches, each batch and its position committed together (kill it, run it again: it goes
  on from where it stopped), while the old generation keeps serving and keeps being updated
  inline. Once it has caught up, it takes the store's swap lock exclusively (no writer in
  flight, none can start), applies the last events, makes the new generation the serving one,
  and lets writers go on, now into the new generation. Then the old generation's rows go.

The position a rebuild has reached is `ProjectionState.building_position`; the log's positions
commit in order (see eventstore), so "every event up to n" is exact.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from .domain import OrderState, evolve
from .eventstore import (
    RecordedEvent,
    StreamVersionConflict,
    events_read,
    head_position,
    swap_lock_exclusive,
)
from .models import OrderView, ProjectionState, StatusCount

PROJECTION = "orders"
_DROP_BATCH = 5000


def projection_state() -> ProjectionState:
    """Return the projection's state row, creating it (generation 1) on first use."""
    state = ProjectionState.objects.filter(name=PROJECTION).first()
    if state is None:
        ProjectionState.objects.bulk_create(
            [ProjectionState(name=PROJECTION)], ignore_conflicts=True
        )
        state = ProjectionState.objects.get(name=PROJECTION)
    return state


def active_generation() -> int:
    """Return the generation of the read models that serves reads now."""
    return projection_state().active_generation


# ---------------------------------------------------------------- inline
def _row_fields(state: OrderState) -> dict:
    return {
        "user_id": state.user_id,
        "status": state.status,
        "total": Decimal(state.total),
        "currency": state.currency,
        "items": state.items,
        "created_at": parse_datetime(state.created_at),
        "updated_at": parse_datetime(state.updated_at),
        "version": state.version,
    }


def view_write(*, before: OrderState | None, after: OrderState, generation: int) -> None:
    """Make the serving row of the order equal `after`; raise StreamVersionConflict on a race.

    The row is changed only if it still shows `before`'s version: a writer that lost the race
    waits on the row lock, finds a newer version and re-decides (see services). The status
    counts are not touched here: `counts_move` does it as late as possible in the transaction,
    since every writer shares those few rows.
    """
    order_id = uuid.UUID(after.order_id)
    fields = _row_fields(after)
    if before is None:
        try:
            with transaction.atomic():
                OrderView.objects.create(generation=generation, order_id=order_id, **fields)
        except IntegrityError as exc:
            raise StreamVersionConflict(stream_id=order_id, expected=0) from exc
    else:
        changed = OrderView.objects.filter(
            generation=generation, order_id=order_id, version=before.version
        ).update(**fields)
        if not changed:
            raise StreamVersionConflict(stream_id=order_id, expected=before.version)


def counts_move(*, before: OrderState | None, after: OrderState, generation: int) -> None:
    """Move one order from `before`'s status count to `after`'s."""
    if before is None or before.status != after.status:
        deltas = Counter({after.status: 1})
        if before is not None:
            deltas[before.status] -= 1
        counts_add(generation=generation, deltas=deltas)


def counts_add(*, generation: int, deltas: Counter) -> None:
    """Add `deltas` (status -> change) to the generation's counts, rows locked in status order."""
    for status in sorted(deltas):
        delta = deltas[status]
        if not delta:
            continue
        rows = StatusCount.objects.filter(generation=generation, status=status)
        if not rows.update(count=F("count") + delta):
            StatusCount.objects.bulk_create(
                [StatusCount(generation=generation, status=status)], ignore_conflicts=True
            )
            rows.update(count=F("count") + delta)


# ---------------------------------------------------------------- from the log
def _state_of_row(row: OrderView) -> OrderState:
    return OrderState(
        order_id=str(row.order_id),
        user_id=row.user_id,
        status=row.status,
        total=f"{row.total:.2f}",
        currency=row.currency,
        items=row.items,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
        version=row.version,
    )


def events_project(*, events: list[RecordedEvent], generation: int) -> int:
    """Fold `events` (in log order) into `generation`'s rows; return how many changed a row.

    Idempotent: an event at or below a row's version is skipped, so a batch applied twice
    changes nothing.
    """
    ids = {event.stream_id for event in events}
    rows = OrderView.objects.filter(generation=generation, order_id__in=ids)
    states: dict[uuid.UUID, OrderState] = {row.order_id: _state_of_row(row) for row in rows}
    deltas: Counter = Counter()
    changed: set[uuid.UUID] = set()
    for event in events:
        before = states.get(event.stream_id)
        if before is not None and event.version <= before.version:
            continue
        after = evolve(before, event)
        states[event.stream_id] = after
        changed.add(event.stream_id)
        if before is None or before.status != after.status:
            deltas[after.status] += 1
            if before is not None:
                deltas[before.status] -= 1
    if changed:
        OrderView.objects.bulk_create(
            [
                OrderView(generation=generation, order_id=order_id, **_row_fields(states[order_id]))
                for order_id in changed
            ],
            update_conflicts=True,
            unique_fields=["generation", "order_id"],
            update_fields=list(_row_fields(next(iter(states.values())))),
        )
    counts_add(generation=generation, deltas=deltas)
    return len(changed)


@dataclass
class RebuildResult:
    generation: int
    previous_generation: int
    events: int
    orders: int
    resumed_from: int


def _catch_up(
    *, state: ProjectionState, batch: int, bar: tqdm | None, after_batch: Callable | None
) -> tuple[int, int]:
    """Apply the log after the build's position, a batch per transaction; return the counts.

    Stops at the head seen when it started: writes keep coming, and the tail they add is
    applied under the swap lock, where nothing can be added any more.
    """
    events_done = orders = 0
    until = head_position()
    while state.building_position < until:
        events = events_read(after=state.building_position, limit=batch)
        if not events:
            break
        with transaction.atomic():
            orders += events_project(events=events, generation=state.building_generation)
            state.building_position = events[-1].position
            state.save(update_fields=["building_position"])
        events_done += len(events)
        if bar is not None:
            bar.total = max(bar.total or 0, state.building_position)
            bar.update(state.building_position - bar.n)
        if after_batch is not None:
            after_batch(state.building_position)
    return events_done, orders


def projection_rebuild(
    *,
    batch: int = 1000,
    progress: bool = True,
    restart: bool = False,
    after_batch: Callable[[int], None] | None = None,
) -> RebuildResult:
    """Build a new generation of the read models from position 0, then swap it in.

    Resumes a build in progress unless `restart`. `after_batch(position)` runs after each
    committed batch (tests interrupt or write there).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}.")
    state = projection_state()
    if state.building_generation is None or restart:
        generation = max(state.active_generation, state.building_generation or 0) + 1
        _generation_drop(generation)
        state.building_generation = generation
        state.building_position = 0
        state.save(update_fields=["building_generation", "building_position"])
    resumed_from = state.building_position
    with tqdm(
        total=head_position(),
        initial=resumed_from,
        desc=f"rebuild orders read models (generation {state.building_generation})",
        unit="pos",
        disable=not progress,
    ) as bar:
        events, orders = _catch_up(state=state, batch=batch, bar=bar, after_batch=after_batch)
        with transaction.atomic():
            swap_lock_exclusive()
            state.refresh_from_db()
            more_events, more_orders = _catch_up(
                state=state, batch=batch, bar=bar, after_batch=None
            )
            previous = state.active_generation
            state.active_generation = state.building_generation
            state.building_generation = None
            state.swapped_at = timezone.now()
            state.save()
    _generation_drop(previous)
    return RebuildResult(
        generation=state.active_generation,
        previous_generation=previous,
        events=events + more_events,
        orders=orders + more_orders,
        resumed_from=resumed_from,
    )


def _generation_drop(generation: int) -> None:
    """Delete every row of `generation`, a batch per statement (it no longer serves)."""
    while True:
        ids = list(
            OrderView.objects.filter(generation=generation).values_list("id", flat=True)[
                :_DROP_BATCH
            ]
        )
        if not ids:
            break
        OrderView.objects.filter(id__in=ids).delete()
    StatusCount.objects.filter(generation=generation).delete()
