"""The outbox's tables: what was written, what was consumed, in what order, and what failed.

AggregateSequence  one row per aggregate: the last sequence handed out (locked by the writer)
OutboxEvent        one row per event written; pending until the relay marks it sent
InboxEvent         one row per (consumer, event id) applied: the effect-once key
ConsumerCursor     per consumer, aggregate and origin (writer): the highest sequence applied
DeadLetter         per consumer: an event parked after its retries, until replay or purge

Each writing service numbers an aggregate's events with its own counter, so a sequence means
something only together with the envelope's `origin`: cursors (and the parked-predecessor
checks) are kept per (aggregate, origin).
"""

from __future__ import annotations

from django.db import models


class AggregateSequence(models.Model):
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=128)
    last_sequence = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id"], name="outbox_aggseq_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.aggregate_type}:{self.aggregate_id} @ {self.last_sequence}"


class OutboxEvent(models.Model):
    # The surrogate key orders the relay's claims; per aggregate it follows `sequence`.
    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=128)
    version = models.PositiveSmallIntegerField(default=1)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=128)
    sequence = models.PositiveBigIntegerField()
    occurred_at = models.DateTimeField()
    origin = models.CharField(max_length=64)
    correlation_id = models.CharField(max_length=64)
    causation_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "sequence"],
                name="outbox_event_aggregate_sequence_unique",
            )
        ]
        indexes = [
            # The relay's claim reads only pending rows; the index stays as small as the backlog.
            models.Index(
                fields=["id"], name="outbox_event_pending", condition=models.Q(sent_at=None)
            ),
            models.Index(
                fields=["aggregate_type", "aggregate_id", "id"],
                name="outbox_event_pending_agg",
                condition=models.Q(sent_at=None),
            ),
            models.Index(fields=["sent_at"], name="outbox_event_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id}#{self.sequence}"

    @property
    def is_sent(self) -> bool:
        return self.sent_at is not None


class InboxEvent(models.Model):
    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=128)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=128)
    sequence = models.PositiveBigIntegerField()
    origin = models.CharField(max_length=64)
    processed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-processed_at"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="outbox_inbox_unique")
        ]

    def __str__(self) -> str:
        return f"{self.consumer} <- {self.event_type} {self.event_id}"


class ConsumerCursor(models.Model):
    consumer = models.CharField(max_length=64)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=128)
    # The writer whose counter `last_sequence` follows: two halves number one aggregate apart.
    origin = models.CharField(max_length=64, default="", blank=True)
    last_sequence = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "aggregate_type", "aggregate_id", "origin"],
                name="outbox_cursor_origin_unique",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.consumer}: {self.aggregate_type}:{self.aggregate_id} from {self.origin} "
            f"@ {self.last_sequence}"
        )


class DeadLetterReason(models.TextChoices):
    FAILED = "failed", "Handler failed after every retry tier"
    INVALID = "invalid", "Payload does not match its schema"
    BLOCKED = "blocked", "An earlier event of the aggregate is parked"
    GAP = "gap", "An earlier sequence never arrived"
    UNTRUSTED = "untrusted", "The broker did not vouch for its sender (user_id)"


class DeadLetter(models.Model):
    consumer = models.CharField(max_length=64, db_index=True)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=128, db_index=True)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=128)
    sequence = models.PositiveBigIntegerField()
    origin = models.CharField(max_length=64, default="", blank=True)  # whose sequence it is
    envelope = models.JSONField()
    reason = models.CharField(max_length=16, choices=DeadLetterReason.choices)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="outbox_dead_unique")
        ]
        indexes = [models.Index(fields=["consumer", "aggregate_type", "aggregate_id"])]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_type} {self.event_id} ({self.reason})"
