"""Races between real threads on real PostgreSQL: one order is paid exactly once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from monolith.orders.models import Order
from monolith.payments.models import IdempotencyRecord, Payment
from monolith.payments.provider import TIMEOUT_CARD

pytestmark = pytest.mark.django_db(transaction=True)


def _race(requests, timeout: float = 30) -> list:
    """Run the callables at the same instant, each in its own thread and DB connection."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(index, request):
        try:
            barrier.wait()
            results[index] = request()
        except Exception as exc:  # surfaced by the assertions, never swallowed
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return results


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_payments_of_one_order_exactly_one_wins(
    settings, make_user, client_for, make_order, pay, provider, round_
):
    # Latency keeps the first charge in flight while the second arrives.
    settings.STRANGLER_PAYMENT_LATENCY_MS = 100
    user = make_user()
    order = make_order(user)
    clients = [client_for(user), client_for(user)]
    keys = [f"a{round_}", f"b{round_}"]

    responses = _race(
        [lambda c=c, k=k: pay(c, order.id, key=k) for c, k in zip(clients, keys, strict=True)]
    )

    assert sorted(r.status_code for r in responses) == [201, 409], responses
    loser = next(r for r in responses if r.status_code == 409)
    assert (loser.json()["from"], loser.json()["to"]) == ("paid", "paid")
    assert "is 'paid', not 'pending'" in loser.json()["detail"]
    assert Payment.objects.filter(order=order, status="succeeded").count() == 1
    assert Payment.objects.count() == 1
    assert len(provider.charges) == 1
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_concurrent_payments_of_different_orders_do_not_wait_for_each_other(
    settings, make_user, client_for, make_order, pay, provider
):
    settings.STRANGLER_PAYMENT_LATENCY_MS = 400
    user = make_user()
    orders = [make_order(user), make_order(user)]
    clients = [client_for(user), client_for(user)]
    started = time.monotonic()

    responses = _race([lambda c=c, o=o: pay(c, o.id) for c, o in zip(clients, orders, strict=True)])

    assert [r.status_code for r in responses] == [201, 201]
    # Serialised, two 400 ms charges would take 800 ms; in parallel about 400 ms.
    assert time.monotonic() - started < 0.75


def test_a_waiting_retry_goes_ahead_when_the_first_attempt_timed_out(
    settings, make_user, client_for, make_order, pay, provider
):
    # Both requests use the timeout card: the first holds the key for the timeout, rolls back,
    # and the second, having waited, makes its own attempt instead of replaying nothing.
    settings.STRANGLER_PAYMENT_LATENCY_MS = 1
    settings.STRANGLER_PAYMENT_TIMEOUT_S = 0.2
    user = make_user()
    order = make_order(user)
    clients = [client_for(user), client_for(user)]

    responses = _race([lambda c=c: pay(c, order.id, card=TIMEOUT_CARD, key="k") for c in clients])

    assert [r.status_code for r in responses] == [504, 504]
    assert len(provider.charges) == 2
    assert not IdempotencyRecord.objects.exists()
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_concurrent_requests_with_one_key_charge_once_and_both_get_the_answer(
    settings, make_user, client_for, make_order, pay, provider
):
    settings.STRANGLER_PAYMENT_LATENCY_MS = 100
    user = make_user()
    order = make_order(user)
    clients = [client_for(user) for _ in range(3)]

    responses = _race([lambda c=c: pay(c, order.id, key="same") for c in clients])

    assert [r.status_code for r in responses] == [201, 201, 201], responses
    assert len({r.content for r in responses}) == 1
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == 2
    assert Payment.objects.count() == 1
    assert len(provider.charges) == 1


def test_concurrent_refunds_of_one_payment_refund_once(
    make_user, client_for, make_order, pay, provider, settings
):
    user = make_user()
    order = make_order(user)
    payment_id = pay(client_for(user), order.id).json()["id"]
    settings.STRANGLER_PAYMENT_LATENCY_MS = 100
    clients = [client_for(user), client_for(user)]

    responses = _race([lambda c=c: c.post(f"/api/payments/{payment_id}/refund/") for c in clients])

    assert sorted(r.status_code for r in responses) == [200, 409], responses
    assert len(provider.refunds) == 1
    assert Order.objects.get(pk=order.pk).status == "refunded"
