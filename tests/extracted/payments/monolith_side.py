"""Run the monolith's consumer of the service's payment events; print what happened as JSON.

Started by test_monolith_consumers.py in a subprocess with DJANGO_SETTINGS_MODULE=monolith.settings
and DATABASE_URL pointing at a migrated monolith database: the service's tests never import the
monolith into their own process.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import django

django.setup()

from django.utils import timezone  # noqa: E402

import monolith.payments.consumers  # noqa: E402, F401  (registers the handlers)
from monolith.orders.models import Order  # noqa: E402
from monolith.payments.models import Payment  # noqa: E402
from monolith.users.models import User  # noqa: E402
from outbox.envelope import Envelope  # noqa: E402
from outbox.inbox import event_apply  # noqa: E402
from outbox.models import OutboxEvent  # noqa: E402
from outbox.registry import registry  # noqa: E402


def envelope(event_type, payment, order, sequence, origin="payments", **extra):
    payload = {
        "payment_id": str(payment),
        "order_id": str(order.pk),
        "user_id": order.user_id,
        "amount": f"{order.total:.2f}",
        "currency": order.currency,
        "card_last4": "4242",
        "status": event_type.split(".")[1],
        **extra,
    }
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        version=1,
        aggregate_type="payment",
        aggregate_id=str(payment),
        sequence=sequence,
        occurred_at=timezone.now().isoformat(),
        origin=origin,
        correlation_id=str(uuid.uuid4()),
        causation_id="",
        payload=payload,
    )


def apply(event):
    subscriptions = registry.matching("monolith", event.type)
    return str(event_apply(consumer="monolith", envelope=event, subscriptions=subscriptions))


def main() -> None:
    user = User.objects.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com", password="x")
    order = Order.objects.create(user=user, total=Decimal("30.00"), currency="EUR")
    cancelled = Order.objects.create(user=user, total=Decimal("5.00"), status="cancelled")
    paid_id, late_id, echo_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    created = "2026-01-02T03:04:05.123456+00:00"
    succeeded = envelope(
        "payment.succeeded", paid_id, order, 1, provider_reference="sim_ch_1", created_at=created
    )
    out = {"binding_keys": registry.binding_keys("monolith")}
    out["succeeded"] = apply(succeeded)
    out["again"] = apply(succeeded)
    row = Payment.objects.get(pk=paid_id)
    out["payment"] = [row.status, str(row.amount), row.created_at.isoformat()]
    order.refresh_from_db()
    out["order_after_success"] = order.status
    paid_event = OutboxEvent.objects.get(event_type="order.paid")
    out["order_paid_event"] = [paid_event.origin, paid_event.causation_id == succeeded.id]
    refunded = envelope("payment.refunded", paid_id, order, 2, refunded_at=created)
    out["refunded"] = apply(refunded)
    order.refresh_from_db()
    out["after_refund"] = [Payment.objects.get(pk=paid_id).status, order.status]
    echo = envelope("payment.failed", echo_id, order, 1, origin="monolith", created_at=created,
                    failure_reason="generic_decline")  # fmt: skip
    out["echo"] = apply(echo)
    out["echo_row"] = Payment.objects.filter(pk=echo_id).exists()
    late = envelope("payment.succeeded", late_id, cancelled, 1, provider_reference="r",
                    created_at=created)  # fmt: skip
    out["late"] = apply(late)
    cancelled.refresh_from_db()
    out["late_rows"] = [Payment.objects.filter(pk=late_id).exists(), cancelled.status]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
