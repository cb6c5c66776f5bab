"""Shapes of the payments API: what a client may send, and what it gets back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from service_kit.payment_cards import CardNumberField, StrictUUIDField

from .models import Payment, PaymentStatus


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
