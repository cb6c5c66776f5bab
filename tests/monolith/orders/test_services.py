"""order_create, order_cancel, order_ship and the selectors, called directly."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from monolith.orders import selectors, services
from monolith.orders.models import Order, OrderItem, OrderStatus
from service_kit.errors import DomainError, NotFound
from tests.catalogue import stock, stocked

pytestmark = pytest.mark.django_db


def test_order_create_computes_the_total_from_the_lines(user):
    order = services.order_create(
        user=user,
        items=stocked(
            [
                {"sku": "A", "quantity": 3, "unit_price": Decimal("9.99")},
                {"sku": "B", "quantity": 1, "unit_price": Decimal("0.1")},
            ]
        ),
    )
    order.refresh_from_db()
    assert order.total == Decimal("30.07")
    assert order.status == OrderStatus.PENDING
    assert order.user == user
    assert [(i.sku, i.quantity, i.unit_price) for i in order.items.all()] == [
        ("A", 3, Decimal("9.99")),
        ("B", 1, Decimal("0.10")),
    ]


def test_order_create_takes_each_price_from_the_catalogue_as_a_snapshot(user):
    stock("MUG", "12.50")
    order = services.order_create(user=user, items=[{"sku": "MUG", "quantity": 2}])
    stock("MUG", "99.00")  # a later price change leaves the placed order as it was
    order.refresh_from_db()
    assert order.total == Decimal("25.00")
    assert [(i.sku, i.unit_price) for i in order.items.all()] == [("MUG", Decimal("12.50"))]


def test_order_create_with_unknown_skus_names_each_line_and_writes_nothing(user):
    stock("MUG", "12.50")
    items = [
        {"sku": "MUG", "quantity": 1},
        {"sku": "NOPE", "quantity": 1},
        {"sku": "X", "quantity": 2},
    ]
    with pytest.raises(DomainError) as caught:
        services.order_create(user=user, items=items)
    assert caught.value.fields == {
        "items": {"1": {"sku": ["Unknown sku 'NOPE'."]}, "2": {"sku": ["Unknown sku 'X'."]}}
    }
    assert "Unknown sku 'NOPE'." in caught.value.detail
    assert Order.objects.count() == 0


def test_order_total_is_quantized_to_cents():
    total = services.order_total(items=[{"quantity": 3, "unit_price": Decimal("0.333")}])
    assert total == Decimal("1.00")
    assert str(total) == "1.00"


def test_order_create_without_items_is_refused_and_writes_nothing(user):
    with pytest.raises(DomainError) as caught:
        services.order_create(user=user, items=[])
    assert caught.value.fields == {"items": ["This list may not be empty."]}
    assert Order.objects.count() == 0


def test_order_whose_total_overflows_the_column_is_refused_and_writes_nothing(user):
    items = stocked([{"sku": "GOLD", "quantity": 10_000, "unit_price": Decimal("99999999.99")}])
    with pytest.raises(DomainError) as caught:
        services.order_create(user=user, items=items)
    assert "items" in caught.value.fields
    assert "exceeds the maximum" in caught.value.detail
    assert Order.objects.count() == 0
    assert OrderItem.objects.count() == 0


def test_order_create_queues_the_confirmation_email_after_commit(
    user, django_capture_on_commit_callbacks, confirmation_apply_async
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = services.order_create(
            user=user, items=stocked([{"sku": "A", "quantity": 1, "unit_price": 1}])
        )
    # Nothing is sent while the transaction is open.
    confirmation_apply_async.assert_not_called()
    assert len(callbacks) == 1
    callbacks[0]()
    confirmation_apply_async.assert_called_once_with(kwargs={"order_id": str(order.id)}, priority=7)


def test_order_rolled_back_never_queues_its_confirmation_email(
    user, django_capture_on_commit_callbacks, confirmation_apply_async
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.order_create(
            user=user, items=stocked([{"sku": "A", "quantity": 1, "unit_price": 1}])
        )
        raise RuntimeError("the surrounding transaction fails")
    assert callbacks == []
    confirmation_apply_async.assert_not_called()
    assert Order.objects.count() == 0


def test_broker_outage_after_commit_does_not_undo_or_fail_the_order(
    user, django_capture_on_commit_callbacks, confirmation_apply_async
):
    confirmation_apply_async.side_effect = OperationalError("broker unreachable")
    with django_capture_on_commit_callbacks(execute=True):
        order = services.order_create(
            user=user, items=stocked([{"sku": "A", "quantity": 1, "unit_price": 1}])
        )
    confirmation_apply_async.assert_called_once()
    assert Order.objects.filter(pk=order.pk).exists()


def test_order_cancel_of_someone_elses_order_is_not_found_and_changes_nothing(
    make_order, other_user
):
    order = make_order()
    with pytest.raises(NotFound):
        services.order_cancel(order_id=order.id, user=other_user)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


@pytest.mark.parametrize("order_id", [uuid.uuid4(), "not-a-uuid", "", None, 42])
def test_order_lock_of_an_unknown_or_malformed_id_is_not_found(order_id):
    with pytest.raises(NotFound), transaction.atomic():
        services.order_lock(order_id=order_id)


def test_order_list_returns_only_the_users_orders_of_the_status_asked(make_order, user, other_user):
    pending = make_order()
    paid = make_order(status="paid")
    make_order(other_user)
    assert set(selectors.order_list(user=user)) == {pending, paid}
    assert list(selectors.order_list(user=user, status="paid")) == [paid]


@pytest.mark.parametrize("order_id", ["nope", "123", str(uuid.uuid4())])
def test_order_get_of_a_malformed_or_unknown_id_is_not_found(user, order_id):
    with pytest.raises(NotFound):
        selectors.order_get(user=user, order_id=order_id)


def test_order_get_of_someone_elses_order_is_not_found(make_order, other_user):
    order = make_order()
    with pytest.raises(NotFound) as caught:
        selectors.order_get(user=other_user, order_id=order.id)
    # The same words as for an id that never existed: nothing leaks.
    assert caught.value.detail == f"Order {order.id} does not exist."
