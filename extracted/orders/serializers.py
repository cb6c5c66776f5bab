"""Shapes of the orders API: the monolith's, field for field, with the catalogue contract.

A line names a `sku` and a `quantity`; its price comes from the catalogue. Fields the server
owns (id, status, total, currency, timestamps; a line's unit_price and line_total) are refused
with 400 naming each one, so a client that believes it set a price learns at once it did not.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import RegexValidator
from rest_framework import serializers

from .models import OrderStatus, OrderView, Product

MAX_LINES = 100
MAX_QUANTITY = 10_000
SKU_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

SERVER_OWNED_ORDER_FIELDS = (
    "id",
    "user",
    "status",
    "total",
    "currency",
    "created_at",
    "updated_at",
)
SERVER_OWNED_ITEM_FIELDS = ("unit_price", "line_total")


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, float):
        return "a fractional number" if value != int(value) else "a number with a decimal point"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON integer: no "3", 2.5, 3.0 or true."""

    default_error_messages = {"invalid": "A whole number is required; got {kind} instead."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid", kind=_json_kind(data))
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Text that must arrive as a JSON string: 123 is not silently turned into "123"."""

    default_error_messages = {"invalid": "A string is required; got {kind} instead."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", kind=_json_kind(data))
        return super().to_internal_value(data)


class RefuseServerOwnedMixin:
    """Refuse, with 400 naming each one, the fields in `server_owned` that a client sent."""

    server_owned: tuple[str, ...] = ()

    def to_internal_value(self, data):
        refused = {}
        if isinstance(data, dict):
            refused = {
                name: [f"'{name}' is set by the server; do not send it."]
                for name in self.server_owned
                if name in data
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from exc
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


class OrderItemInputSerializer(RefuseServerOwnedMixin, serializers.Serializer):
    server_owned = SERVER_OWNED_ITEM_FIELDS

    sku = StrictCharField(
        min_length=1,
        max_length=64,
        trim_whitespace=False,
        validators=[
            RegexValidator(
                SKU_PATTERN, message="Use 1-64 letters, digits, dots, underscores or hyphens."
            )
        ],
    )
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderCreateInputSerializer(RefuseServerOwnedMixin, serializers.Serializer):
    server_owned = SERVER_OWNED_ORDER_FIELDS

    items = OrderItemInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class OrderListFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)


class OrderItemOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    line_total = serializers.SerializerMethodField()

    def get_line_total(self, item) -> str:
        return f"{Decimal(item['unit_price']) * item['quantity']:.2f}"


class OrderOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="order_id", read_only=True)
    items = OrderItemOutputSerializer(many=True, read_only=True)

    class Meta:
        model = OrderView
        fields = ["id", "status", "total", "currency", "items", "created_at", "updated_at"]
        read_only_fields = fields


class StatusCountsSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    total = serializers.IntegerField()


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["sku", "name", "unit_price"]
        read_only_fields = fields


class OrderErrorSerializer(serializers.Serializer):
    """The JSON error contract of service_kit.errors, for the schema."""

    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(required=False)
