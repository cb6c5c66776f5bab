"""The outbox's Prometheus figures (outbox/metrics.py) as a half serves them at /metrics.

A relay and a consumer run as their own processes, with the half's PROMETHEUS_MULTIPROC_DIR;
the half's web view (the monolith's URL map) adds up what they counted.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import connection

from outbox.models import OutboxEvent

from .proof_handlers import effect_rows, effect_table_create
from .test_proof import (
    ROOT,
    start_consumer_process,
    stop,
    subprocess_env,
    wait_consuming,
    wait_for,
    write,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def scrape(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def test_a_halfs_metrics_add_up_what_its_relay_and_consumer_processes_counted(
    broker, client, settings, tmp_path, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("the relay process runs against PostgreSQL")
    effect_table_create()
    settings.ROOT_URLCONF = "monolith.urls"
    service = broker.service("shop")
    folder = tmp_path / "metrics"
    folder.mkdir()
    consumer = start_consumer_process(broker, service, PROMETHEUS_MULTIPROC_DIR=str(folder))
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "outbox_relay",
         "--settings", "tests.outbox.subprocess_settings"],
        cwd=ROOT, env=subprocess_env(broker, PROMETHEUS_MULTIPROC_DIR=str(folder)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_consuming(service)
        write("A", 3)
        assert wait_for(lambda: len(effect_rows(service)) == 3)
        assert wait_for(lambda: not OutboxEvent.objects.filter(sent_at=None).exists())
    finally:
        stop(relay)
        stop(consumer)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    text = scrape(client)
    assert "outbox_relay_published_total 3.0" in text
    assert f'outbox_consumer_events_total{{consumer="{service}",outcome="applied"}} 3.0' in text
    assert "outbox_pending_events 0.0" in text
    assert f'outbox_dead_letters{{consumer="{service}"}} 0.0' in text
    # The relay stopped cleanly: its live gauges left with it.
    assert "outbox_relay_confirms_in_flight 0.0" in text or "confirms_in_flight{" not in text


def test_metrics_are_not_served_through_the_proxy(client, settings):
    settings.ROOT_URLCONF = "monolith.urls"
    settings.BROKER_URL = "memory://"
    response = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 404
    assert "not through the proxy" in response.json()["detail"]
