"""Ids: users registered here come from the service's range, never the monolith's."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from extracted.users.models import User
from extracted.users.services import user_id_allocate, user_register

from .conftest import PASSWORD, monolith_run

START = 1_000_000_000


@pytest.mark.django_db
def test_ids_start_at_the_configured_start_and_count_up(settings):
    settings.STRANGLER_USERS_ID_START = 5_000

    assert [user_id_allocate(), user_id_allocate()] == [5_000, 5_001]


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_here_get_distinct_ids_in_the_range():
    def register(n):
        try:
            return user_register(email=f"c{n}@example.com", password=PASSWORD).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(register, range(24)))

    assert len(set(ids)) == 24
    assert min(ids) >= START


@pytest.mark.django_db(transaction=True)
def test_registrations_on_both_halves_at_once_never_collide_and_each_reaches_the_other(
    monolith_db_url, monolith_sql
):
    """The monolith registers 20 users (4 threads) while the service registers 20 (4 threads);
    then each half applies the other's events: 40 users, 40 distinct ids, both tables equal."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import extracted.users.handlers  # noqa: F401
    from extracted.users.reconcile import users_reconcile
    from extracted.users.source import source_connection
    from outbox.envelope import Envelope
    from outbox.inbox import event_apply
    from outbox.models import OutboxEvent
    from outbox.registry import registry

    script = Path(__file__).with_name("monolith_side.py")
    env = __import__("os").environ | {
        "DATABASE_URL": monolith_db_url,
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
        "STRANGLER_FAST_PASSWORD_HASHER": "1",
    }
    monolith = subprocess.Popen(
        [sys.executable, str(script), "register", "mono", "20"],
        cwd=Path(__file__).resolve().parents[3], env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip

    def register(n):
        try:
            return user_register(email=f"svc{n}@example.com", password=PASSWORD).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        service_ids = list(pool.map(register, range(20)))
    monolith_ids = json.loads(monolith.communicate(timeout=120)[0].strip().splitlines()[-1])
    assert monolith.returncode == 0

    assert len(set(monolith_ids) | set(service_ids)) == 40
    assert max(monolith_ids) < START <= min(service_ids)
    # Each half applies the other's events: the monolith's here, ours there.
    for document in json.loads(monolith_run(monolith_db_url, "events")):
        envelope = Envelope.from_dict(document)
        event_apply(consumer="users", envelope=envelope,
                    subscriptions=registry.matching("users", envelope.type))  # fmt: skip
    rows = OutboxEvent.objects.filter(aggregate_type="user").order_by("id")
    ours = [Envelope.from_row(row).to_dict() for row in rows]
    outcomes = _apply_on_monolith(monolith_db_url, ours)
    assert set(outcomes) == {"applied"}

    report = users_reconcile(source_db=source_connection(url=monolith_db_url))
    assert report.exact, report.as_dict()
    assert (report.monolith_count, report.service_count) == (40, 40)
    assert User.objects.count() == 40
    # A user registered here logs in on the monolith with the same password.
    assert monolith_run(monolith_db_url, "login", "svc3@example.com", PASSWORD) == "true"


def _apply_on_monolith(url: str, documents: list[dict]) -> list[str]:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("monolith_side.py")), "apply"],
        input=json.dumps(documents), cwd=Path(__file__).resolve().parents[3],
        env=os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "monolith.settings"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return [outcome.split(".")[-1].lower() for outcome in json.loads(done.stdout.splitlines()[-1])]
