"""A relay that SIGKILLs itself after the broker confirmed a batch, before marking it sent.

Both relay paths are covered: the pipelined one (PostgreSQL + RabbitMQ, `wait_confirmed`)
and the plain one (`publish`), whichever the relay takes.
"""

from __future__ import annotations

import os
import signal

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.outbox.subprocess_settings"
django.setup()

from outbox.broker import EnvelopePublisher  # noqa: E402
from outbox.relay import relay_drain  # noqa: E402

_publish = EnvelopePublisher.publish
_wait_confirmed = EnvelopePublisher.wait_confirmed


def publish_then_die(self, envelopes):
    _publish(self, envelopes)
    os.kill(os.getpid(), signal.SIGKILL)


def confirmed_then_die(self, tag):
    _wait_confirmed(self, tag)
    os.kill(os.getpid(), signal.SIGKILL)


EnvelopePublisher.publish = publish_then_die
EnvelopePublisher.wait_confirmed = confirmed_then_die
relay_drain(publisher=EnvelopePublisher())
