"""Ask the orders owner (the monolith, at step 1) about one order, as the caller.

`GET {STRANGLER_ORDERS_URL}/api/orders/{id}/` with the caller's own credentials forwarded
(`Authorization`, and `X-Request-ID` to follow the request), so the owner applies its own rule:
someone else's order does not exist. The caller's `X-Strangler-Identity` is not forwarded: the
proxy signed it for this service, method and path, so any other service refuses it. Asked
before every charge and refund, so money never moves on a replica that has not heard yet of a
cancel or a shipment (`replicas.order_replica_refresh`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings

FORWARDED = ("Authorization", "X-Request-ID")


class OrdersOwnerUnavailable(Exception):
    """The orders owner did not give a usable answer (down, slow, 5xx, refused our call)."""


@dataclass(frozen=True)
class OwnedOrder:
    """The fields of an order the payments service needs."""

    order_id: uuid.UUID
    status: str
    total: Decimal
    currency: str


def order_fetch(*, order_id: uuid.UUID, headers: Mapping[str, str]) -> OwnedOrder | None:
    """Return the caller's order from its owner, None if the owner says it does not exist."""
    url = f"{settings.STRANGLER_ORDERS_URL.rstrip('/')}/api/orders/{order_id}/"
    forwarded = {name: headers[name] for name in FORWARDED if headers.get(name)}
    try:
        response = requests.get(url, headers=forwarded, timeout=settings.STRANGLER_ORDERS_TIMEOUT_S)
    except requests.RequestException as exc:
        raise OrdersOwnerUnavailable(f"GET {url} failed: {exc.__class__.__name__}") from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise OrdersOwnerUnavailable(f"GET {url} answered {response.status_code}")
    try:
        body = response.json()
        return OwnedOrder(
            order_id=uuid.UUID(str(body["id"])),
            status=str(body["status"]),
            total=Decimal(str(body["total"])),
            currency=str(body["currency"]),
        )
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise OrdersOwnerUnavailable(f"GET {url} answered an unreadable order: {exc!r}") from exc
