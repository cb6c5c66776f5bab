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
* Its ledger is one SQLite file shared by every process on the machine
  (``STRANGLER_PAYMENT_LEDGER``, default ``$STRANGLER_VAR_DIR/simulated-provider.sqlite3``),
  as a real processor is one system behind every process and both halves.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from service_kit.env import var_dir

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

    def charge(
        self, *, amount: Decimal, currency: str, card_number: str, reference: str
    ) -> ChargeResult:
        """Charge by test card; the same `reference` returns the first answer again."""
        self._wait(timeout_card=card_number == TIMEOUT_CARD)
        decline = _DECLINES.get(card_number, "")
        candidate = ChargeResult(
            succeeded=not decline,
            provider_reference=f"sim_ch_{uuid.uuid4().hex[:24]}",
            decline_code=decline,
        )
        with _ledger() as db:
            db.execute(
                "INSERT OR IGNORE INTO charges (reference, provider_reference, succeeded,"
                " decline_code) VALUES (?, ?, ?, ?)",
                (reference, candidate.provider_reference, int(candidate.succeeded), decline),
            )
            row = db.execute(
                "SELECT provider_reference, succeeded, decline_code FROM charges"
                " WHERE reference = ?",
                (reference,),
            ).fetchone()
        return ChargeResult(succeeded=bool(row[1]), provider_reference=row[0], decline_code=row[2])

    def refund(self, *, provider_reference: str, amount: Decimal) -> RefundResult:
        """Refund a successful charge this provider made, once."""
        self._wait(timeout_card=False)
        with _ledger() as db:
            charge = db.execute(
                "SELECT succeeded FROM charges WHERE provider_reference = ?",
                (provider_reference,),
            ).fetchone()
            if charge is None or not charge[0]:
                raise ProviderError(f"No successful charge {provider_reference!r} to refund.")
            refund_reference = f"sim_re_{uuid.uuid4().hex[:24]}"
            inserted = db.execute(
                "INSERT OR IGNORE INTO refunds (provider_reference, refund_reference)"
                " VALUES (?, ?)",
                (provider_reference, refund_reference),
            ).rowcount
            if not inserted:
                raise ProviderError(f"Charge {provider_reference!r} was already refunded.")
        return RefundResult(succeeded=True, provider_reference=refund_reference)

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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    reference TEXT PRIMARY KEY, provider_reference TEXT UNIQUE NOT NULL,
    succeeded INTEGER NOT NULL, decline_code TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    provider_reference TEXT PRIMARY KEY, refund_reference TEXT NOT NULL
);
"""


def ledger_path() -> Path:
    """Return the simulated provider's ledger file: STRANGLER_PAYMENT_LEDGER, else under var."""
    configured = getattr(settings, "STRANGLER_PAYMENT_LEDGER", "")
    return Path(configured) if configured else var_dir() / "simulated-provider.sqlite3"


_ledgers_ready: set[Path] = set()


@contextmanager
def _ledger() -> Iterator[sqlite3.Connection]:
    """Open the ledger in one immediate (write-locked) transaction.

    A real processor is one remote system that every process of every half talks to; the
    simulation keeps its ledger in one SQLite file for the same reason, so a refund served by
    another gunicorn worker, or by the other half, finds the charge.
    """
    path = ledger_path()
    fresh = path not in _ledgers_ready  # set up once per file and process, not per charge
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        if fresh:
            db.executescript(_SCHEMA)
            _ledgers_ready.add(path)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()


def get_provider() -> PaymentProvider:
    """Return the provider named by settings.STRANGLER_PAYMENT_PROVIDER (a dotted path)."""
    return import_string(settings.STRANGLER_PAYMENT_PROVIDER)()
