"""The payment provider boundary; it lives in `service_kit.payment_provider`, shared by both halves.

Re-exported here so the monolith's imports and its `STRANGLER_PAYMENT_PROVIDER` default
(`monolith.payments.provider.SimulatedProvider`) keep working unchanged.
"""

from service_kit.payment_provider import (
    DECLINE_CARD,
    INSUFFICIENT_FUNDS_CARD,
    SUCCEED_CARD,
    TIMEOUT_CARD,
    ChargeResult,
    PaymentProvider,
    ProviderError,
    ProviderTimeout,
    RefundResult,
    SimulatedProvider,
    get_provider,
)

__all__ = [
    "DECLINE_CARD",
    "INSUFFICIENT_FUNDS_CARD",
    "SUCCEED_CARD",
    "TIMEOUT_CARD",
    "ChargeResult",
    "PaymentProvider",
    "ProviderError",
    "ProviderTimeout",
    "RefundResult",
    "SimulatedProvider",
    "get_provider",
]
