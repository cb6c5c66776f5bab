"""Errors of the payments service, on top of the shared tree in `service_kit.errors`.

UpstreamUnavailable
├── ProviderTimedOut      504 provider_timeout: the provider did not answer; nothing stored
├── ProviderFailed        502 provider_error: the provider refused the call itself
└── OrdersUnavailable     503 orders_unavailable: the order is not replicated yet and its owner
                          could not be asked; nothing stored, retry with the same key
InvalidTransition
└── OrderNotPending       409 invalid_transition: only a pending order can be paid

The codes, statuses and messages are the monolith's, so a client cannot tell the halves apart.
"""

from __future__ import annotations

from rest_framework import status

from service_kit.errors import InvalidTransition, UpstreamUnavailable


class ProviderTimedOut(UpstreamUnavailable):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    code = "provider_timeout"


class ProviderFailed(UpstreamUnavailable):
    status_code = status.HTTP_502_BAD_GATEWAY
    code = "provider_error"


class OrdersUnavailable(UpstreamUnavailable):
    code = "orders_unavailable"


class OrderNotPending(InvalidTransition):
    """An order that is not pending cannot be paid; the body says which state it is in."""

    def __init__(self, *, order_id, current: str):
        super().__init__("order", current, "paid")
        self.detail = (
            f"Order {order_id} is '{current}', not 'pending': only a pending order can be paid."
        )
