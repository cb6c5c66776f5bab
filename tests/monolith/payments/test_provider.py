"""The simulated provider: deterministic by card, idempotent by reference, honest timeouts."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from monolith.payments.provider import (
    DECLINE_CARD,
    SUCCEED_CARD,
    TIMEOUT_CARD,
    PaymentProvider,
    ProviderError,
    ProviderTimeout,
    SimulatedProvider,
    get_provider,
)
from service_kit.payment_cards import luhn_valid


def charge(provider, card, reference=None):
    return provider.charge(
        amount=Decimal("10.00"),
        currency="EUR",
        card_number=card,
        reference=reference or uuid.uuid4().hex,
    )


def test_simulated_provider_implements_the_protocol():
    assert isinstance(SimulatedProvider(), PaymentProvider)


def test_settings_choose_the_provider_by_dotted_path(settings):
    settings.STRANGLER_PAYMENT_PROVIDER = "monolith.payments.provider.SimulatedProvider"
    assert type(get_provider()) is SimulatedProvider


@pytest.mark.parametrize(
    ("card", "succeeded", "decline_code"),
    [
        (SUCCEED_CARD, True, ""),
        ("5555555555554444", True, ""),
        (DECLINE_CARD, False, "generic_decline"),
        ("4000000000009995", False, "insufficient_funds"),
    ],
)
def test_outcome_is_decided_by_the_test_card(card, succeeded, decline_code):
    result = charge(SimulatedProvider(latency_ms=0), card)

    assert result.succeeded is succeeded
    assert result.decline_code == decline_code
    assert result.provider_reference.startswith("sim_ch_")


def test_timeout_card_raises_at_once_without_latency():
    provider = SimulatedProvider(latency_ms=0, timeout_s=30)
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        charge(provider, TIMEOUT_CARD)

    assert time.monotonic() - started < 1


def test_timeout_card_waits_for_the_timeout_when_latency_is_configured():
    provider = SimulatedProvider(latency_ms=1, timeout_s=0.05)
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        charge(provider, TIMEOUT_CARD)

    assert time.monotonic() - started >= 0.05


def test_latency_is_spent_on_every_call():
    provider = SimulatedProvider(latency_ms=30, timeout_s=5)
    started = time.monotonic()

    charge(provider, SUCCEED_CARD)

    assert time.monotonic() - started >= 0.03


def test_latency_beyond_the_timeout_times_out_any_card():
    with pytest.raises(ProviderTimeout):
        charge(SimulatedProvider(latency_ms=50, timeout_s=0.01), SUCCEED_CARD)


def test_provider_reads_latency_and_timeout_from_settings(settings):
    settings.STRANGLER_PAYMENT_LATENCY_MS = 250
    settings.STRANGLER_PAYMENT_TIMEOUT_S = 1.5

    provider = SimulatedProvider()

    assert (provider.latency_s, provider.timeout_s) == (0.25, 1.5)


def test_same_reference_charges_once():
    provider = SimulatedProvider(latency_ms=0)
    reference = uuid.uuid4().hex

    first = charge(provider, SUCCEED_CARD, reference)
    again = charge(SimulatedProvider(latency_ms=0), SUCCEED_CARD, reference)

    assert again == first


def test_a_successful_charge_can_be_refunded_once():
    provider = SimulatedProvider(latency_ms=0)
    charged = charge(provider, SUCCEED_CARD)

    refund = provider.refund(provider_reference=charged.provider_reference, amount=Decimal(10))

    assert refund.succeeded
    with pytest.raises(ProviderError, match="already refunded"):
        provider.refund(provider_reference=charged.provider_reference, amount=Decimal(10))


def test_a_declined_or_unknown_charge_cannot_be_refunded():
    provider = SimulatedProvider(latency_ms=0)
    declined = charge(provider, DECLINE_CARD)

    for reference in (declined.provider_reference, "sim_ch_never"):
        with pytest.raises(ProviderError, match="No successful charge"):
            provider.refund(provider_reference=reference, amount=Decimal(10))


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        (SUCCEED_CARD, True),
        (DECLINE_CARD, True),
        (TIMEOUT_CARD, True),
        ("4000000000009995", True),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("4242424242424241", False),
        ("1234567812345678", False),
    ],
)
def test_luhn_check(number, valid):
    assert luhn_valid(number) is valid
