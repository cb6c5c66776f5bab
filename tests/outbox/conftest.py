"""Fixtures of the outbox tests: payloads, a unique broker namespace, and a broker connection."""

from __future__ import annotations

import os
import uuid

import pytest


def order_payload(**overrides) -> dict:
    payload = {
        "order_id": str(uuid.uuid4()),
        "user_id": 1,
        "status": "pending",
        "total": "20.00",
        "currency": "EUR",
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
        "created_at": "2026-01-01T10:00:00+00:00",
    }
    return payload | overrides


@pytest.fixture
def placed_payload():
    return order_payload


def broker_is_amqp() -> bool:
    return os.environ.get("BROKER_URL", "").startswith("amqp")


needs_rabbitmq = pytest.mark.skipif(not broker_is_amqp(), reason="needs BROKER_URL=amqp://...")
