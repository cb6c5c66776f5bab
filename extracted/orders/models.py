"""The service's own tables: the event store, the read models it projects, and its catalogue.

Write side (the truth):
  StoredEvent       one row per order event; `id` is the global position, (stream, version)
                    is unique: that constraint is the optimistic concurrency check
  Snapshot          an order's folded state at some version, taken every N events

Read side (projections of the events; rebuilt from position 0 whenever needed):
  ProjectionState   which generation of the read models serves, and how far a build has got
  OrderView         one row per order and generation: what GET /api/orders/ shows
  StatusCount       per generation and status: how many orders are in it (staff counts)

Also here: the catalogue (`Product`), the daily sales per sku (`SkuDailySales`, built by
replaying the broker's stream) and backfill checkpoints. Users belong to another half and
appear only by id.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


# ---------------------------------------------------------------- write side
class StoredEvent(models.Model):
    # The global position: projections read the log in this order (see eventstore).
    id = models.BigAutoField(primary_key=True)
    stream_id = models.UUIDField()
    version = models.PositiveIntegerField()
    event_type = models.CharField(max_length=64)
    schema_version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField()
    # correlation_id, causation_id, source ("api", "payment", "monolith", "backfill")
    metadata = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stream_id", "version"], name="orders_service_event_stream_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.stream_id}@{self.version}"


class Snapshot(models.Model):
    stream_id = models.UUIDField(primary_key=True)
    version = models.PositiveIntegerField()
    # The layout of `state`; a snapshot of another layout is ignored and the stream replayed.
    state_version = models.PositiveSmallIntegerField()
    state = models.JSONField()
    taken_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Snapshot {self.stream_id}@{self.version}"


# ---------------------------------------------------------------- read side
class ProjectionState(models.Model):
    name = models.CharField(max_length=64, primary_key=True)
    active_generation = models.PositiveIntegerField(default=1)
    # A rebuild in progress: the generation it fills and the last log position it applied.
    building_generation = models.PositiveIntegerField(null=True, blank=True)
    building_position = models.PositiveBigIntegerField(default=0)
    swapped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: generation {self.active_generation}"


class OrderView(models.Model):
    generation = models.PositiveIntegerField()
    order_id = models.UUIDField()
    user_id = models.PositiveBigIntegerField()
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # [{"sku", "quantity", "unit_price"}] in line order: one row shows the whole order.
    items = models.JSONField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    version = models.PositiveIntegerField()  # the stream version this row reflects

    class Meta:
        ordering = ["-created_at", "order_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "order_id"], name="orders_service_view_generation_order"
            )
        ]
        indexes = [
            models.Index(
                fields=["generation", "user_id", "-created_at"], name="orders_service_view_user"
            ),
            models.Index(
                fields=["generation", "user_id", "status", "-created_at"],
                name="orders_service_view_status",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.order_id} ({self.status}, generation {self.generation})"


class StatusCount(models.Model):
    generation = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "status"], name="orders_service_count_generation_status"
            )
        ]

    def __str__(self) -> str:
        return f"{self.status}: {self.count} (generation {self.generation})"


# ---------------------------------------------------------------- catalogue
class Product(models.Model):
    """The catalogue: what a sku costs. Moves with orders at step 3 (see the chapter)."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return self.sku


# ---------------------------------------------------------------- sales (log replay)
class SalesOrder(models.Model):
    """What the sales projection remembers of an order: its lines, and whether it was counted."""

    order_id = models.UUIDField(primary_key=True)
    currency = models.CharField(max_length=3)
    items = models.JSONField()
    paid_on = models.DateField(null=True, blank=True)
    refunded_on = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Sales of order {self.order_id}"


class SkuDailySales(models.Model):
    """Units and revenue of one sku on one UTC day: paid orders count, refunds take back."""

    day = models.DateField()
    sku = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    units = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        ordering = ["day", "sku"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "sku", "currency"], name="orders_service_sales_day_sku"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.sku}: {self.units} for {self.revenue} {self.currency}"


# ---------------------------------------------------------------- migration
class BackfillCheckpoint(models.Model):
    """How far a backfill got: the last id copied, committed with each batch, so a rerun resumes."""

    name = models.CharField(max_length=64, primary_key=True)
    last_id = models.CharField(max_length=64, blank=True)
    copied = models.PositiveBigIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Backfill {self.name} at {self.last_id or 'start'} ({self.copied} copied)"
