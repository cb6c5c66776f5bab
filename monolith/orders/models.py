"""Orders and their line items. Status changes only through `orders.services`."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

# One rule for a sku wherever one is written: the catalogue, its CSV import, an order's line.
SKU_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
SKU_MESSAGE = "Use 1-64 letters, digits, dots, underscores or hyphens."
sku_validator = RegexValidator(SKU_PATTERN, message=SKU_MESSAGE)


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


class Order(models.Model):
    # UUIDs, not sequences: an extracted service can create ids that never collide with ours.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING, db_index=True
    )
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["user", "status", "-created_at"])]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"


class OrderItem(models.Model):
    """One line of an order; `unit_price` is the catalogue's price when the order was placed."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="orderitem_qty_pos"),
            models.CheckConstraint(
                condition=models.Q(unit_price__gte=0), name="orderitem_price_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def line_total(self):
        return self.quantity * self.unit_price


class Product(models.Model):
    """The catalogue: the only source of prices. Orders name a sku; the price is copied from here.

    Filled by a data migration (a small demo catalogue), the CSV import and `manage.py seed`.
    """

    sku = models.CharField(max_length=64, unique=True, validators=[sku_validator])
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(unit_price__gte=0), name="product_price_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return self.sku
