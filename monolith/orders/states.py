"""The order state machine: which status may follow which.

pending ──▶ paid ──▶ shipped
   │          └────▶ refunded
   └──────▶ cancelled
"""

from __future__ import annotations

from service_kit.errors import InvalidTransition

from .models import OrderStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    """Return whether an order in `current` may move to `target`."""
    return target in TRANSITIONS.get(current, frozenset())


def assert_transition(*, current: str, target: str) -> None:
    """Raise InvalidTransition (409) naming both states unless `current -> target` is legal."""
    if not can_transition(current, target):
        raise InvalidTransition("order", current, target)
