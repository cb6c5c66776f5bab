"""Paying and refunding orders in the payments service: the monolith's rules on its own tables.

Locking, in the order every path takes its locks (so two paths never deadlock):

1. the `IdempotencyRecord` of (user, key): inserted, or locked FOR UPDATE if it exists. A second
   request with the same key waits here until the first commits, then replays its answer; if the
   first rolled back (provider timeout), the second goes ahead as if it were first.
2. the `OrderReplica` row FOR UPDATE: two payments of one order with different keys queue here;
   the second sees the order paid and gets 409.
3. the `Payment` row (inserted, or locked FOR UPDATE for a refund).

Before any lock, the orders owner is asked for the order's current status and the replica moved
forward to it (`replicas.order_replica_confirm`), so an order cancelled on the monolith a moment
ago is refused here even if `order.cancelled` is still in flight; a refund likewise learns of a
shipment. Only when the owner cannot be asked does the replica decide alone (with a bounded wait
for an order it has never heard of). The window left: the order changes on the owner between its
answer and this commit (a cancel racing a payment across the halves); the monolith's consumer
then records the payment against the cancelled order, logs it, and reconcile and the order
status show it. The provider is called while the order replica is locked; the partial unique
constraint `payments_service_one_success_per_order` stands behind the lock. Stored for replay:
201 and 402. Not stored: 404, 409, 422, 502, 503, 504 (rolled back).
The charge `reference` is derived from (user, order, key) exactly as the monolith derives it, so
a retry that lands on the other half is still the same charge at a real provider.

Events: `payment.succeeded|failed|refunded` are written to this service's outbox in the same
transaction; the orders owner moves the order on them (the replica is moved here at once).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from outbox.relay import delete_in_batches
from service_kit.errors import Conflict, IdempotencyMismatch, InvalidTransition, NotFound
from service_kit.payment_provider import (
    ChargeResult,
    PaymentProvider,
    ProviderError,
    ProviderTimeout,
    get_provider,
)

from .errors import OrderNotPending, ProviderFailed, ProviderTimedOut
from .events import payment_failed_publish, payment_refunded_publish, payment_succeeded_publish
from .idempotency import HEADER
from .models import (
    IdempotencyRecord,
    OrderReplica,
    OrderStatus,
    Payment,
    PaymentStatus,
    ReplicaSource,
)
from .order_states import can_transition
from .replicas import order_replica_apply, order_replica_confirm, order_replica_refresh

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
    user_id: int,
    order_id: uuid.UUID,
    card_number: str,
    idempotency_key: str,
    request_fingerprint: str,
    headers: Mapping[str, str] | None = None,
) -> PaymentAttempt:
    """Charge the user's pending order its total once per idempotency key, and record the result.

    Returns 201 with the payment (order now paid) or 402 card_declined (a failed payment is
    recorded, the order stays pending); both are stored and replayed for the same key. Raises
    NotFound (404), OrderNotPending (409), IdempotencyMismatch (422), ProviderFailed (502),
    OrdersUnavailable (503) or ProviderTimedOut (504); after a raise nothing is stored.
    `headers` are the caller's, forwarded to the orders owner when confirming the order's status.
    """
    unresolved = order_replica_confirm(order_id=order_id, user_id=user_id, headers=headers or {})
    with transaction.atomic():
        record, _ = IdempotencyRecord.objects.select_for_update().get_or_create(
            user_id=user_id,
            key=idempotency_key,
            defaults={"request_fingerprint": request_fingerprint},
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
        if unresolved is not None:
            raise unresolved

        order = _owned_order_lock(user_id=user_id, order_id=order_id)
        if not can_transition(order.status, OrderStatus.PAID):
            raise OrderNotPending(order_id=order.pk, current=order.status)
        provider = get_provider()
        result = _charge(
            provider=provider,
            order=order,
            card_number=card_number,
            reference=_charge_reference(user_id=user_id, key=idempotency_key, order=order),
        )
        now = timezone.now()
        payment = Payment(
            order_id=order.order_id,
            user_id=user_id,
            amount=order.total,
            currency=order.currency,
            status=PaymentStatus.SUCCEEDED if result.succeeded else PaymentStatus.FAILED,
            card_last4=card_number[-4:],
            provider_reference=result.provider_reference,
            failure_reason=result.decline_code,
            created_at=now,
            updated_at=now,
        )
        if result.succeeded:
            _save_success(payment=payment, provider=provider)
            _replica_move(order=order, to=OrderStatus.PAID)
            payment_succeeded_publish(payment=payment)
            status_code, body = status.HTTP_201_CREATED, _serialize(payment)
        else:
            payment.save(force_insert=True)
            payment_failed_publish(payment=payment)
            status_code = status.HTTP_402_PAYMENT_REQUIRED
            body = {
                "error": "card_declined",
                "detail": f"The card ending {payment.card_last4} was declined "
                f"({result.decline_code}); the order is still pending.",
                "decline_code": result.decline_code,
                "payment": _serialize(payment),
            }
        record.response_status = status_code
        record.response_body = body
        record.payment = payment
        record.save(update_fields=["response_status", "response_body", "payment"])
        # Answer with the body as stored (jsonb orders keys its own way), so the first answer
        # and every replay are the same bytes, not just equal JSON.
        body = IdempotencyRecord.objects.values_list("response_body", flat=True).get(pk=record.pk)
    return PaymentAttempt(status_code=status_code, body=body, payment=payment)


def payment_refund(
    *, user_id: int, payment_id: uuid.UUID | str, headers: Mapping[str, str] | None = None
) -> Payment:
    """Refund the user's succeeded payment in full, and mark its paid order refunded.

    Raises NotFound (404), InvalidTransition (409) when the payment did not succeed or the order
    is not paid (e.g. shipped), ProviderTimedOut (504) or ProviderFailed (502); on any error
    nothing changes. `headers` are the caller's, forwarded to the orders owner to learn the
    order's current status (a shipment whose `order.shipped` is still in flight) before refunding.
    """
    try:
        order_id = (
            Payment.objects.filter(user_id=user_id)
            .values_list("order_id", flat=True)
            .get(pk=payment_id)
        )
    except (Payment.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(f"Payment {payment_id} does not exist.") from None
    # Whatever the owner says (or if it cannot be asked), the checks below decide on the
    # replica; asking first only makes it current. A payment's order never changes.
    order_replica_refresh(order_id=order_id, user_id=user_id, headers=headers or {})
    with transaction.atomic():
        # Order first, then payment: the same order payment_create takes its locks in.
        order = OrderReplica.objects.select_for_update().filter(pk=order_id).first()
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.SUCCEEDED:
            raise InvalidTransition("payment", payment.status, PaymentStatus.REFUNDED)
        if order is None:
            # A payment copied from the monolith whose order was never replicated: a paid
            # order is what its succeeded payment implies.
            # order_replica_apply, not create: an order.placed consumed at this very moment
            # would make a plain insert fail on the primary key (a 500).
            order = order_replica_apply(
                order_id=payment.order_id,
                user_id=payment.user_id,
                status=OrderStatus.PAID,
                total=payment.amount,
                currency=payment.currency,
                source=ReplicaSource.PAYMENT,
            )
        if not can_transition(order.status, OrderStatus.REFUNDED):
            raise InvalidTransition("order", order.status, OrderStatus.REFUNDED)
        try:
            get_provider().refund(
                provider_reference=payment.provider_reference, amount=payment.amount
            )
        except ProviderTimeout as exc:
            raise ProviderTimedOut(f"The refund timed out at the provider: {exc}") from exc
        except ProviderError as exc:
            raise ProviderFailed(f"The provider refused the refund: {exc}") from exc
        payment.status = PaymentStatus.REFUNDED
        payment.updated_at = timezone.now()
        payment.save(update_fields=["status", "updated_at"])
        _replica_move(order=order, to=OrderStatus.REFUNDED)
        payment_refunded_publish(payment=payment)
    return payment


def _serialize(payment: Payment) -> dict[str, Any]:
    from .serializers import PaymentSerializer

    return PaymentSerializer(payment).data


def _owned_order_lock(*, user_id: int, order_id: uuid.UUID | str) -> OrderReplica:
    """Lock the order's replica if it is the user's; someone else's order does not exist."""
    order = OrderReplica.objects.select_for_update().filter(pk=order_id).first()
    if order is None or order.user_id != user_id:
        raise NotFound(f"Order {order_id} does not exist.")
    return order


def _replica_move(*, order: OrderReplica, to: str) -> None:
    """Move the locked replica to `to` at once; the owner's event confirms it later."""
    order.status = to
    order.source = ReplicaSource.PAYMENT
    order.save(update_fields=["status", "source", "updated_at"])


def _charge_reference(*, user_id: int, key: str, order: OrderReplica) -> str:
    """Name the charge so a retry with the same key is the same charge, on either half."""
    return hashlib.sha256(f"{user_id}:{order.pk}:{key}".encode()).hexdigest()[:40]


def _charge(
    *, provider: PaymentProvider, order: OrderReplica, card_number: str, reference: str
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
            payment.save(force_insert=True)
    except IntegrityError as exc:
        # The replica lock makes this unreachable in normal operation; if another writer got
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
