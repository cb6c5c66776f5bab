"""Order commands: load the stream, decide, then project, announce and append in one transaction.

Every command runs `_execute`: inside `store_transaction()` it loads the order (snapshot plus
later events), asks a `decide` function for the new events (or a domain error), folds them
into the new state, updates the serving read model (read-your-writes), writes the outbox rows
the change announces, and appends the events at the version it decided on. Losing a version
race to a concurrent writer (`StreamVersionConflict`, from the read model's row or the
store's unique key) rolls the attempt back and decides again on the fresh state, at most
STRANGLER_ORDERS_CONFLICT_RETRIES times: so of two concurrent cancels one wins, and the
other is re-decided on a cancelled order and gets the monolith's 409 invalid_transition. If
the races never stop, the 409 is `concurrent_update`.

What is announced (outbox, same types as the monolith's):

| command                       | appends               | announces                    |
|-------------------------------|-----------------------|------------------------------|
| `order_place`                 | OrderPlaced           | order.placed                 |
| `order_cancel`, `order_ship`  | OrderCancelled/Shipped| order.cancelled/shipped      |
| `order_payment_record`        | OrderPaid             | order.paid, only for orders  |
|                               |                       | placed here (the monolith    |
|                               |                       | announces its own orders')   |
| `order_refund_record`         | OrderRefunded         | nothing: payment.refunded is |
|                               |                       | the announcement             |
| `order_mirror`, backfill      | OrderImported + moves | nothing: the monolith's news |
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone

from outbox.context import current_ids
from service_kit.errors import Conflict, DomainError, NotFound

from . import events as announcements
from .domain import (
    CANCELLED,
    EVENT_OF_STATUS,
    IMPORTED,
    PLACED,
    SHIPPED,
    STATE_VERSION,
    OrderState,
    assert_transition,
    can_transition,
    fold,
    money,
    placed_data,
    transition_path,
)
from .eventstore import (
    NewEvent,
    RecordedEvent,
    StreamVersionConflict,
    events_append,
    snapshot_save,
    store_transaction,
    stream_load,
)
from .models import OrderStatus, Product
from .projections import active_generation, counts_move, view_write

logger = logging.getLogger(__name__)

CURRENCY = "EUR"
# OrderView.total is NUMERIC(12, 2): a bigger sum is refused, never truncated.
MAX_ORDER_TOTAL = Decimal("9999999999.99")


class OrderUnknown(DomainError):
    """An event names an order this service has not heard of (yet): retried by the consumer."""


@dataclass
class Decision:
    """What a command decided: the events to append and whether each is announced."""

    events: list[NewEvent] = field(default_factory=list)
    announce: bool = True


Decide = Callable[[OrderState | None], Decision]


def _order_id(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError, DjangoValidationError):
        raise NotFound(f"Order {value} does not exist.") from None


def order_load(*, order_id: uuid.UUID) -> OrderState | None:
    """Return the order's current state from its snapshot and events (None if it has none)."""
    stream = stream_load(stream_id=order_id, snapshot_state_version=STATE_VERSION)
    start = OrderState.from_snapshot(stream.snapshot_state) if stream.snapshot_state else None
    return fold(start, stream.events)


def _execute(*, order_id: uuid.UUID, decide: Decide, source: str) -> OrderState | None:
    """Run one command with optimistic concurrency (see the module docstring)."""
    retries = max(0, settings.STRANGLER_ORDERS_CONFLICT_RETRIES)
    for attempt in range(retries + 1):
        try:
            with store_transaction():
                return _attempt(order_id=order_id, decide=decide, source=source)
        except StreamVersionConflict as exc:
            logger.info("order %s: lost a version race (attempt %d): %s", order_id, attempt, exc)
    raise Conflict(
        f"Order {order_id} kept changing while this request was decided; read it and retry.",
        code="concurrent_update",
    )


def _attempt(*, order_id: uuid.UUID, decide: Decide, source: str) -> OrderState | None:
    generation = active_generation()
    before = order_load(order_id=order_id)
    decision = decide(before)
    if not decision.events:
        return before
    now = timezone.now()
    version = before.version if before else 0
    pending = [
        RecordedEvent(
            position=0,
            stream_id=order_id,
            version=version + offset,
            type=event.type,
            schema_version=0,
            data=event.data,
            metadata={},
            occurred_at=event.occurred_at or now,
        )
        for offset, event in enumerate(decision.events, start=1)
    ]
    after = fold(before, pending)
    view_write(before=before, after=after, generation=generation)
    if decision.announce:
        for event in decision.events:
            publish = announcements.PUBLISHERS.get(event.type)
            if publish is not None:
                publish(state=after)
    # The shared count rows last but one: they are locked from here to the commit.
    counts_move(before=before, after=after, generation=generation)
    correlation_id, causation_id = current_ids()
    events_append(
        stream_id=order_id,
        expected_version=version,
        events=[
            NewEvent(type=e.type, data=e.data, occurred_at=p.occurred_at)
            for e, p in zip(decision.events, pending, strict=True)
        ],
        metadata={
            "source": source,
            "correlation_id": correlation_id or "",
            "causation_id": causation_id or "",
        },
    )
    every = settings.STRANGLER_ORDERS_SNAPSHOT_EVERY
    if every > 0 and after.version // every > version // every:
        snapshot_save(
            stream_id=order_id,
            version=after.version,
            state_version=STATE_VERSION,
            state=after.as_snapshot(),
        )
    return after


# ---------------------------------------------------------------- API commands
def order_price(*, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the lines priced from the catalogue; an unknown sku is a 400 naming its line."""
    skus = {item["sku"] for item in items}
    products = Product.objects.in_bulk(skus, field_name="sku")
    unknown = {
        str(index): {"sku": [f"Unknown sku '{item['sku']}'."]}
        for index, item in enumerate(items)
        if item["sku"] not in products
    }
    if unknown:
        # The monolith's words and shape (orders.services.order_lines_priced), to the letter.
        first = next(iter(unknown.values()))["sku"][0]
        raise DomainError(
            f"{first} Products are listed at /api/products/.",
            code="validation_error",
            fields={"items": unknown},
        )
    return [
        {
            "sku": item["sku"],
            "quantity": int(item["quantity"]),
            "unit_price": products[item["sku"]].unit_price,
        }
        for item in items
    ]


def order_place(*, user_id: int, items: Sequence[Mapping[str, Any]]) -> OrderState:
    """Place a pending order for `user_id`; prices come from the catalogue, never the client."""
    if not items:
        raise DomainError(
            "An order needs at least one item.",
            code="validation_error",
            fields={"items": ["This list may not be empty."]},
        )
    lines = order_price(items=items)
    data = placed_data(user_id=user_id, currency=CURRENCY, lines=lines)
    if Decimal(data["total"]) > MAX_ORDER_TOTAL:
        message = f"The order total {data['total']} exceeds the maximum of {MAX_ORDER_TOTAL}."
        raise DomainError(message, code="validation_error", fields={"items": [message]})

    def decide(state: OrderState | None) -> Decision:
        if state is not None:  # a fresh uuid never exists; refuse rather than overwrite
            raise Conflict(f"Order {state.order_id} already exists.")
        return Decision([NewEvent(PLACED, data)])

    return _execute(order_id=uuid.uuid4(), decide=decide, source="api")


def _owned(state: OrderState | None, *, order_id, user_id: int | None) -> OrderState:
    """Return `state` if it exists (and is `user_id`'s, when given); else the 404 of the API."""
    if state is None or (user_id is not None and state.user_id != user_id):
        raise NotFound(f"Order {order_id} does not exist.")
    return state


def order_cancel(*, order_id: uuid.UUID | str, user_id: int) -> OrderState:
    """Cancel `user_id`'s own pending order; someone else's order does not exist for them."""
    stream_id = _order_id(order_id)

    def decide(state: OrderState | None) -> Decision:
        current = _owned(state, order_id=order_id, user_id=user_id)
        assert_transition(current=current.status, target=OrderStatus.CANCELLED)
        return Decision([NewEvent(CANCELLED, {})])

    return _execute(order_id=stream_id, decide=decide, source="api")


def order_ship(*, order_id: uuid.UUID | str) -> OrderState:
    """Mark a paid order as shipped (staff: the view checks who may)."""
    stream_id = _order_id(order_id)

    def decide(state: OrderState | None) -> Decision:
        current = _owned(state, order_id=order_id, user_id=None)
        assert_transition(current=current.status, target=OrderStatus.SHIPPED)
        return Decision([NewEvent(SHIPPED, {})])

    return _execute(order_id=stream_id, decide=decide, source="api")


# ---------------------------------------------------------------- payment outcomes (events)
def _payment_move(
    *, order_id: uuid.UUID | str, target: str, payment_id: str | None, at: datetime | None
) -> OrderState:
    stream_id = _order_id(order_id)

    def decide(state: OrderState | None) -> Decision:
        if state is None:
            raise OrderUnknown(f"Order {order_id} is not known here yet.")
        if state.status == target:
            return Decision()
        if not can_transition(state.status, target):
            # Two halves, one race (cancelled here while paid there): keep ours, say so.
            logger.warning(
                "order %s is %r and cannot become %r; left as is", order_id, state.status, target
            )
            return Decision()
        event = NewEvent(EVENT_OF_STATUS[target], {"payment_id": payment_id}, occurred_at=at)
        # order.paid is news only for an order placed here; refunds travel as payment.refunded.
        return Decision([event], announce=state.native and target == OrderStatus.PAID)

    return _execute(order_id=stream_id, decide=decide, source="payment")


def order_payment_record(
    *, order_id: uuid.UUID | str, payment_id: str, at: datetime | None = None
) -> OrderState:
    """Record that a payment of the order succeeded: pending -> paid."""
    return _payment_move(order_id=order_id, target=OrderStatus.PAID, payment_id=payment_id, at=at)


def order_refund_record(
    *, order_id: uuid.UUID | str, payment_id: str, at: datetime | None = None
) -> OrderState:
    """Record that the order's payment was refunded: paid -> refunded."""
    return _payment_move(
        order_id=order_id, target=OrderStatus.REFUNDED, payment_id=payment_id, at=at
    )


# ---------------------------------------------------------------- copies of the monolith's orders
def imported_data(
    *,
    user_id: int,
    status: str,
    currency: str,
    items: Sequence[Mapping[str, Any]],
    total: Decimal | str,
    created_at: datetime | str,
    source: str,
) -> dict[str, Any]:
    """Return the data of `OrderImported`: the order as another half holds it."""
    created = created_at if isinstance(created_at, str) else created_at.isoformat()
    return {
        "user_id": int(user_id),
        "status": status,
        "currency": currency,
        "items": [
            {
                "sku": item["sku"],
                "quantity": int(item["quantity"]),
                "unit_price": money(item["unit_price"]),
            }
            for item in items
        ],
        "total": money(total),
        "created_at": created,
        "source": source,
    }


def order_mirror(
    *,
    order_id: uuid.UUID | str,
    status: str,
    at: datetime | None,
    placed: dict[str, Any] | None = None,
    history: Sequence[tuple[str, datetime | None, str | None]] = (),
    source: str = "monolith",
) -> OrderState | None:
    """Bring the service's copy of a monolith order forward to `status`; announce nothing.

    Unknown order: it starts with `OrderImported` from `placed` (as it was when placed,
    status pending) followed by `history` ((status, when, payment id) moves the monolith knows)
    up to `status`. Known order: moved forward to `status` if the state machine allows it
    along the state machine's arrows (same status: nothing; a move back or sideways: kept as
    is and logged).
    """
    stream_id = _order_id(order_id)

    def decide(state: OrderState | None) -> Decision:
        if state is None:
            if placed is None:
                raise OrderUnknown(f"Order {order_id} is not known here yet.")
            first = NewEvent(IMPORTED, placed, occurred_at=placed_at(placed))
            moves = [
                NewEvent(EVENT_OF_STATUS[move], _payment_data(move, payment_id), occurred_at=when)
                for move, when, payment_id in history
            ]
            return Decision([first, *moves], announce=False)
        path = transition_path(state.status, status)
        if path is None:
            logger.warning(
                "order %s stays %r: %s reported %r", order_id, state.status, source, status
            )
            return Decision(announce=False)
        moves = [
            NewEvent(EVENT_OF_STATUS[step], _payment_data(step, None), occurred_at=at)
            for step in path
        ]
        return Decision(moves, announce=False)

    return _execute(order_id=stream_id, decide=decide, source=source)


def placed_at(data: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))


def _payment_data(status: str, payment_id: str | None) -> dict[str, Any]:
    if status in (OrderStatus.PAID, OrderStatus.REFUNDED):
        return {"payment_id": payment_id}
    return {}
