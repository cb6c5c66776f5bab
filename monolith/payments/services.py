"""Paying and refunding orders. Every payment status change happens here, in a transaction.

Locking, in the order every path takes its locks (so two paths never deadlock):

1. the `IdempotencyRecord` of (user, key): inserted, or locked FOR UPDATE if it exists. A second
   request with the same key waits here until the first commits, then replays its answer; if the
   first rolled back (provider timeout), the second goes ahead as if it were first.
2. the `Order` row FOR UPDATE (`orders.services.order_lock`): two payments of one order with
   different keys queue here; the second sees the order paid and gets 409.
3. the `Payment` row (inserted, or locked FOR UPDATE for a refund).

The provider is called while the order row is locked. That is the price of "exactly one payment
wins" without a two-phase protocol: other writers of that one order wait for at most the
provider's timeout. The partial unique constraint `payments_one_success_per_order` stands behind
the lock; if it ever fires, the charge is refunded at once and the client gets 409.

Stored for replay: 201 (succeeded) and 402 (declined), the outcomes of a charge the provider
decided. Not stored, so the same key may be retried: 4xx raised before charging (404, 409, 422)
and provider failures (502) and timeouts (504), which roll the whole transaction back. The
charge `reference` sent to the provider is derived from (user, key, order), so a retry after a
timeout is deduplicated by a real provider too.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from monolith.events import (
    order_paid_publish,
    payment_failed_publish,
    payment_refunded_publish,
    payment_succeeded_publish,
)
from monolith.orders.models import Order, OrderStatus
from monolith.orders.services import order_lock, order_mark_paid, order_mark_refunded
from monolith.orders.states import assert_transition, can_transition
from outbox.relay import delete_in_batches
from service_kit.errors import Conflict, IdempotencyMismatch, InvalidTransition, NotFound

from .errors import OrderNotPending, ProviderFailed, ProviderTimedOut
from .idempotency import HEADER
from .models import IdempotencyRecord, Payment, PaymentStatus
from .provider import ChargeResult, PaymentProvider, ProviderError, ProviderTimeout, get_provider
from .serializers import PaymentSerializer

logger = logging.getLogger(__name__)
_PURGE_BATCH = 1000  # idempotency records deleted per transaction
_PURGE_MAX_BATCHES = 10  # per cleanup: a backlog goes over several, not in one long stall


@dataclass(frozen=True)
class PaymentAttempt:
    """The answer to a payment request, and whether it is the replay of an earlier one."""

    status_code: int
    body: dict[str, Any]
    payment: Payment | None
    replayed: bool = False


def payment_create(
    *,
    user,
    order_id: uuid.UUID | str,
    card_number: str,
    idempotency_key: str,
    request_fingerprint: str,
) -> PaymentAttempt:
    """Charge the user's pending order its total once per idempotency key, and record the result.

    Returns 201 with the payment (order now paid) or 402 card_declined (a failed payment is
    recorded, the order stays pending); both are stored and replayed for the same key. Raises
    NotFound (404), OrderNotPending (409), IdempotencyMismatch (422, same key, different
    request), ProviderFailed (502) or ProviderTimedOut (504); after a raise nothing is stored.
    """
    with transaction.atomic():
        record, _ = IdempotencyRecord.objects.select_for_update().get_or_create(
            user=user, key=idempotency_key, defaults={"request_fingerprint": request_fingerprint}
        )
        if record.request_fingerprint != request_fingerprint:
            raise IdempotencyMismatch(
                f"This {HEADER} was already used with a different request; "
                "use a new key for a new payment."
            )
        if record.response_status is not None:
            return PaymentAttempt(
                status_code=record.response_status,
                body=record.response_body,
                payment=record.payment,
                replayed=True,
            )

        order = _owned_order_lock(user=user, order_id=order_id)
        if not can_transition(order.status, OrderStatus.PAID):
            raise OrderNotPending(order_id=order.pk, current=order.status)
        provider = get_provider()
        result = _charge(
            provider=provider,
            order=order,
            card_number=card_number,
            reference=_charge_reference(user=user, key=idempotency_key, order=order),
        )
        payment = Payment(
            order=order,
            user=user,
            amount=order.total,
            currency=order.currency,
            status=PaymentStatus.SUCCEEDED if result.succeeded else PaymentStatus.FAILED,
            card_last4=card_number[-4:],
            provider_reference=result.provider_reference,
            failure_reason=result.decline_code,
        )
        if result.succeeded:
            _save_success(payment=payment, provider=provider)
            order_mark_paid(order=order)
            succeeded = payment_succeeded_publish(payment=payment)
            order_paid_publish(order=order, payment=payment, cause=succeeded)
            status_code, body = status.HTTP_201_CREATED, PaymentSerializer(payment).data
        else:
            payment.save()
            payment_failed_publish(payment=payment)
            status_code = status.HTTP_402_PAYMENT_REQUIRED
            body = {
                "error": "card_declined",
                "detail": f"The card ending {payment.card_last4} was declined "
                f"({result.decline_code}); the order is still pending.",
                "decline_code": result.decline_code,
                "payment": PaymentSerializer(payment).data,
            }
        record.response_status = status_code
        record.response_body = body
        record.payment = payment
        record.save(update_fields=["response_status", "response_body", "payment"])
        # Answer with the body as stored (jsonb orders keys its own way), so the first answer
        # and every replay are the same bytes, not just equal JSON.
        body = IdempotencyRecord.objects.values_list("response_body", flat=True).get(pk=record.pk)
    return PaymentAttempt(status_code=status_code, body=body, payment=payment)


def payment_refund(*, user, payment_id: uuid.UUID | str) -> Payment:
    """Refund the user's succeeded payment in full, and mark its paid order refunded.

    Raises NotFound (404), InvalidTransition (409) when the payment did not succeed or the order
    is not paid (e.g. shipped), ProviderTimedOut (504) or ProviderFailed (502); on any error
    nothing changes.
    """
    with transaction.atomic():
        try:
            order_id = (
                Payment.objects.filter(user=user)
                .values_list("order_id", flat=True)
                .get(pk=payment_id)
            )
        except (Payment.DoesNotExist, ValueError, TypeError):
            raise NotFound(f"Payment {payment_id} does not exist.") from None
        # Order first, then payment: the same order payment_create takes its locks in.
        order = order_lock(order_id=order_id)
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.SUCCEEDED:
            raise InvalidTransition("payment", payment.status, PaymentStatus.REFUNDED)
        assert_transition(current=order.status, target=OrderStatus.REFUNDED)
        try:
            get_provider().refund(
                provider_reference=payment.provider_reference, amount=payment.amount
            )
        except ProviderTimeout as exc:
            raise ProviderTimedOut(f"The refund timed out at the provider: {exc}") from exc
        except ProviderError as exc:
            raise ProviderFailed(f"The provider refused the refund: {exc}") from exc
        payment.status = PaymentStatus.REFUNDED
        payment.save(update_fields=["status", "updated_at"])
        order_mark_refunded(order=order)
        payment_refunded_publish(payment=payment)
    return payment


def _owned_order_lock(*, user, order_id: uuid.UUID | str) -> Order:
    """Lock the order if it is the user's; someone else's order does not exist for them."""
    order = order_lock(order_id=order_id)
    if order.user_id != user.pk:
        raise NotFound(f"Order {order_id} does not exist.")
    return order


def _charge_reference(*, user, key: str, order: Order) -> str:
    """Name the charge so that a retry with the same key is the same charge at the provider."""
    return hashlib.sha256(f"{user.pk}:{order.pk}:{key}".encode()).hexdigest()[:40]


def _charge(
    *, provider: PaymentProvider, order: Order, card_number: str, reference: str
) -> ChargeResult:
    """Charge the order's total, turning the provider's failures into API errors."""
    try:
        return provider.charge(
            amount=order.total,
            currency=order.currency,
            card_number=card_number,
            reference=reference,
        )
    except ProviderTimeout as exc:
        raise ProviderTimedOut(
            f"The payment provider timed out ({exc}); order {order.pk} is still pending and "
            f"the request may be retried with the same {HEADER}."
        ) from exc
    except ProviderError as exc:
        raise ProviderFailed(f"The payment provider refused the charge: {exc}") from exc


def _save_success(*, payment: Payment, provider: PaymentProvider) -> None:
    """Insert a successful payment; if the order already has one, give the money back (409)."""
    try:
        with transaction.atomic():
            payment.save()
    except IntegrityError as exc:
        # The order lock makes this unreachable in normal operation; if another writer got
        # past it, the database refuses the second success and the customer is not charged.
        try:
            provider.refund(provider_reference=payment.provider_reference, amount=payment.amount)
        except ProviderError:
            logger.exception("Could not refund duplicate charge %s", payment.provider_reference)
        raise Conflict(
            f"Order {payment.order_id} already has a successful payment; this charge was refunded.",
            code="order_already_paid",
        ) from exc


def purge_expired_idempotency_records(*, now: datetime | None = None) -> int:
    """Delete the Idempotency-Key records older than the retention; return how many.

    `STRANGLER_IDEMPOTENCY_RETENTION_S` (24 h by default, as payment providers keep keys). The
    outbox relay runs this at each cleanup (`OUTBOX_CLEANUP_EXTRA`). A retry with an expired key
    is a new request: for a paid order it gets 409, so it never charges twice.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.STRANGLER_IDEMPOTENCY_RETENTION_S)
    expired = IdempotencyRecord.objects.filter(created_at__lt=cutoff)
    return delete_in_batches(expired, batch=_PURGE_BATCH, max_batches=_PURGE_MAX_BATCHES)
