"""A relay that SIGKILLs itself after the broker confirmed a batch, before marking it sent."""

from __future__ import annotations

import os
import signal

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.outbox.subprocess_settings"
django.setup()

from outbox.broker import EnvelopePublisher  # noqa: E402
from outbox.relay import relay_batch  # noqa: E402

_publish = EnvelopePublisher.publish


def publish_then_die(self, envelopes):
    _publish(self, envelopes)
    os.kill(os.getpid(), signal.SIGKILL)


EnvelopePublisher.publish = publish_then_die
relay_batch(publisher=EnvelopePublisher())
