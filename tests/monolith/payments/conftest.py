"""Fixtures of the payments tests: orders made with the ORM, and a provider that counts calls."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from monolith.payments.provider import DECLINE_CARD, SUCCEED_CARD, TIMEOUT_CARD

from .recording import RecordingProvider

__all__ = ["DECLINE_CARD", "SUCCEED_CARD", "TIMEOUT_CARD"]

_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """Hash test users' passwords cheaply: these tests are about money, not logins."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def provider(settings) -> type[RecordingProvider]:
    """Make every payment in these tests go through the counting provider, instantly."""
    settings.STRANGLER_PAYMENT_PROVIDER = "tests.monolith.payments.recording.RecordingProvider"
    settings.STRANGLER_PAYMENT_LATENCY_MS = 0
    settings.STRANGLER_PAYMENT_TIMEOUT_S = 5.0
    RecordingProvider.reset()
    yield RecordingProvider
    RecordingProvider.reset()


@pytest.fixture
def make_order(db):
    """Create an order directly: make_order(user, total="25.00", status="pending")."""
    from monolith.orders.models import Order

    def make(user, total: str = "25.00", status: str = "pending", currency: str = "EUR"):
        return Order.objects.create(
            user=user, total=Decimal(total), status=status, currency=currency
        )

    return make


@pytest.fixture
def order(make_order, user):
    return make_order(user)


@pytest.fixture
def pay():
    """POST /api/payments/: pay(client, order_id, card=SUCCEED_CARD, key=None, **extra_body)."""

    def do(client, order_id, card: str = SUCCEED_CARD, key: str | None = None, **extra):
        key = key or f"key-{next(_keys)}"
        body = {"order_id": str(order_id), "card_number": card, **extra}
        return client.post("/api/payments/", body, format="json", headers={"Idempotency-Key": key})

    return do
