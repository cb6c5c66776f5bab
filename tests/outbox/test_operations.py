"""Operations: status figures, DLQ list/show/purge, Prometheus text, admin pages."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

import outbox
from outbox.envelope import Envelope
from outbox.inbox import dead_letter_park
from outbox.metrics import metrics_text
from outbox.models import DeadLetter

from .conftest import order_payload

pytestmark = pytest.mark.django_db


def park(consumer: str = "shop", aggregate_id: str = "A", sequence: int = 1) -> DeadLetter:
    envelope = Envelope(
        id=str(uuid.uuid4()), type="order.placed", version=1, aggregate_type="order",
        aggregate_id=aggregate_id, sequence=sequence, occurred_at="2026-01-01T00:00:00+00:00",
        origin="monolith", correlation_id="c", causation_id="", payload=order_payload(),
    )  # fmt: skip
    return dead_letter_park(
        consumer=consumer, envelope=envelope, reason="failed", error="ValueError: boom", attempts=4
    )


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_status_reports_pending_count_and_parked_events_per_consumer(settings):
    settings.BROKER_URL = "memory://"
    with transaction.atomic():
        outbox.publish(
            event_type="order.placed", aggregate_type="order", aggregate_id="A",
            payload=order_payload(),
        )  # fmt: skip
    park()
    status = json.loads(run("outbox_status", "--json"))
    assert status["pending"] == 1
    assert status["consumers"]["shop"]["parked"] == 1
    assert "consumer shop:" in run("outbox_status")


def test_dlq_list_filters_by_consumer_and_show_prints_the_envelope_and_error():
    mine, _ = park("shop"), park("billing")
    listing = run("outbox_dlq", "list", "--consumer", "shop")
    assert listing.splitlines()[-1] == "1 parked"
    assert "ValueError: boom" in listing
    shown = json.loads(run("outbox_dlq", "show", str(mine.id)))
    assert shown["envelope"]["id"] == str(mine.event_id)
    assert shown["attempts"] == 4


def test_dlq_purge_of_everything_needs_yes():
    park()
    with pytest.raises(CommandError, match="--yes"):
        run("outbox_dlq", "purge")
    assert run("outbox_dlq", "purge", "--yes").strip() == "purged 1"
    assert DeadLetter.objects.count() == 0


def test_dlq_bad_since_is_refused_naming_the_option():
    with pytest.raises(CommandError, match="--since"):
        run("outbox_dlq", "list", "--since", "last tuesday")


def test_metrics_text_is_prometheus_exposition(settings):
    settings.BROKER_URL = "memory://"
    park("shop")
    text = metrics_text()
    assert "# TYPE outbox_pending_events gauge" in text
    assert "outbox_pending_events 0" in text
    assert 'outbox_dead_letters{consumer="shop"} 1' in text


def test_metrics_view_serves_text_plain(client, settings):
    settings.BROKER_URL = "memory://"
    settings.ROOT_URLCONF = "tests.outbox.urls"
    response = client.get("/_outbox/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")


def test_admin_lists_outbox_inbox_and_dead_letters(admin_client):
    park()
    for model in ("outboxevent", "inboxevent", "deadletter", "consumercursor"):
        assert admin_client.get(f"/admin/outbox/{model}/").status_code == 200
