"""Shapes of the payments API: what a client may send, and what it gets back."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from .models import Payment, PaymentStatus

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


class PaymentCreateSerializer(serializers.Serializer):
    """The body of POST /api/payments/; the amount is the order's total, never the client's."""

    order_id = StrictUUIDField()
    card_number = CardNumberField()

    # Why a field the client might think it controls is refused, rather than silently ignored.
    REFUSED = {
        "amount": "The amount is the order's total; it cannot be sent.",
        "currency": "The currency is the order's currency; it cannot be sent.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail) if isinstance(exc.detail, Mapping) else {}
            if not errors:
                raise
            value = {}
        if isinstance(data, Mapping):
            for name in sorted(set(data) - set(self.fields)):
                errors[name] = [self.REFUSED.get(name, "Unknown field.")]
        if errors:
            raise serializers.ValidationError(errors)
        return value


class PaymentSerializer(serializers.ModelSerializer):
    """A payment as the API shows it; the card number itself is never stored or shown."""

    order_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "order_id",
            "amount",
            "currency",
            "status",
            "card_last4",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PaymentListQuerySerializer(serializers.Serializer):
    """The filters of GET /api/payments/."""

    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)
    order_id = serializers.UUIDField(required=False)


class PaymentErrorSerializer(serializers.Serializer):
    """The JSON error contract (documentation only; see service_kit.errors)."""

    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(required=False)


class CardDeclinedSerializer(PaymentErrorSerializer):
    """402: the card was declined; the failed payment was recorded."""

    decline_code = serializers.CharField()
    payment = PaymentSerializer()
