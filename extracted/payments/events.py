"""Write the service's payment events through its own outbox, payloads as the schemas say.

Same types and payloads as the monolith writes (`outbox/schemas/payment.*.v1.json`); the origin
is this service (`STRANGLER_SERVICE_NAME = "payments"`), so the monolith applies them and the
service drops them as echoes when they come back. Call inside the change's transaction.atomic().
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import outbox

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

    from .models import Payment


def _money(value) -> str:
    return f"{value:.2f}"


def _payment_payload(payment: Payment) -> dict:
    return {
        "payment_id": payment.pk,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "amount": _money(payment.amount),
        "currency": payment.currency,
        "card_last4": payment.card_last4,
        "status": payment.status,
    }


def payment_succeeded_publish(*, payment: Payment) -> OutboxEvent:
    """Record `payment.succeeded` for a payment the provider accepted."""
    return outbox.publish(
        event_type="payment.succeeded",
        aggregate_type="payment",
        aggregate_id=str(payment.pk),
        payload=_payment_payload(payment)
        | {"provider_reference": payment.provider_reference, "created_at": payment.created_at},
    )


def payment_failed_publish(*, payment: Payment) -> OutboxEvent:
    """Record `payment.failed` for a declined payment that was recorded."""
    return outbox.publish(
        event_type="payment.failed",
        aggregate_type="payment",
        aggregate_id=str(payment.pk),
        payload=_payment_payload(payment)
        | {
            "failure_reason": payment.failure_reason,
            "provider_reference": payment.provider_reference,
            "created_at": payment.created_at,
        },
    )


def payment_refunded_publish(*, payment: Payment) -> OutboxEvent:
    """Record `payment.refunded`; the orders owner moves the order to refunded on it."""
    return outbox.publish(
        event_type="payment.refunded",
        aggregate_type="payment",
        aggregate_id=str(payment.pk),
        payload=_payment_payload(payment) | {"refunded_at": payment.updated_at},
    )
