"""The order state machine, walked through the services: every legal and illegal move."""

from __future__ import annotations

import itertools

import pytest
from django.db import transaction

from monolith.orders import services
from monolith.orders.models import OrderStatus
from service_kit.errors import InvalidTransition

pytestmark = pytest.mark.django_db

# Written out here, not read from states.py, so a change to the machine must change this test.
LEGAL = {
    ("pending", "paid"),
    ("pending", "cancelled"),
    ("paid", "shipped"),
    ("paid", "refunded"),
}
ALL_MOVES = list(itertools.product(OrderStatus.values, repeat=2))
ILLEGAL = [move for move in ALL_MOVES if move not in LEGAL]


def _move(order, target: str, user):
    """Ask the service that owns the move `target` to perform it."""
    if target == "paid":
        with transaction.atomic():
            return services.order_mark_paid(order=services.order_lock(order_id=order.id))
    if target == "refunded":
        with transaction.atomic():
            return services.order_mark_refunded(order=services.order_lock(order_id=order.id))
    if target == "cancelled":
        return services.order_cancel(order_id=order.id, user=user)
    if target == "shipped":
        return services.order_ship(order_id=order.id)
    with transaction.atomic():
        return services.order_transition(order=services.order_lock(order_id=order.id), to=target)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transition_changes_the_status(make_order, user, current, target):
    order = make_order(status=current)
    moved = _move(order, target, user)
    order.refresh_from_db()
    assert moved.status == order.status == target


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transition_is_refused_naming_both_states(make_order, user, current, target):
    order = make_order(status=current)
    with pytest.raises(InvalidTransition) as caught:
        _move(order, target, user)
    assert caught.value.detail == f"Cannot move order from '{current}' to '{target}'."
    assert caught.value.status_code == 409
    order.refresh_from_db()
    assert order.status == current


def test_the_full_happy_path_pending_paid_shipped(make_order, user):
    order = make_order()
    for target in ("paid", "shipped"):
        order = _move(order, target, user)
    order.refresh_from_db()
    assert order.status == "shipped"


@pytest.mark.django_db(transaction=True)
def test_order_transition_outside_a_transaction_is_a_programming_error(make_order):
    order = make_order()
    with pytest.raises(AssertionError, match="needs a transaction"):
        services.order_transition(order=order, to="paid")
