"""Two requests racing on one order: the row lock lets exactly one status change win."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from monolith.orders import services
from monolith.orders.models import Order
from service_kit.errors import InvalidTransition


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(5))
def test_cancel_racing_a_payment_leaves_exactly_one_winner(make_order, user, round_):
    order = make_order()
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def pay():
        try:
            barrier.wait()
            with transaction.atomic():
                services.order_mark_paid(order=services.order_lock(order_id=order.id))
            outcomes["pay"] = "won"
        except InvalidTransition:
            outcomes["pay"] = "refused"
        finally:
            connection.close()

    def cancel():
        try:
            barrier.wait()
            services.order_cancel(order_id=order.id, user=user)
            outcomes["cancel"] = "won"
        except InvalidTransition:
            outcomes["cancel"] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=pay), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["refused", "won"], outcomes
    final = Order.objects.get(pk=order.pk).status
    assert final == ("paid" if outcomes["pay"] == "won" else "cancelled")
