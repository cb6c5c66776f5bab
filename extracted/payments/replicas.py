"""What the service knows of orders: the replica, kept by events, the owner and payments.

Every write goes through `order_replica_apply`, which inserts an unknown order and otherwise only
moves it forward along the state machine (`order_states`), so sources may arrive in any order
(an `order.placed` after the service already marked the order paid changes nothing).

An order the replica does not know yet (its `order.placed` is still in flight) is resolved by
`order_replica_resolve`: first ask the owner synchronously with the caller's credentials (fast,
authoritative, and it answers 404 for an order that really does not exist or is not the caller's);
if the owner cannot be asked, wait for the event a bounded time (`STRANGLER_ORDER_REPLICA_WAIT_MS`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from service_kit.errors import DomainError, NotFound

from .errors import OrdersUnavailable
from .models import OrderReplica, ReplicaSource
from .order_states import can_transition
from .orders_owner import OrdersOwnerUnavailable, order_fetch

logger = logging.getLogger(__name__)

POLL_S = 0.05


def order_replica_apply(
    *,
    order_id: uuid.UUID | str,
    user_id: int,
    status: str,
    total: Decimal | str,
    currency: str,
    source: str,
) -> OrderReplica:
    """Insert the order if unknown, else move its status forward to `status` if that is legal."""
    with transaction.atomic():
        replica, created = OrderReplica.objects.select_for_update().get_or_create(
            order_id=order_id,
            defaults={
                "user_id": user_id,
                "status": status,
                "total": Decimal(str(total)),
                "currency": currency,
                "source": source,
            },
        )
        if created or replica.status == status:
            return replica
        if can_transition(replica.status, status):
            replica.status = status
            replica.source = source
            replica.save(update_fields=["status", "source", "updated_at"])
        else:
            # Older news (a late order.placed) or a conflict between the halves: keep ours.
            logger.info(
                "order %s stays %r: %s reported %r", order_id, replica.status, source, status
            )
    return replica


def order_replica_resolve(
    *, order_id: uuid.UUID, user_id: int, headers: Mapping[str, str]
) -> DomainError | None:
    """Make sure the replica knows `order_id`; return the error to raise if it cannot.

    Returns None when the order is (now) replicated, NotFound when its owner says it does not
    exist for this caller, OrdersUnavailable when the owner cannot be asked and no event came
    within the wait. Runs outside any transaction, so a consumer can commit the event meanwhile.
    """
    if OrderReplica.objects.filter(pk=order_id).exists():
        return None
    try:
        owned = order_fetch(order_id=order_id, headers=headers)
    except OrdersOwnerUnavailable as exc:
        if order_replica_wait(order_id=order_id):
            return None
        wait_ms = settings.STRANGLER_ORDER_REPLICA_WAIT_MS
        return OrdersUnavailable(
            f"Order {order_id} is not known here yet, its owner could not be asked ({exc}) and "
            f"no order.placed arrived within {wait_ms} ms; retry with the same Idempotency-Key."
        )
    if owned is None:
        return NotFound(f"Order {order_id} does not exist.")
    order_replica_apply(
        order_id=owned.order_id,
        user_id=user_id,
        status=owned.status,
        total=owned.total,
        currency=owned.currency,
        source=ReplicaSource.OWNER,
    )
    return None


def order_replica_wait(*, order_id: uuid.UUID) -> bool:
    """Poll for the order's replica for at most STRANGLER_ORDER_REPLICA_WAIT_MS; return if found."""
    deadline = time.monotonic() + settings.STRANGLER_ORDER_REPLICA_WAIT_MS / 1000
    while True:
        if OrderReplica.objects.filter(pk=order_id).exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
