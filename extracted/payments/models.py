"""The service's own tables: payments, idempotency records, and what it knows of orders.

Users and orders belong to other halves; they appear here only by id (`user_id`, `order_id`),
never as foreign keys. `OrderReplica` is this service's read model of orders, fed by
`order.placed` / `order.cancelled` / `order.paid` / `order.shipped` and by asking the orders
owner directly.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(db_index=True)
    user_id = models.PositiveBigIntegerField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(max_length=16, choices=PaymentStatus.choices, db_index=True)
    card_last4 = models.CharField(max_length=4)
    provider_reference = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    # Set explicitly rather than auto_now: rows copied or synced from the monolith keep the
    # monolith's timestamps, so both halves show (and digest) the same values.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"],
                condition=models.Q(status__in=["succeeded", "refunded"]),
                name="payments_service_one_success_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} ({self.status})"


class IdempotencyRecord(models.Model):
    """The first answer given for an Idempotency-Key, replayed for every retry with that key."""

    user_id = models.PositiveBigIntegerField()
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    payment = models.ForeignKey(Payment, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The relay's cleanup deletes by age (`purge_expired_idempotency_records`).
        indexes = [models.Index(fields=["created_at"], name="payments_service_idem_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "key"], name="payments_service_idem_user_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key}"


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


class ReplicaSource(models.TextChoices):
    EVENT = "event", "From an order event"
    OWNER = "owner", "Fetched from the orders owner"
    BACKFILL = "backfill", "Copied by the backfill"
    PAYMENT = "payment", "Changed by a payment"


class OrderReplica(models.Model):
    """What this service knows of an order: whose it is, what it costs, whether it can be paid."""

    order_id = models.UUIDField(primary_key=True)
    user_id = models.PositiveBigIntegerField(db_index=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    source = models.CharField(max_length=16, choices=ReplicaSource.choices)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Order {self.order_id} ({self.status})"


class BackfillCheckpoint(models.Model):
    """How far a backfill got: the last id copied, committed with each batch, so a rerun resumes."""

    name = models.CharField(max_length=64, primary_key=True)
    last_id = models.CharField(max_length=64, blank=True)
    copied = models.PositiveBigIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Backfill {self.name} at {self.last_id or 'start'} ({self.copied} copied)"
