"""Service-level guarantees that the API alone cannot reach."""

from __future__ import annotations

import pytest

from monolith.orders.models import Order
from monolith.payments.models import IdempotencyRecord, Payment
from monolith.payments.services import payment_create
from service_kit.errors import Conflict

pytestmark = pytest.mark.django_db


def test_database_constraint_refuses_a_second_success_and_the_charge_is_refunded(
    user, order, provider
):
    # An inconsistent row the order lock would normally prevent: a success on a pending order.
    Payment.objects.create(
        order=order, user=user, amount=order.total, status="succeeded", card_last4="4242"
    )

    with pytest.raises(Conflict) as caught:
        payment_create(
            user=user,
            order_id=order.id,
            card_number="4242424242424242",
            idempotency_key="k",
            request_fingerprint="f",
        )

    assert caught.value.code == "order_already_paid"
    assert len(provider.charges) == len(provider.refunds) == 1
    assert Payment.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == "pending"
    assert not IdempotencyRecord.objects.exists()


def test_the_amount_charged_is_the_orders_total(user, make_order, provider):
    order = make_order(user, total="19.99")

    attempt = payment_create(
        user=user,
        order_id=order.id,
        card_number="4242424242424242",
        idempotency_key="k",
        request_fingerprint="f",
    )

    assert attempt.status_code == 201
    assert attempt.payment.amount == order.total
    assert str(provider.charges[0]["amount"]) == "19.99"
