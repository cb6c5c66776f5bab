"""Order business logic. Every status change goes through `order_transition`.

Services run in `transaction.atomic()`, lock the order row before changing its status, and raise
the `service_kit.errors` tree; the API's exception handler turns those into JSON once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from monolith.events import order_cancelled_publish, order_placed_publish, order_shipped_publish
from service_kit.errors import DomainError, NotFound

from . import tasks
from .models import Order, OrderItem, OrderStatus, Product
from .states import assert_transition

logger = logging.getLogger(__name__)

CENTS = Decimal("0.01")
# Order.total is NUMERIC(12, 2): ten integer digits. A bigger sum is refused, never truncated.
MAX_ORDER_TOTAL = Decimal("9999999999.99")
CONFIRMATION_EMAIL_PRIORITY = 7  # receipts go ahead of welcome emails (5)


def order_lock(*, order_id: uuid.UUID | str) -> Order:
    """Return the order row locked FOR UPDATE; call inside transaction.atomic()."""
    try:
        return Order.objects.select_for_update().get(pk=order_id)
    except (Order.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        # A malformed UUID is just another id that does not exist.
        raise NotFound(f"Order {order_id} does not exist.") from None


def order_transition(*, order: Order, to: str) -> Order:
    """Move a locked `order` to status `to`, or raise InvalidTransition (409) naming both states."""
    assert transaction.get_connection().in_atomic_block, "order_transition needs a transaction"
    assert_transition(current=order.status, target=to)
    order.status = to
    order.save(update_fields=["status", "updated_at"])
    return order


def order_mark_paid(*, order: Order) -> Order:
    """Record that a locked pending order has been paid."""
    return order_transition(order=order, to=OrderStatus.PAID)


def order_mark_refunded(*, order: Order) -> Order:
    """Record that a locked paid order has been refunded."""
    return order_transition(order=order, to=OrderStatus.REFUNDED)


def order_total(*, items: Iterable[Mapping]) -> Decimal:
    """Return the sum of quantity x unit_price over `items`, rounded to cents."""
    total = sum((Decimal(item["quantity"]) * item["unit_price"] for item in items), Decimal(0))
    return total.quantize(CENTS)


def order_lines_priced(*, items: Iterable[Mapping]) -> list[dict]:
    """Return `items` (sku, quantity) as lines priced from the catalogue, in the same order.

    Each line's unit_price is a snapshot of the product's price now. Skus that are not in the
    catalogue are refused with a 400 that names each one under its line index, in the shape
    the serializers give any other bad line: `{"items": {"1": {"sku": ["Unknown sku 'X'."]}}}`.
    """
    items = list(items)
    prices = dict(
        Product.objects.filter(sku__in={item["sku"] for item in items}).values_list(
            "sku", "unit_price"
        )
    )
    unknown = {
        str(index): {"sku": [f"Unknown sku '{item['sku']}'."]}
        for index, item in enumerate(items)
        if item["sku"] not in prices
    }
    if unknown:
        first = next(iter(unknown.values()))["sku"][0]
        raise DomainError(
            f"{first} Products are listed at /api/products/.",
            code="validation_error",
            fields={"items": unknown},
        )
    return [
        {
            "sku": item["sku"],
            "quantity": int(item["quantity"]),
            # Adding zero turns a "-0" into 0, so no line ever reads "-0.00".
            "unit_price": Decimal(prices[item["sku"]]).quantize(CENTS) + 0,
        }
        for item in items
    ]


def order_create(*, user, items: list[dict]) -> Order:
    """Place a pending order for `user` with `items` (sku, quantity), priced from the catalogue.

    Prices and the total are the server's: each line's unit_price is copied from the product
    (a snapshot: a later price change leaves placed orders as they were), and the total is their
    sum. The confirmation email is queued only once the order has committed.
    """
    if not items:
        raise DomainError(
            "An order needs at least one item.",
            code="validation_error",
            fields={"items": ["This list may not be empty."]},
        )
    lines = order_lines_priced(items=items)
    total = order_total(items=lines)
    if total > MAX_ORDER_TOTAL:
        raise DomainError(
            f"The order total {total} exceeds the maximum of {MAX_ORDER_TOTAL}.",
            code="validation_error",
            fields={
                "items": [f"The order total {total} exceeds the maximum of {MAX_ORDER_TOTAL}."]
            },
        )
    with transaction.atomic():
        order = Order.objects.create(user=user, status=OrderStatus.PENDING, total=total)
        order_items = OrderItem.objects.bulk_create(
            OrderItem(order=order, **line) for line in lines
        )
        order_placed_publish(order=order, items=order_items)
        order_confirmation_schedule(order=order)
    return order


def order_confirmation_schedule(*, order: Order) -> None:
    """Queue the order's confirmation email for when the current transaction commits.

    Robust: a broker outage after commit is logged, not raised, because the order exists
    either way and the client must not see a 500 for it.
    """
    order_id = str(order.id)
    transaction.on_commit(
        lambda: tasks.send_order_confirmation.apply_async(
            kwargs={"order_id": order_id}, priority=CONFIRMATION_EMAIL_PRIORITY
        ),
        robust=True,
    )


def order_cancel(*, order_id: uuid.UUID | str, user) -> Order:
    """Cancel `user`'s own pending order; someone else's order does not exist for them."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.user_id != user.pk:
            raise NotFound(f"Order {order_id} does not exist.")
        order_transition(order=order, to=OrderStatus.CANCELLED)
        order_cancelled_publish(order=order)
    return order


def order_ship(*, order_id: uuid.UUID | str) -> Order:
    """Mark a paid order as shipped and announce it (a staff action: the caller checks who may).

    `order.shipped` is what tells the payments service that the order can no longer be refunded.
    """
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        order_transition(order=order, to=OrderStatus.SHIPPED)
        order_shipped_publish(order=order)
    return order
