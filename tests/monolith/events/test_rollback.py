"""An event exists if and only if its change committed: rolled back together, never alone."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection, transaction

from monolith.orders.models import Order
from monolith.orders.services import order_create
from monolith.payments.models import Payment
from monolith.users.models import User
from monolith.users.services import user_register
from outbox.errors import PayloadInvalid
from outbox.models import OutboxEvent

from .conftest import ITEMS, SUCCEED_CARD, events, types


class LaterFailure(Exception):
    pass


@pytest.mark.django_db
def test_an_order_rolled_back_by_a_later_error_leaves_no_event(user):
    with pytest.raises(LaterFailure), transaction.atomic():
        order_create(user=user, items=ITEMS)
        raise LaterFailure

    assert Order.objects.count() == 0
    assert events() == []


@pytest.mark.django_db
def test_a_registration_rolled_back_by_a_later_error_leaves_no_event():
    with pytest.raises(LaterFailure), transaction.atomic():
        user_register(email="gone@example.com", password="s3cret-Passw0rd")
        raise LaterFailure

    assert not User.objects.filter(email="gone@example.com").exists()
    assert events() == []


@pytest.mark.django_db
def test_an_event_the_writer_refuses_rolls_the_change_back_with_it(user):
    # The payload drifting from its schema must fail the request, not publish a bad event.
    with (
        mock.patch("monolith.events._money", return_value="25"),
        pytest.raises(PayloadInvalid),
    ):
        order_create(user=user, items=ITEMS)

    assert Order.objects.count() == 0
    assert events() == []


@pytest.mark.django_db(transaction=True)
def test_the_loser_of_a_payment_race_writes_no_event(settings, make_user, provider):
    settings.STRANGLER_PAYMENT_LATENCY_MS = 100  # keep the winner's charge in flight
    user = make_user()
    order = order_create(user=user, items=ITEMS)
    from monolith.payments.services import payment_create

    barrier = threading.Barrier(2)
    results: list = [None, None]

    def pay(index: int) -> None:
        try:
            barrier.wait()
            results[index] = payment_create(
                user=user, order_id=order.pk, card_number=SUCCEED_CARD,
                idempotency_key=f"race-{index}", request_fingerprint=f"fp-{index}",
            )  # fmt: skip
        except Exception as exc:  # the 409 of the loser, checked below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    outcomes = sorted(type(r).__name__ for r in results)
    assert outcomes == ["OrderNotPending", "PaymentAttempt"], results
    winner = Payment.objects.get()
    assert types(events("order", order.pk)) == ["order.placed", "order.paid"]
    assert types(events("payment")) == ["payment.succeeded"]
    assert events("payment")[0].aggregate_id == str(winner.pk)
    assert OutboxEvent.objects.count() == 3
