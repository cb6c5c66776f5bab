"""The payment provider boundary: the interface a real processor implements, and its honest twin.

Shared by both halves that take payments (the monolith's `payments` app re-exports it from
`monolith.payments.provider`; `extracted.payments` imports it from here): it stands in for a
third-party SDK, which belongs to neither half, and must answer identically on both.

`PaymentProvider` is what each half's `payments.services` calls; `get_provider()` builds the one
named by the dotted path in ``settings.STRANGLER_PAYMENT_PROVIDER``. A real adapter (Stripe,
Adyen...) implements the two methods and maps its SDK's errors onto `ProviderError` and
`ProviderTimeout`.

`SimulatedProvider` answers deterministically by test card, following the usual convention:

=====================  ==========================================================
card number            outcome
=====================  ==========================================================
``4242424242424242``   charge succeeds
``4000000000000002``   declined (``generic_decline``)
``4000000000009995``   declined (``insufficient_funds``)
``4000000000000119``   times out: raises `ProviderTimeout`
any other valid card   charge succeeds (any Luhn-valid number of 12 to 19 digits)
=====================  ==========================================================

* Latency: every call waits ``STRANGLER_PAYMENT_LATENCY_MS`` first (0 by default: instant).
* Timeout: the timeout card makes the caller wait ``STRANGLER_PAYMENT_TIMEOUT_S`` before
  `ProviderTimeout` only when latency is configured; with no latency it raises at once, so tests
  stay fast and deterministic. A latency longer than the timeout times out every call.
* Idempotent by ``reference``: charging twice with one reference returns the first result and
  moves money once, as real processors do with their idempotency keys. This is what makes a
  client's retry after a timeout safe.
* Refunds of a charge it made succeed once; anything else raises `ProviderError`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

SUCCEED_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
TIMEOUT_CARD = "4000000000000119"

_DECLINES = {DECLINE_CARD: "generic_decline", INSUFFICIENT_FUNDS_CARD: "insufficient_funds"}


class ProviderError(Exception):
    """The provider refused or failed a call for a reason other than the card's owner."""


class ProviderTimeout(ProviderError):
    """The provider did not answer in time; whether money moved is unknown to the caller."""


@dataclass(frozen=True)
class ChargeResult:
    """The provider's answer to a charge: approved with a reference, or declined with a code."""

    succeeded: bool
    provider_reference: str
    decline_code: str = ""


@dataclass(frozen=True)
class RefundResult:
    """The provider's answer to a refund."""

    succeeded: bool
    provider_reference: str


@runtime_checkable
class PaymentProvider(Protocol):
    """What a payment processor must offer the payments app."""

    def charge(
        self, *, amount: Decimal, currency: str, card_number: str, reference: str
    ) -> ChargeResult:
        """Charge `amount` to the card; the same `reference` must never charge twice."""
        ...

    def refund(self, *, provider_reference: str, amount: Decimal) -> RefundResult:
        """Refund `amount` of the charge known to the provider as `provider_reference`."""
        ...


class SimulatedProvider:
    """A deterministic in-process provider driven by test card numbers (see module docstring)."""

    def __init__(self, *, latency_ms: int | None = None, timeout_s: float | None = None):
        # Read at construction, not import, so tests and deployments can change the settings.
        self.latency_s = (
            settings.STRANGLER_PAYMENT_LATENCY_MS if latency_ms is None else latency_ms
        ) / 1000
        self.timeout_s = settings.STRANGLER_PAYMENT_TIMEOUT_S if timeout_s is None else timeout_s

    # The provider's own ledger outlives one instance, as a real processor's would: charges by
    # the caller's reference, the references of successful charges, and those refunded.
    _charges: dict[str, ChargeResult] = {}
    _succeeded: set[str] = set()
    _refunded: set[str] = set()
    _ledger_lock = threading.Lock()

    def charge(
        self, *, amount: Decimal, currency: str, card_number: str, reference: str
    ) -> ChargeResult:
        """Charge by test card; the same `reference` returns the first answer again."""
        self._wait(timeout_card=card_number == TIMEOUT_CARD)
        with self._ledger_lock:
            if reference in self._charges:
                return self._charges[reference]
            decline = _DECLINES.get(card_number, "")
            result = ChargeResult(
                succeeded=not decline,
                provider_reference=f"sim_ch_{uuid.uuid4().hex[:24]}",
                decline_code=decline,
            )
            self._charges[reference] = result
            if result.succeeded:
                self._succeeded.add(result.provider_reference)
            return result

    def refund(self, *, provider_reference: str, amount: Decimal) -> RefundResult:
        """Refund a successful charge this provider made, once."""
        self._wait(timeout_card=False)
        with self._ledger_lock:
            if provider_reference not in self._succeeded:
                raise ProviderError(f"No successful charge {provider_reference!r} to refund.")
            if provider_reference in self._refunded:
                raise ProviderError(f"Charge {provider_reference!r} was already refunded.")
            self._refunded.add(provider_reference)
        return RefundResult(succeeded=True, provider_reference=f"sim_re_{uuid.uuid4().hex[:24]}")

    def _wait(self, *, timeout_card: bool) -> None:
        """Spend the configured latency, or time out as a client with `timeout_s` would."""
        if timeout_card:
            if self.latency_s > 0:
                time.sleep(self.timeout_s)
            raise ProviderTimeout(f"The provider did not answer within {self.timeout_s:g}s.")
        if self.latency_s > self.timeout_s:
            time.sleep(self.timeout_s)
            raise ProviderTimeout(f"The provider did not answer within {self.timeout_s:g}s.")
        if self.latency_s > 0:
            time.sleep(self.latency_s)


def get_provider() -> PaymentProvider:
    """Return the provider named by settings.STRANGLER_PAYMENT_PROVIDER (a dotted path)."""
    return import_string(settings.STRANGLER_PAYMENT_PROVIDER)()
