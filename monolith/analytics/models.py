"""Daily totals per status, kept by the `analytics` subscriber from order and payment events."""

from __future__ import annotations

from django.db import models


class DailyStatusTotal(models.Model):
    """How many orders (or payments) reached `status` on `day`, and for how much money.

    `day` is the UTC date the event occurred. One row per currency: sums never mix currencies.
    """

    day = models.DateField()
    aggregate_type = models.CharField(max_length=32)  # "order" or "payment"
    status = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    count = models.PositiveBigIntegerField(default=0)
    amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "aggregate_type", "status", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "aggregate_type", "status", "currency"],
                name="analytics_daily_status_total_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.aggregate_type} {self.status}: {self.count} ({self.amount})"
