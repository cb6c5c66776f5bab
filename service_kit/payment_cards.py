"""Card-number and id fields of the payments API, identical on every half that takes payments.

Both the monolith's `payments.serializers` and the extracted payments service use these, so the
two halves cannot drift apart on what a valid card is. A card number is a JSON string of 12 to 19
ASCII digits passing the Luhn check; an order id is a UUID sent as a string (never a number).
"""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import serializers

CARD_MIN_DIGITS = 12
CARD_MAX_DIGITS = 19


def luhn_valid(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn checksum card numbers carry."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class CardNumberField(serializers.CharField):
    """A card number as a JSON string of 12 to 19 digits that passes the Luhn check."""

    default_error_messages = {
        "not_a_string": "A card number must be a string of digits; got {kind} instead.",
        "not_digits": "A card number must contain digits only (no spaces or dashes).",
        "length": "A card number has 12 to 19 digits; this one has {length}.",
        "luhn": "This card number fails the Luhn check; check it for a typo.",
    }

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        # CharField would turn 4242424242424242 (a JSON number) into a string; a card number
        # is an identifier, not a quantity, so its type is part of the contract.
        if not isinstance(data, str):
            self.fail("not_a_string", kind=type(data).__name__)
        value = super().to_internal_value(data)
        if not value.isascii() or not value.isdigit():
            self.fail("not_digits")
        if not CARD_MIN_DIGITS <= len(value) <= CARD_MAX_DIGITS:
            self.fail("length", length=len(value))
        if not luhn_valid(value):
            self.fail("luhn")
        return value


class StrictUUIDField(serializers.UUIDField):
    """A UUID sent as a string; DRF's own field would also turn an integer into a UUID."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
