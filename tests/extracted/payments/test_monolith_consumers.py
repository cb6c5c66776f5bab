"""The monolith side of the two-way sync (monolith/payments/consumers.py), on a real monolith DB.

It runs in a subprocess with the monolith's settings (see monolith_side.py), so this process,
configured as the payments service, never imports the monolith.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def outcome(monolith_db_url) -> dict:
    env = os.environ | {
        "DATABASE_URL": monolith_db_url,
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
        "STRANGLER_LOG_LEVEL": "ERROR",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.extracted.payments.monolith_side"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_monolith_subscribes_to_payment_events(outcome):
    assert "payment.#" in outcome["binding_keys"]


def test_a_service_payment_is_upserted_by_id_and_pays_the_order_once(outcome):
    assert (outcome["succeeded"], outcome["again"]) == ("applied", "duplicate")
    assert outcome["payment"] == ["succeeded", "30.00", "2026-01-02T03:04:05.123456+00:00"]
    assert outcome["order_after_success"] == "paid"


def test_the_monolith_announces_order_paid_as_its_own_news_caused_by_the_payment(outcome):
    assert outcome["order_paid_event"] == ["monolith", True]


def test_a_service_refund_refunds_the_payment_and_the_order(outcome):
    assert outcome["refunded"] == "applied"
    assert outcome["after_refund"] == ["refunded", "refunded"]


def test_the_monoliths_own_payment_events_are_echoes_and_change_nothing(outcome):
    assert outcome["echo"] == "echo"
    assert outcome["echo_row"] is False


def test_a_payment_for_an_order_cancelled_meanwhile_is_recorded_and_the_order_left_alone(outcome):
    assert outcome["late"] == "applied"
    assert outcome["late_rows"] == [True, "cancelled"]
