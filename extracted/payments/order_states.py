"""The order state machine as this service needs it (the orders owner's rules, by value).

pending ──▶ paid ──▶ shipped
   │          └────▶ refunded
   └──────▶ cancelled

The replica only ever moves forward along these arrows: an event or a fetched copy that would
move it back (a late `order.placed` after the service already marked the order paid) is ignored,
so the replica converges whatever order its sources arrive in.
"""

from __future__ import annotations

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
