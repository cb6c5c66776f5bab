"""Shapes of the orders API: what a client may send, and what it gets back.

Money goes out as a decimal string with two places. A line names a `sku` and a `quantity`; its
price comes from the catalogue. Fields the server owns (id, status, total, currency, timestamps,
a line's unit_price and line_total) are refused with 400 when a client sends them, so a client
that believes it set a price learns at once that it did not.
"""

from __future__ import annotations

from rest_framework import serializers

from .models import Order, OrderItem, OrderStatus, Product, sku_validator

MAX_LINES = 100
MAX_QUANTITY = 10_000

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


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON integer: no "3", 2.5, 3.0 or true."""

    default_error_messages = {
        "invalid": "A whole number is required; got {kind} instead.",
    }

    def to_internal_value(self, data):
        # bool is an int subclass in Python; JSON's true is not a quantity.
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid", kind=_json_kind(data))
        return super().to_internal_value(data)


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


class StrictCharField(serializers.CharField):
    """Text that must arrive as a JSON string: 123 is not silently turned into "123"."""

    default_error_messages = {"invalid": "A string is required; got {kind} instead."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", kind=_json_kind(data))
        return super().to_internal_value(data)


class RefuseServerOwnedMixin:
    """Refuse, with 400 naming each one, the fields in `server_owned` that a client sent.

    The refusals are merged with the ordinary field errors so one response lists them all.
    """

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
        validators=[sku_validator],
        help_text="A product of the catalogue (`GET /api/products/`).",
    )
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderCreateInputSerializer(RefuseServerOwnedMixin, serializers.Serializer):
    server_owned = SERVER_OWNED_ORDER_FIELDS

    items = OrderItemInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class OrderListFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)


class OrderItemOutputSerializer(serializers.ModelSerializer):
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = OrderItem
        fields = ["sku", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


class OrderOutputSerializer(serializers.ModelSerializer):
    items = OrderItemOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "status", "total", "currency", "items", "created_at", "updated_at"]
        read_only_fields = fields


class ProductSerializer(serializers.ModelSerializer):
    """A product of the catalogue as `GET /api/products/` shows it."""

    class Meta:
        model = Product
        fields = ["sku", "name", "unit_price"]
        read_only_fields = fields


class OrderErrorSerializer(serializers.Serializer):
    """The JSON error contract of service_kit.errors, for the schema."""

    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(required=False)


class OrderTransitionErrorSerializer(OrderErrorSerializer):
    """A 409 for an illegal status change: names the state it was in and the one refused."""

    from_ = serializers.CharField()
    to = serializers.CharField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields
