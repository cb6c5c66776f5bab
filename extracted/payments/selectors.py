"""Reads of payments, always scoped to their owner (a user id vouched for by the proxy)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from service_kit.errors import NotFound

from .models import Payment


def payment_list(
    *, user_id: int, status: str | None = None, order_id: uuid.UUID | None = None
) -> QuerySet[Payment]:
    """Return the user's payments, newest first, optionally filtered by status and order."""
    payments = Payment.objects.filter(user_id=user_id)
    if status:
        payments = payments.filter(status=status)
    if order_id:
        payments = payments.filter(order_id=order_id)
    return payments


def payment_get(*, user_id: int, payment_id: uuid.UUID | str) -> Payment:
    """Return the user's payment `payment_id`, or raise NotFound (someone else's is not found)."""
    try:
        return Payment.objects.get(pk=payment_id, user_id=user_id)
    except (Payment.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Payment {payment_id} does not exist.") from None
