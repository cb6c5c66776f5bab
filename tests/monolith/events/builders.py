"""Make real events for subscriber tests: run the monolith's services, read back the envelopes."""

from __future__ import annotations

from outbox.envelope import Envelope
from outbox.models import OutboxEvent

ITEMS = [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.50"}]
SUCCEED_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"


def envelopes(event_type: str | None = None) -> list[Envelope]:
    """Return the outbox's events (of one type when given) as envelopes, in write order."""
    rows = OutboxEvent.objects.order_by("id")
    if event_type is not None:
        rows = rows.filter(event_type=event_type)
    return [Envelope.from_row(row) for row in rows]


def place(user, items=ITEMS):
    """Place an order of `items`, each stocked in the catalogue at its unit_price first."""
    from monolith.orders.services import order_create
    from tests.catalogue import stocked

    return order_create(user=user, items=stocked(items))


def pay(user, order, card: str = SUCCEED_CARD, key: str | None = None):
    from monolith.payments.services import payment_create

    key = key or f"key-{order.pk}-{card}"
    return payment_create(
        user=user, order_id=order.pk, card_number=card, idempotency_key=key,
        request_fingerprint=f"fp-{key}",
    ).payment  # fmt: skip


def ship(order):
    from monolith.orders.services import order_ship

    return order_ship(order_id=order.pk)


def refund(user, payment):
    from monolith.payments.services import payment_refund

    return payment_refund(user=user, payment_id=payment.pk)
