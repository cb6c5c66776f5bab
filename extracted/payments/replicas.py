"""What the service knows of orders: the replica, kept by events, the owner and payments.

Every write goes through `order_replica_apply`, which inserts an unknown order and otherwise only
moves it forward along the state machine (`order_states`), so sources may arrive in any order
(an `order.placed` after the service already marked the order paid changes nothing).

Events lag: a client that cancels an order on the monolith and pays it on this service a moment
later would find the replica still pending. So before money moves (a charge or a refund) the
service asks the owner for the order's current status with the caller's credentials
(`order_replica_confirm`, `order_replica_refresh`) and moves the replica forward to it; the owner
also answers 404 for an order that does not exist or is not the caller's. Only when the owner
cannot be asked does the replica decide alone, after a bounded wait
(`STRANGLER_ORDER_REPLICA_WAIT_MS`) for an order it has not heard of at all.
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


def order_replica_refresh(
    *, order_id: uuid.UUID | str, user_id: int, headers: Mapping[str, str]
) -> bool | None:
    """Move the replica forward to the owner's current status of the caller's order.

    Returns True when the owner answered (the replica now holds at least its status), False when
    the owner says the order does not exist for this caller, None when it could not be asked
    (the replica, whatever it holds, is all there is). Call outside any transaction: the
    owner is asked over HTTP and no lock may be held meanwhile.
    """
    try:
        owned = order_fetch(order_id=order_id, headers=headers)
    except OrdersOwnerUnavailable as exc:
        logger.warning("order %s: owner not asked (%s); deciding on the replica", order_id, exc)
        return None
    if owned is None:
        return False
    order_replica_apply(
        order_id=owned.order_id,
        user_id=user_id,
        status=owned.status,
        total=owned.total,
        currency=owned.currency,
        source=ReplicaSource.OWNER,
    )
    return True


def order_replica_confirm(
    *, order_id: uuid.UUID, user_id: int, headers: Mapping[str, str]
) -> DomainError | None:
    """Bring the replica up to what the owner says of `order_id` now; return the error to raise.

    Returns None when the replica holds the owner's current status (or, the owner being
    unreachable, holds the order at all, perhaps after a bounded wait for its `order.placed`),
    NotFound when the owner says the order does not exist for this caller, OrdersUnavailable
    when the owner cannot be asked and the order never reached the replica within the wait.
    """
    known = order_replica_refresh(order_id=order_id, user_id=user_id, headers=headers)
    if known is False:
        return NotFound(f"Order {order_id} does not exist.")
    if known or OrderReplica.objects.filter(pk=order_id).exists():
        return None
    if order_replica_wait(order_id=order_id):
        return None
    wait_ms = settings.STRANGLER_ORDER_REPLICA_WAIT_MS
    return OrdersUnavailable(
        f"Order {order_id} is not known here yet, its owner could not be asked and no "
        f"order.placed arrived within {wait_ms} ms; retry with the same Idempotency-Key."
    )


def order_replica_wait(*, order_id: uuid.UUID) -> bool:
    """Poll for the order's replica for at most STRANGLER_ORDER_REPLICA_WAIT_MS; return if found."""
    deadline = time.monotonic() + settings.STRANGLER_ORDER_REPLICA_WAIT_MS / 1000
    while True:
        if OrderReplica.objects.filter(pk=order_id).exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
