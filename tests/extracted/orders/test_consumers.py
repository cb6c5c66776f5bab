"""Events the service consumes: payment outcomes move orders; the monolith's orders are copied."""

from __future__ import annotations

import uuid

import pytest

import extracted.orders.handlers  # noqa: F401  (registers the handlers)
from extracted.orders.handlers import CONSUMER
from extracted.orders.models import StoredEvent
from extracted.orders.services import order_load
from outbox.envelope import Envelope
from outbox.inbox import Outcome, event_apply
from outbox.models import OutboxEvent
from outbox.registry import registry

pytestmark = pytest.mark.django_db


def envelope(event_type: str, payload: dict, *, origin: str, aggregate_id: str, sequence=1):
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        version=1,
        aggregate_type=event_type.split(".")[0],
        aggregate_id=aggregate_id,
        sequence=sequence,
        occurred_at="2026-12-01T10:00:00+00:00",
        origin=origin,
        correlation_id="req-1",
        causation_id="",
        payload=payload,
    )


def apply(event: Envelope) -> Outcome:
    return event_apply(
        consumer=CONSUMER, envelope=event, subscriptions=registry.matching(CONSUMER, event.type)
    )


def payment(order, *, status="succeeded", origin="payments", sequence=1, payment_id=None):
    payload = {
        "payment_id": payment_id or str(uuid.uuid4()),
        "order_id": order.order_id,
        "user_id": order.user_id,
        "amount": order.total,
        "currency": "EUR",
        "card_last4": "4242",
        "status": status,
    }
    if status == "refunded":
        payload["refunded_at"] = "2026-12-01T11:00:00+00:00"
    else:
        payload["created_at"] = "2026-12-01T10:00:00+00:00"
        payload["provider_reference"] = "sim_ch_1"
    return envelope(
        f"payment.{status}", payload, origin=origin, aggregate_id=payload["payment_id"],
        sequence=sequence,
    )  # fmt: skip


def test_a_succeeded_payment_marks_an_order_placed_here_paid_and_announces_order_paid(
    user_id, place
):
    order = place(user_id)
    event = payment(order)

    assert apply(event) == Outcome.APPLIED

    assert order_load(order_id=order.order_id).status == "paid"
    announced = OutboxEvent.objects.get(event_type="order.paid")
    assert announced.origin == "orders"  # not the payment's origin: our counter numbers it
    assert announced.causation_id == event.id and announced.correlation_id == "req-1"
    assert announced.payload["payment_id"] == event.payload["payment_id"]
    assert announced.sequence == 2  # after order.placed


def test_a_refund_moves_the_order_to_refunded_without_an_order_event(user_id, place):
    order = place(user_id)
    payment_id = str(uuid.uuid4())
    apply(payment(order, payment_id=payment_id))

    apply(payment(order, status="refunded", payment_id=payment_id, sequence=2))

    assert order_load(order_id=order.order_id).status == "refunded"
    assert not OutboxEvent.objects.filter(event_type__in=["order.refunded"]).exists()


def test_a_payment_for_an_unknown_order_raises_so_the_runtime_retries_it(user_id):
    from types import SimpleNamespace

    ghost = SimpleNamespace(order_id=str(uuid.uuid4()), user_id=user_id, total="1.00")

    with pytest.raises(Exception, match="not known here yet"):
        apply(payment(ghost))


def test_the_monolith_s_orders_are_copied_and_moved_silently(user_id):
    order_id = str(uuid.uuid4())
    placed = {
        "order_id": order_id,
        "user_id": user_id,
        "status": "pending",
        "total": "19.98",
        "currency": "EUR",
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "9.99"}],
        "created_at": "2026-12-01T09:00:00.123456+00:00",
    }
    moved = {k: placed[k] for k in ("order_id", "user_id", "total", "currency")}

    apply(envelope("order.placed", placed, origin="monolith", aggregate_id=order_id))
    apply(envelope("order.paid", moved | {"status": "paid", "payment_id": str(uuid.uuid4()),
                                          "paid_at": "2026-12-01T09:05:00+00:00"},
                   origin="monolith", aggregate_id=order_id, sequence=2))  # fmt: skip

    state = order_load(order_id=uuid.UUID(order_id))
    assert (state.status, state.total, state.native) == ("paid", "19.98", False)
    assert state.created_at == "2026-12-01T09:00:00.123456+00:00"
    assert list(StoredEvent.objects.values_list("event_type", flat=True)) == [
        "OrderImported", "OrderPaid",
    ]  # fmt: skip
    assert not OutboxEvent.objects.exists()  # the monolith's news, not ours to repeat


def test_a_copied_order_paid_on_the_payments_service_is_not_announced_again(user_id):
    order_id = str(uuid.uuid4())
    placed = {
        "order_id": order_id, "user_id": user_id, "status": "pending", "total": "9.99",
        "currency": "EUR", "items": [{"sku": "BOOK-1", "quantity": 1, "unit_price": "9.99"}],
        "created_at": "2026-12-01T09:00:00+00:00",
    }  # fmt: skip
    apply(envelope("order.placed", placed, origin="monolith", aggregate_id=order_id))
    copy = order_load(order_id=uuid.UUID(order_id))

    apply(payment(copy))

    assert order_load(order_id=uuid.UUID(order_id)).status == "paid"
    assert not OutboxEvent.objects.filter(event_type="order.paid").exists()


def test_our_own_order_events_coming_back_are_echoes(user_id, place):
    order = place(user_id)
    event = envelope(
        "order.cancelled",
        {"order_id": order.order_id, "user_id": user_id, "status": "cancelled",
         "total": order.total, "currency": "EUR", "cancelled_at": "2026-12-01T10:00:00+00:00"},
        origin="orders", aggregate_id=order.order_id, sequence=2,
    )  # fmt: skip

    assert apply(event) == Outcome.ECHO
    assert order_load(order_id=order.order_id).status == "pending"
