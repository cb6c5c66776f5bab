"""Turn events into notifications, and deliver them through their channels.

`notifications_create` runs inside the inbox transaction of the event (effect-once: a
redelivered event finds its notifications already recorded) and hands delivery to
`transaction.on_commit`, so nothing is sent for an event whose handling rolled back. Delivery is
at-least-once towards the channel: the row is locked while sending and marked sent after, so two
deliverers never send one notification twice, but a crash between the channel's "sent" and the
commit of "sent" sends it again. Failed or never-attempted rows are sent again by
`manage.py notifications_deliver`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from outbox.envelope import Envelope

from .channels import channel_get
from .messages import message_for
from .models import Notification, NotificationPreference, NotificationStatus

log = logging.getLogger(__name__)


def _recipients(*, user, channels: tuple[str, ...]) -> dict[str, str]:
    """Return {channel: address} for the channels this user can and wants to be reached on."""
    preference = NotificationPreference.objects.filter(user=user).first()
    addresses = {
        "email": user.email if preference is None or preference.email_enabled else "",
        "sms": preference.sms_phone if preference is not None else "",
    }
    return {channel: addresses[channel] for channel in channels if addresses.get(channel)}


def notifications_create(*, event: Envelope) -> list[Notification]:
    """Record the notifications `event` calls for and schedule their delivery after commit."""
    message = message_for(event)
    if message is None:
        return []
    user = get_user_model().objects.filter(pk=event.payload["user_id"]).first()
    if user is None:
        log.warning("%s %s: user %s is gone; nobody to notify", event.type, event.id,
                    event.payload["user_id"])  # fmt: skip
        return []
    created = []
    for channel, recipient in _recipients(user=user, channels=message.channels).items():
        notification, is_new = Notification.objects.get_or_create(
            event_id=event.id,
            channel=channel,
            defaults={
                "event_type": event.type,
                "user": user,
                "recipient": recipient,
                "subject": message.subject,
                "body": message.body,
            },
        )
        if is_new:
            created.append(notification)
            transaction.on_commit(
                lambda pk=notification.pk: notification_deliver(notification_id=pk), robust=True
            )
    return created


def notification_deliver(*, notification_id: uuid.UUID | str) -> Notification:
    """Send one notification through its channel unless it was sent already; record the outcome."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if notification.status == NotificationStatus.SENT:
            return notification
        notification.attempts += 1
        try:
            channel_get(notification.channel).send(
                recipient=notification.recipient,
                subject=notification.subject,
                body=notification.body,
            )
        except Exception as exc:  # any channel failure is recorded, and retried later
            log.warning("notification %s by %s failed: %r", notification.pk,
                        notification.channel, exc)  # fmt: skip
            notification.status = NotificationStatus.FAILED
            notification.last_error = repr(exc)[:2000]
        else:
            notification.status = NotificationStatus.SENT
            notification.sent_at = timezone.now()
            notification.last_error = ""
        notification.save(update_fields=["status", "attempts", "last_error", "sent_at"])
    return notification


def notifications_deliver_pending(*, older_than_s: float = 30.0, limit: int = 500) -> int:
    """Send again the unsent notifications older than `older_than_s`; return how many were sent.

    Older-than keeps this from racing the consumer's own post-commit delivery of fresh rows.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    ids = list(
        Notification.objects.exclude(status=NotificationStatus.SENT)
        .filter(created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in ids:
        if notification_deliver(notification_id=pk).status == NotificationStatus.SENT:
            sent += 1
    return sent
