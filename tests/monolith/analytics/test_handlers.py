"""The analytics subscriber: daily totals per status, each event counted exactly once."""

from __future__ import annotations

import dataclasses
import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from monolith.analytics.models import DailyStatusTotal
from monolith.analytics.services import daily_total_add
from outbox.inbox import Outcome, event_apply
from outbox.registry import registry
from tests.monolith.events.builders import DECLINE_CARD, envelopes, pay, place, refund, ship

CONSUMER = "analytics"


def consume(envelope) -> Outcome:
    return event_apply(
        consumer=CONSUMER,
        envelope=envelope,
        subscriptions=registry.matching(CONSUMER, envelope.type),
    )


def totals() -> dict[tuple[str, str, str], tuple[int, Decimal]]:
    return {
        (r.aggregate_type, r.status, r.currency): (r.count, r.amount)
        for r in DailyStatusTotal.objects.all()
    }


@pytest.mark.django_db
def test_place_pay_refund_moves_each_status_total_once(user):
    refund(user, pay(user, place(user)))

    for envelope in envelopes():
        assert consume(envelope) == Outcome.APPLIED

    money = Decimal("25.00")
    assert totals() == {
        ("order", "pending", "EUR"): (1, money),
        ("order", "paid", "EUR"): (1, money),
        ("order", "refunded", "EUR"): (1, money),
        ("payment", "succeeded", "EUR"): (1, money),
        ("payment", "refunded", "EUR"): (1, money),
    }
    assert {r.day for r in DailyStatusTotal.objects.all()} == {
        date.fromisoformat(envelopes()[0].occurred_at[:10])
    }


@pytest.mark.django_db
def test_place_pay_ship_counts_the_order_shipped_once(user):
    ship(pay(user, place(user)).order)

    for envelope in envelopes():
        assert consume(envelope) == Outcome.APPLIED

    money = Decimal("25.00")
    assert totals() == {
        ("order", "pending", "EUR"): (1, money),
        ("order", "paid", "EUR"): (1, money),
        ("order", "shipped", "EUR"): (1, money),
        ("payment", "succeeded", "EUR"): (1, money),
    }


@pytest.mark.django_db
def test_a_redelivered_event_is_counted_once(user):
    place(user)
    [placed] = envelopes("order.placed")

    assert consume(placed) == Outcome.APPLIED
    assert consume(placed) == Outcome.DUPLICATE
    assert consume(placed) == Outcome.DUPLICATE

    assert totals() == {("order", "pending", "EUR"): (1, Decimal("25.00"))}


@pytest.mark.django_db
def test_totals_add_up_across_orders_and_declines(user, make_user):
    place(user, items=[{"sku": "A", "quantity": 1, "unit_price": "10.00"}])
    pay(user, place(user, items=[{"sku": "B", "quantity": 3, "unit_price": "1.10"}]), DECLINE_CARD)
    place(make_user(), items=[{"sku": "C", "quantity": 1, "unit_price": "0.01"}])

    for envelope in envelopes():
        consume(envelope)

    assert totals() == {
        ("order", "pending", "EUR"): (3, Decimal("13.31")),
        ("payment", "failed", "EUR"): (1, Decimal("3.30")),
    }


@pytest.mark.django_db
def test_an_event_counts_on_the_utc_day_it_occurred_and_in_its_own_currency(user):
    place(user)
    [placed] = envelopes("order.placed")
    late = dataclasses.replace(
        placed,
        id="00000000-0000-4000-8000-000000000001",
        aggregate_id="00000000-0000-4000-8000-000000000002",
        occurred_at="2026-03-01T23:59:59.500000+00:00",
        payload=placed.payload | {"currency": "USD"},
    )

    consume(placed)
    consume(late)

    late_row = DailyStatusTotal.objects.get(currency="USD")
    assert (late_row.day, late_row.count) == (date(2026, 3, 1), 1)
    assert DailyStatusTotal.objects.get(currency="EUR").count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_counting_of_one_day_loses_no_increment():
    per_thread, threads = 15, 4
    barrier = threading.Barrier(threads)

    def add() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                daily_total_add(
                    day=date(2026, 1, 1), aggregate_type="order", status="paid",
                    currency="EUR", amount=Decimal("1.50"),
                )  # fmt: skip
        finally:
            connection.close()

    workers = [threading.Thread(target=add) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    row = DailyStatusTotal.objects.get()
    assert row.count == per_thread * threads
    assert row.amount == Decimal("1.50") * per_thread * threads
