"""What the notifications subscriber decided to send, and whether it went out.

A Notification row is written in the same transaction as the inbox row of the event that caused
it, so a redelivered event never makes a second one; `(event_id, channel)` is unique besides.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=128)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=16)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(
        max_length=16,
        choices=NotificationStatus.choices,
        default=NotificationStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "channel"], name="notifications_one_per_event_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.channel} to {self.recipient} ({self.status})"


class NotificationPreference(models.Model):
    """How a user wants to be told: email (on unless switched off) and SMS (with a phone)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_enabled = models.BooleanField(default=True)
    sms_phone = models.CharField(
        max_length=20, blank=True, help_text="E.164 number; SMS are sent only when it is set."
    )

    def __str__(self) -> str:
        return f"Notification preferences of {self.user}"
