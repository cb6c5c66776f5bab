"""Each service writes exactly its event, for the right aggregate, in its own transaction."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monolith.orders.services import order_cancel, order_create, order_ship
from monolith.payments.services import payment_create, payment_refund
from monolith.users.models import User
from monolith.users.services import user_register, user_update
from outbox.models import OutboxEvent
from tests.catalogue import stocked

from .conftest import DECLINE_CARD, ITEMS, SUCCEED_CARD, assert_valid, events, types

pytestmark = pytest.mark.django_db


def _pay(user, order, card=SUCCEED_CARD, key="k1"):
    return payment_create(
        user=user, order_id=order.pk, card_number=card, idempotency_key=key,
        request_fingerprint=f"fp-{key}",
    )  # fmt: skip


def test_registering_a_user_writes_one_user_registered_event():
    user = user_register(email="Ada@Example.com", password="s3cret-Passw0rd", full_name="Ada L")

    [row] = events()
    assert (row.event_type, row.aggregate_type, row.aggregate_id) == (
        "user.registered", "user", str(user.pk),
    )  # fmt: skip
    assert row.sequence == 1
    assert row.origin == "monolith"
    assert row.payload["email"] == "Ada@example.com"
    assert row.payload["full_name"] == "Ada L"
    assert row.payload["is_staff"] is False
    assert "password" not in row.payload
    assert_valid(row)


def test_updating_a_user_writes_user_updated_naming_the_changed_fields(user):
    user_update(user=user, full_name="New Name", email="new@example.com")

    [row] = events("user", user.pk)
    assert row.event_type == "user.updated"
    assert row.payload["changed"] == ["email", "full_name"]
    assert (row.payload["email"], row.payload["full_name"]) == ("new@example.com", "New Name")
    assert_valid(row)


def test_user_update_sequence_follows_registration():
    user = user_register(email="seq@example.com", password="s3cret-Passw0rd")
    user_update(user=user, full_name="One")
    user_update(user=user, full_name="Two")

    rows = events("user", user.pk)
    assert types(rows) == ["user.registered", "user.updated", "user.updated"]
    assert [r.sequence for r in rows] == [1, 2, 3]
    assert rows[-1].payload["full_name"] == "Two"


def test_updating_a_user_with_the_same_values_writes_no_event(user):
    user_update(user=user, full_name=user.full_name, email=f"  {user.email} ")

    assert events() == []


def test_a_password_change_is_named_but_never_sent(user):
    user_update(user=user, password="An0ther-Passw0rd!", current_password="s3cret-Passw0rd")

    row, revoked = events("user", user.pk)
    assert row.payload["changed"] == ["password"]
    # The hash travels (the other users half must check the same password), the password never.
    assert row.payload["password_hash"] == User.objects.get(pk=user.pk).password
    assert not any("Passw0rd" in str(value) for value in row.payload.values())
    assert_valid(row)
    # Every token made until now is revoked, on whichever half it was made.
    assert revoked.event_type == "user.token_revoked"
    assert revoked.payload["before"] is not None


def test_a_refused_update_writes_no_event(user):
    with pytest.raises(Exception, match="current password"):
        user_update(user=user, full_name="X", password="An0ther-Passw0rd!")

    assert events() == []


def test_placing_an_order_writes_order_placed_with_its_lines(user):
    order = order_create(
        user=user,
        items=stocked(
            [
                {"sku": "BOOK-1", "quantity": 2, "unit_price": Decimal("12.5")},
                {"sku": "PEN", "quantity": 1, "unit_price": "0.99"},
            ]
        ),
    )

    [row] = events()
    assert (row.event_type, row.aggregate_type, row.aggregate_id, row.sequence) == (
        "order.placed", "order", str(order.pk), 1,
    )  # fmt: skip
    assert row.payload["status"] == "pending"
    assert row.payload["total"] == "25.99"
    assert row.payload["user_id"] == user.pk
    assert row.payload["items"] == [
        {"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"},
        {"sku": "PEN", "quantity": 1, "unit_price": "0.99"},
    ]
    assert_valid(row)


def test_cancelling_an_order_writes_order_cancelled_as_its_second_event(user):
    order = order_create(user=user, items=ITEMS)
    order_cancel(order_id=order.pk, user=user)

    rows = events("order", order.pk)
    assert types(rows) == ["order.placed", "order.cancelled"]
    assert [r.sequence for r in rows] == [1, 2]
    assert rows[1].payload["status"] == "cancelled"
    assert_valid(rows[1])


def test_a_refused_cancel_writes_no_event(user, make_user):
    order = order_create(user=user, items=ITEMS)
    order_cancel(order_id=order.pk, user=user)

    with pytest.raises(Exception, match="cancelled"):
        order_cancel(order_id=order.pk, user=user)  # already cancelled: 409

    assert types(events("order", order.pk)) == ["order.placed", "order.cancelled"]


def test_shipping_a_paid_order_writes_order_shipped_as_its_third_event(user):
    order = order_create(user=user, items=ITEMS)
    _pay(user, order)
    order_ship(order_id=order.pk)

    rows = events("order", order.pk)
    assert types(rows) == ["order.placed", "order.paid", "order.shipped"]
    assert [r.sequence for r in rows] == [1, 2, 3]
    assert rows[2].payload["status"] == "shipped"
    assert (rows[2].payload["total"], rows[2].payload["user_id"]) == ("25.00", user.pk)
    assert_valid(rows[2])


def test_a_refused_ship_writes_no_event(user):
    order = order_create(user=user, items=ITEMS)

    with pytest.raises(Exception, match="pending"):
        order_ship(order_id=order.pk)  # not paid yet: 409

    assert types(events("order", order.pk)) == ["order.placed"]


def test_a_successful_payment_writes_payment_succeeded_then_order_paid_caused_by_it(user):
    order = order_create(user=user, items=ITEMS)
    attempt = _pay(user, order)

    [succeeded] = events("payment", attempt.payment.pk)
    assert succeeded.event_type == "payment.succeeded"
    assert succeeded.sequence == 1
    assert succeeded.payload["amount"] == "25.00"
    assert succeeded.payload["card_last4"] == "4242"
    assert succeeded.payload["provider_reference"] == attempt.payment.provider_reference
    _placed, paid = events("order", order.pk)
    assert (paid.event_type, paid.sequence) == ("order.paid", 2)
    assert paid.payload["payment_id"] == str(attempt.payment.pk)
    assert paid.causation_id == str(succeeded.event_id)
    assert paid.correlation_id == succeeded.correlation_id
    assert paid.id > succeeded.id
    for row in (succeeded, paid):
        assert_valid(row)


def test_a_declined_payment_writes_payment_failed_and_leaves_the_order_alone(user):
    order = order_create(user=user, items=ITEMS)
    attempt = _pay(user, order, card=DECLINE_CARD)

    assert attempt.status_code == 402
    [failed] = events("payment", attempt.payment.pk)
    assert failed.event_type == "payment.failed"
    assert failed.payload["status"] == "failed"
    assert failed.payload["failure_reason"] == attempt.payment.failure_reason != ""
    # The other half's copy of a declined payment must reconcile exactly, reference included.
    assert failed.payload["provider_reference"] == attempt.payment.provider_reference != ""
    assert_valid(failed)
    assert types(events("order", order.pk)) == ["order.placed"]


def test_an_idempotent_replay_writes_no_second_event(user):
    order = order_create(user=user, items=ITEMS)
    _pay(user, order, key="same")
    before = OutboxEvent.objects.count()

    replay = _pay(user, order, key="same")

    assert replay.replayed
    assert OutboxEvent.objects.count() == before


def test_refunding_writes_payment_refunded_as_the_payments_second_event(user):
    order = order_create(user=user, items=ITEMS)
    payment = _pay(user, order).payment
    payment_refund(user=user, payment_id=payment.pk)

    rows = events("payment", payment.pk)
    assert types(rows) == ["payment.succeeded", "payment.refunded"]
    assert [r.sequence for r in rows] == [1, 2]
    assert rows[1].payload["status"] == "refunded"
    assert rows[1].payload["order_id"] == str(order.pk)
    assert_valid(rows[1])
    # No order.refunded schema exists: payment.refunded announces the order's refund too.
    assert types(events("order", order.pk)) == ["order.placed", "order.paid"]


def test_a_refused_refund_writes_no_event(user):
    order = order_create(user=user, items=ITEMS)
    payment = _pay(user, order, card=DECLINE_CARD).payment

    with pytest.raises(Exception, match="failed"):
        payment_refund(user=user, payment_id=payment.pk)

    assert types(events("payment", payment.pk)) == ["payment.failed"]
