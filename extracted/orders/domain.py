"""The order aggregate: its events, how they fold into state, and the rules of each command.

Events (stored types, past tense; the data holds no time: `occurred_at` is the event's own):

| type             | data (newest schema version)                          | moves            |
|------------------|-------------------------------------------------------|------------------|
| `OrderPlaced`    | v2: user_id, currency, items [{sku, quantity,          | -> pending       |
|                  | unit_price}], total                                   |                  |
| `OrderImported`  | v1: user_id, status, currency, items, total,          | -> that status   |
|                  | created_at, source (a copy of another half's order)   |                  |
| `OrderPaid`      | v1: payment_id (or null)                              | pending -> paid  |
| `OrderCancelled` | v1: {}                                                | pending -> cancelled |
| `OrderShipped`   | v1: {}                                                | paid -> shipped  |
| `OrderRefunded`  | v1: payment_id (or null)                              | paid -> refunded |

State machine (the monolith's):

    pending ──▶ paid ──▶ shipped
       │          └────▶ refunded
       └──────▶ cancelled

`evolve` is pure: the write side folds a stream with it to decide, and the projections fold
the log with the very same function, so a read model cannot disagree with the aggregate.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_datetime

from service_kit.errors import InvalidTransition

from .eventstore import RecordedEvent, upcaster
from .models import OrderStatus

PLACED = "OrderPlaced"
IMPORTED = "OrderImported"
PAID = "OrderPaid"
CANCELLED = "OrderCancelled"
SHIPPED = "OrderShipped"
REFUNDED = "OrderRefunded"

TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}
EVENT_OF_STATUS = {
    OrderStatus.PAID: PAID,
    OrderStatus.CANCELLED: CANCELLED,
    OrderStatus.SHIPPED: SHIPPED,
    OrderStatus.REFUNDED: REFUNDED,
}
_STATUS_OF_EVENT = {event: status for status, event in EVENT_OF_STATUS.items()}

# The layout of OrderState as a snapshot stores it; bump it when the fields change.
STATE_VERSION = 1


def can_transition(current: str, target: str) -> bool:
    """Return whether an order in `current` may move to `target`."""
    return target in TRANSITIONS.get(current, frozenset())


def transition_path(current: str, target: str) -> list[str] | None:
    """Return the statuses that lead from `current` to `target` ([] if equal, None if none do)."""
    if current == target:
        return []
    for step in sorted(TRANSITIONS.get(current, frozenset())):
        rest = transition_path(step, target)
        if rest is not None:
            return [step, *rest]
    return None


def assert_transition(*, current: str, target: str) -> None:
    """Raise InvalidTransition (409) naming both states unless `current -> target` is legal."""
    if not can_transition(current, target):
        raise InvalidTransition("order", current, target)


@dataclass(frozen=True)
class OrderState:
    """An order as its events made it. `native`: placed through this service's API."""

    order_id: str
    user_id: int
    status: str
    total: str
    currency: str
    items: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    version: int = 0
    native: bool = False
    payment_id: str | None = None

    def as_snapshot(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> OrderState:
        return cls(**state)

    @property
    def created(self) -> datetime:
        return parse_datetime(self.created_at)

    @property
    def updated(self) -> datetime:
        return parse_datetime(self.updated_at)


def evolve(state: OrderState | None, event: RecordedEvent) -> OrderState:
    """Return the state after `event` (None before the stream's first event)."""
    data = event.data
    when = event.occurred_at.isoformat()
    if event.type == PLACED:
        return OrderState(
            order_id=str(event.stream_id),
            user_id=int(data["user_id"]),
            status=OrderStatus.PENDING,
            total=data["total"],
            currency=data["currency"],
            items=list(data["items"]),
            created_at=when,
            updated_at=when,
            version=event.version,
            native=True,
        )
    if event.type == IMPORTED:
        return OrderState(
            order_id=str(event.stream_id),
            user_id=int(data["user_id"]),
            status=data["status"],
            total=data["total"],
            currency=data["currency"],
            items=list(data["items"]),
            created_at=data["created_at"],
            updated_at=when,
            version=event.version,
            native=False,
        )
    if state is None:
        raise ValueError(
            f"{event.type} at version {event.version} of {event.stream_id} has no start"
        )
    status = _STATUS_OF_EVENT.get(event.type)
    if status is None:
        raise ValueError(f"Unknown order event type {event.type!r}.")
    payment_id = data.get("payment_id") or state.payment_id
    return replace(
        state, status=status, updated_at=when, version=event.version, payment_id=payment_id
    )


def fold(state: OrderState | None, events: list[RecordedEvent]) -> OrderState | None:
    """Return the state after every event of `events`, in order."""
    for event in events:
        state = evolve(state, event)
    return state


def placed_data(*, user_id: int, currency: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the data of `OrderPlaced` for priced `lines` (sku, quantity, unit_price Decimal)."""
    total = sum((line["unit_price"] * line["quantity"] for line in lines), Decimal(0))
    return {
        "user_id": user_id,
        "currency": currency,
        "items": [
            {
                "sku": line["sku"],
                "quantity": line["quantity"],
                "unit_price": money(line["unit_price"]),
            }
            for line in lines
        ],
        "total": money(total),
    }


def money(value: Decimal | str) -> str:
    """Return a decimal string with two places ("-0.00" never)."""
    return f"{Decimal(str(value)).quantize(Decimal('0.01')) + 0:.2f}"


def new_order_id() -> uuid.UUID:
    return uuid.uuid4()


# ---------------------------------------------------------------- upcasters
@upcaster(PLACED, 1)
def _placed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 (before the catalogue): `lines` of {sku, qty, price}, no currency (always EUR)."""
    return {
        "user_id": data["user_id"],
        "currency": "EUR",
        "items": [
            {"sku": line["sku"], "quantity": line["qty"], "unit_price": line["price"]}
            for line in data["lines"]
        ],
        "total": data["total"],
    }
