"""Fixtures of the analytics tests: the subscriber's handlers, a fast provider, no Celery."""

from __future__ import annotations

from unittest import mock

import pytest

import monolith.analytics.handlers  # noqa: F401 - registers the subscriber
from monolith.orders import tasks as order_tasks
from tests.monolith.payments.recording import RecordingProvider


@pytest.fixture(autouse=True)
def no_celery_emails():
    """Keep order_create's post-commit Celery receipt off the shared broker."""
    with mock.patch.object(order_tasks.send_order_confirmation, "apply_async"):
        yield


@pytest.fixture(autouse=True)
def provider(settings):
    settings.STRANGLER_PAYMENT_PROVIDER = "tests.monolith.payments.recording.RecordingProvider"
    settings.STRANGLER_PAYMENT_LATENCY_MS = 0
    RecordingProvider.reset()
    yield RecordingProvider
