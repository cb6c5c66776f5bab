"""Pluggable delivery channels: one class per way of reaching a person.

    email  EmailChannel     Django's email backend (EMAIL_BACKEND: SMTP, file, console, locmem)
    sms    FileSmsChannel   appends one JSON line per SMS to STRANGLER_SMS_FILE and logs it: the
                            honest stand-in for an SMS gateway, with the same interface

A channel sends or raises; it never swallows a failure, so the notification is marked failed
and can be sent again. Which class serves a channel is the setting
STRANGLER_NOTIFICATION_CHANNELS (`{"sms": "dotted.path.Class"}` overrides one entry).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

DEFAULT_CHANNELS = {
    "email": "monolith.notifications.channels.EmailChannel",
    "sms": "monolith.notifications.channels.FileSmsChannel",
}


class Channel(Protocol):
    """Deliver one message to one recipient, or raise."""

    def send(self, *, recipient: str, subject: str, body: str) -> None: ...


class EmailChannel:
    """Send through Django's configured email backend."""

    def send(self, *, recipient: str, subject: str, body: str) -> None:
        send_mail(subject, body, None, [recipient], fail_silently=False)


class FileSmsChannel:
    """Append the SMS as a JSON line to STRANGLER_SMS_FILE (default VAR_DIR/sms.log)."""

    def send(self, *, recipient: str, subject: str, body: str) -> None:
        path = Path(getattr(settings, "STRANGLER_SMS_FILE", "") or settings.VAR_DIR / "sms.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        line = {"to": recipient, "text": body, "at": timezone.now().isoformat()}
        with path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")
        log.info("SMS to %s: %s", recipient, body)


def channel_get(name: str) -> Channel:
    """Return an instance of the class configured for channel `name`, or raise LookupError."""
    configured = DEFAULT_CHANNELS | getattr(settings, "STRANGLER_NOTIFICATION_CHANNELS", {})
    if name not in configured:
        raise LookupError(f"No notification channel {name!r}; configured: {sorted(configured)}.")
    return import_string(configured[name])()
