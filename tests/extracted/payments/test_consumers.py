"""The service's consumer: orders into the replica, the monolith's payments into its table."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

import extracted.payments.handlers  # noqa: F401  (registers the handlers)
from extracted.payments.models import OrderReplica, Payment
from outbox.envelope import Envelope
from outbox.inbox import Outcome, event_apply
from outbox.registry import registry

from .conftest import assert_refund_of_shipped_order_refused

pytestmark = pytest.mark.django_db

USER = 41


def _envelope(event_type, payload, *, aggregate_id, sequence=1, origin="monolith"):
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        version=1,
        aggregate_type=event_type.split(".")[0],
        aggregate_id=str(aggregate_id),
        sequence=sequence,
        occurred_at=timezone.now().isoformat(),
        origin=origin,
        correlation_id=str(uuid.uuid4()),
        causation_id="",
        payload=payload,
    )


def _apply(envelope) -> Outcome:
    subscriptions = registry.matching("payments", envelope.type)
    return event_apply(consumer="payments", envelope=envelope, subscriptions=subscriptions)


def _order_placed(order_id, sequence=1):
    return _envelope(
        "order.placed",
        {
            "order_id": str(order_id),
            "user_id": USER,
            "status": "pending",
            "total": "30.00",
            "currency": "EUR",
            "items": [{"sku": "A", "quantity": 2, "unit_price": "15.00"}],
            "created_at": timezone.now().isoformat(),
        },
        aggregate_id=order_id,
        sequence=sequence,
    )


def _payment_event(event_type, payment_id, order_id, *, sequence=1, origin="monolith"):
    status = event_type.split(".")[1]
    payload = {
        "payment_id": str(payment_id),
        "order_id": str(order_id),
        "user_id": USER,
        "amount": "30.00",
        "currency": "EUR",
        "card_last4": "4242",
        "status": status,
    }
    if status == "succeeded":
        payload |= {
            "provider_reference": "sim_ch_x",
            "created_at": "2026-01-02T03:04:05.123456+00:00",
        }
    elif status == "failed":
        payload |= {"failure_reason": "generic_decline", "created_at": timezone.now().isoformat()}
    else:
        payload |= {"refunded_at": timezone.now().isoformat()}
    return _envelope(event_type, payload, aggregate_id=payment_id, sequence=sequence, origin=origin)


def test_the_service_consumes_order_and_payment_events_on_queue_payments_events():
    assert registry.binding_keys("payments") == ["order.#", "payment.#"]


def test_order_placed_enters_the_replica_as_pending_and_once():
    order_id = uuid.uuid4()
    placed = _order_placed(order_id)

    assert _apply(placed) == Outcome.APPLIED
    assert _apply(placed) == Outcome.DUPLICATE

    replica = OrderReplica.objects.get()
    assert (replica.order_id, replica.user_id, replica.status) == (order_id, USER, "pending")
    assert str(replica.total) == "30.00"


def test_order_cancelled_stops_the_order_being_payable(client_for, pay):
    order_id = uuid.uuid4()
    _apply(_order_placed(order_id))
    cancelled = _envelope(
        "order.cancelled",
        {
            "order_id": str(order_id),
            "user_id": USER,
            "status": "cancelled",
            "total": "30.00",
            "currency": "EUR",
            "cancelled_at": timezone.now().isoformat(),
        },
        aggregate_id=order_id,
        sequence=2,
    )

    assert _apply(cancelled) == Outcome.APPLIED
    response = pay(client_for(USER), order_id)

    assert response.status_code == 409
    assert response.json()["from"] == "cancelled"


def _order_event(event_type, order_id, *, sequence, **extra):
    status = event_type.split(".")[1]
    payload = {
        "order_id": str(order_id),
        "user_id": USER,
        "status": status,
        "total": "30.00",
        "currency": "EUR",
        f"{status}_at": timezone.now().isoformat(),
    }
    return _envelope(event_type, payload | extra, aggregate_id=order_id, sequence=sequence)


def test_order_shipped_moves_the_replica_on_and_its_payment_can_no_longer_be_refunded(
    client_for, provider
):
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    _apply(_order_placed(order_id))
    _apply(_payment_event("payment.succeeded", payment_id, order_id))
    _apply(_order_event("order.paid", order_id, sequence=2, payment_id=str(payment_id)))

    assert _apply(_order_event("order.shipped", order_id, sequence=3)) == Outcome.APPLIED
    assert OrderReplica.objects.get().status == "shipped"
    response = client_for(USER).post(f"/api/payments/{payment_id}/refund/")

    assert_refund_of_shipped_order_refused(response, provider)


def test_a_late_order_shipped_never_undoes_a_refund():
    order_id = uuid.uuid4()
    _apply(_order_placed(order_id))
    OrderReplica.objects.filter(pk=order_id).update(status="refunded")

    assert _apply(_order_event("order.shipped", order_id, sequence=2)) == Outcome.APPLIED

    assert OrderReplica.objects.get().status == "refunded"


def test_monolith_payment_events_upsert_the_payment_and_move_the_replica():
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    _apply(_order_placed(order_id))

    assert _apply(_payment_event("payment.succeeded", payment_id, order_id)) == Outcome.APPLIED
    payment = Payment.objects.get()
    assert (payment.pk, payment.status, payment.provider_reference) == (
        payment_id,
        "succeeded",
        "sim_ch_x",
    )
    assert payment.created_at.isoformat() == "2026-01-02T03:04:05.123456+00:00"
    assert OrderReplica.objects.get().status == "paid"

    refunded = _payment_event("payment.refunded", payment_id, order_id, sequence=2)
    assert _apply(refunded) == Outcome.APPLIED
    assert Payment.objects.get().status == "refunded"
    assert OrderReplica.objects.get().status == "refunded"


def test_a_failed_payment_from_the_monolith_is_recorded_and_the_order_stays_pending():
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    _apply(_order_placed(order_id))

    _apply(_payment_event("payment.failed", payment_id, order_id))

    assert Payment.objects.get().failure_reason == "generic_decline"
    assert OrderReplica.objects.get().status == "pending"


def test_a_payment_event_before_its_order_placed_still_converges():
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()

    _apply(_payment_event("payment.succeeded", payment_id, order_id))
    _apply(_order_placed(order_id))

    assert OrderReplica.objects.get().status == "paid"


def test_the_services_own_payment_events_come_back_as_echoes_and_change_nothing():
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    echo = _payment_event("payment.succeeded", payment_id, order_id, origin="payments")

    assert _apply(echo) == Outcome.ECHO
    assert not Payment.objects.exists()
    assert not OrderReplica.objects.exists()


def test_a_stale_succeeded_never_undoes_a_refund():
    from extracted.payments.sync import payment_sync_apply

    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    common = {
        "payment_id": payment_id,
        "order_id": order_id,
        "user_id": USER,
        "amount": "30.00",
        "currency": "EUR",
        "card_last4": "4242",
    }
    payment_sync_apply(**common, status="refunded", updated_at=timezone.now())

    payment_sync_apply(**common, status="succeeded", created_at=timezone.now())

    assert Payment.objects.get().status == "refunded"
