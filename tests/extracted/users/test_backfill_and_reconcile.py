"""Backfill copies every monolith user (hash and live tokens), resumably; reconcile lists gaps."""

from __future__ import annotations

import json

import pytest
from knox.models import AuthToken

from extracted.users.backfill import users_backfill
from extracted.users.models import BackfillCheckpoint, User
from extracted.users.reconcile import users_reconcile
from extracted.users.source import source_connection
from outbox.models import ConsumerCursor

from .conftest import monolith_run

pytestmark = pytest.mark.django_db(transaction=True)


class Interrupted(Exception):
    pass


@pytest.fixture
def seeded(monolith_db_url, monolith_sql):
    """Seven monolith users, two logged in, one who changed the password; return its source."""
    monolith_run(monolith_db_url, "seed")
    return source_connection(url=monolith_db_url)


def test_backfill_copies_every_user_with_its_hash_and_live_tokens(seeded, api_client):
    result = users_backfill(source_db=seeded, batch=3, progress=False)

    assert (result.users, result.tokens) == (7, 2)  # seed2's first token died with its password
    report = users_reconcile(source_db=seeded)
    assert report.exact, report.as_dict()
    response = api_client.post(
        "/api/auth/token/", {"email": "seed2@example.com", "password": "N3w-Passw0rd!"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200


def test_a_killed_backfill_resumes_after_its_last_batch(seeded):
    def stop_after_first(copied):
        raise Interrupted

    with pytest.raises(Interrupted):
        users_backfill(source_db=seeded, batch=3, progress=False, after_batch=stop_after_first)
    assert User.objects.count() == 3

    result = users_backfill(source_db=seeded, batch=3, progress=False)

    assert result.users == 4
    assert BackfillCheckpoint.objects.get(name="users").copied == 7
    assert users_backfill(source_db=seeded, progress=False).already_finished


def test_backfill_raises_each_users_cursor_so_the_stream_takes_over_with_no_duplicate(seeded):
    users_backfill(source_db=seeded, progress=False)

    seed2 = User.objects.get(email="seed2@example.com")
    cursor = ConsumerCursor.objects.get(
        consumer="users", aggregate_type="user", aggregate_id=str(seed2.pk), origin="monolith"
    )
    # registered, token issued, updated, token revoked, token issued: five events copied.
    assert cursor.last_sequence == 5


def test_reconcile_names_each_difference_and_never_prints_a_hash(seeded, monolith_sql):
    users_backfill(source_db=seeded, progress=False)
    seed3 = User.objects.get(email="seed3@example.com")
    User.objects.filter(pk=seed3.pk).update(password="md5$x$y", full_name="Changed")
    AuthToken.objects.filter(user__email="seed1@example.com").delete()
    seed4 = User.objects.get(email="seed4@example.com").pk
    User.objects.filter(pk=seed4).delete()

    report = users_reconcile(source_db=seeded)

    assert {(d.kind, d.user_id) for d in report.differences} >= {("missing_in_service", seed4)}
    by_user = {d.user_id: d for d in report.differences}
    assert set(by_user[seed3.pk].fields) == {"password", "full_name"}
    assert "md5$" not in json.dumps(report.as_dict())
    assert set(by_user[User.objects.get(email="seed1@example.com").pk].fields) == {"tokens"}
    assert not report.exact
