"""Payments of orders, and the idempotency records that make paying safe to retry."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Kept as a plain id as well as a relation: the extracted payments service owns no orders
    # table and knows orders only by id, so the shared fields are the same on both halves.
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(max_length=16, choices=PaymentStatus.choices, db_index=True)
    card_last4 = models.CharField(max_length=4)
    provider_reference = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            # At most one successful (or refunded) payment per order, enforced by the database
            # as the last line of defence behind select_for_update.
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(status__in=["succeeded", "refunded"]),
                name="payments_one_success_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} ({self.status})"


class IdempotencyRecord(models.Model):
    """The first answer given for an Idempotency-Key, replayed for every retry with that key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    payment = models.ForeignKey(Payment, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The relay's cleanup deletes by age (`purge_expired_idempotency_records`).
        indexes = [models.Index(fields=["created_at"], name="payments_idem_created_idx")]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="payments_idem_user_key_unique"),
        ]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key}"
