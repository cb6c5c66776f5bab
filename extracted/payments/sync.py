"""Apply payments written by the other half (events, backfill) to this service's table.

`payment_sync_apply` is an upsert by payment id that converges whatever order its inputs come in:

* an unknown id is inserted with the fields given;
* a known id takes the fields given, except that its status only moves forward
  (`succeeded -> refunded`; `failed` and `refunded` are final), so a stale copy never undoes
  a newer change;
* the order's replica follows: a succeeded payment means a paid order, a refunded one a refunded
  order (forward-only there too).

Nothing here writes an event: a change that came from the other half is that half's news, so
there is nothing to echo back.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.dateparse import parse_datetime

from .models import OrderStatus, Payment, PaymentStatus, ReplicaSource
from .replicas import order_replica_apply

logger = logging.getLogger(__name__)

# The fields both halves own and keep equal (reconcile digests exactly these).
SHARED_FIELDS = (
    "id",
    "order_id",
    "user_id",
    "amount",
    "currency",
    "status",
    "card_last4",
    "provider_reference",
    "failure_reason",
    "created_at",
)

_FORWARD = {
    PaymentStatus.SUCCEEDED: {PaymentStatus.REFUNDED},
    PaymentStatus.FAILED: set(),
    PaymentStatus.REFUNDED: set(),
}
_ORDER_STATUS_OF = {
    PaymentStatus.SUCCEEDED: OrderStatus.PAID,
    PaymentStatus.REFUNDED: OrderStatus.REFUNDED,
}


def _when(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time.")
    return parsed


def payment_sync_apply(
    *,
    payment_id: uuid.UUID | str,
    order_id: uuid.UUID | str,
    user_id: int,
    amount: Decimal | str,
    currency: str,
    status: str,
    card_last4: str,
    provider_reference: str | None = None,
    failure_reason: str | None = None,
    created_at: datetime | str | None = None,
    updated_at: datetime | str | None = None,
    order_total: Decimal | str | None = None,
    source: str = ReplicaSource.EVENT,
) -> Payment:
    """Upsert the payment `payment_id` as the other half reports it (see the module docstring)."""
    created, updated = _when(created_at), _when(updated_at)
    fields: dict[str, Any] = {
        "order_id": uuid.UUID(str(order_id)),
        "user_id": int(user_id),
        "amount": Decimal(str(amount)),
        "currency": currency,
        "card_last4": card_last4,
    }
    if provider_reference is not None:
        fields["provider_reference"] = provider_reference
    if failure_reason is not None:
        fields["failure_reason"] = failure_reason
    if created is not None:
        fields["created_at"] = created
    if updated is not None:
        fields["updated_at"] = updated
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None:
            payment = Payment(id=uuid.UUID(str(payment_id)), status=status, **fields)
            # A refund reported before its payment (a copy racing the stream) has no creation
            # time yet; the backfill or the succeeded event fills it in.
            payment.created_at = fields.get("created_at") or updated or payment.created_at
            payment.updated_at = updated or payment.created_at
            payment.save(force_insert=True)
        else:
            for name, value in fields.items():
                setattr(payment, name, value)
            if status != payment.status:
                if status in _FORWARD.get(payment.status, set()):
                    payment.status = status
                else:
                    logger.info(
                        "payment %s stays %r: the other half reported %r",
                        payment_id, payment.status, status,
                    )  # fmt: skip
            payment.save()
        order_status = _ORDER_STATUS_OF.get(payment.status)
        if order_status is not None:
            order_replica_apply(
                order_id=payment.order_id,
                user_id=payment.user_id,
                status=order_status,
                total=order_total if order_total is not None else payment.amount,
                currency=payment.currency,
                source=source,
            )
    return payment
