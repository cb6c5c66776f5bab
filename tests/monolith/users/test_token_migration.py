"""The migration that takes API tokens out of the clear: old keys hashed, the clear table gone."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken

from .conftest import bearer

pytestmark = pytest.mark.django_db

migration = importlib.import_module("monolith.users.migrations.0003_hash_clear_tokens")
CLEAR_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # 40 hex, as DRF's authtoken made them


def _old_clear_table(user_id: int) -> None:
    """Recreate DRF authtoken's table as a database migrated before this change holds it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id bigint NOT NULL UNIQUE)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created datetime NOT NULL, user_id bigint NOT NULL UNIQUE)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [CLEAR_KEY, timezone.now(), user_id],
        )


def test_a_clear_token_is_hashed_keeps_working_and_the_clear_table_is_gone(user):
    _old_clear_table(user.pk)

    with connection.schema_editor() as editor:
        migration.hash_clear_tokens(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    stored = AuthToken.objects.get(user=user)
    assert CLEAR_KEY[:8] not in stored.digest + stored.token_key
    assert stored.expiry > timezone.now()
    assert bearer(CLEAR_KEY).get("/api/users/me/").json()["id"] == user.pk


def test_a_database_that_never_had_clear_tokens_is_left_alone(user):
    with connection.schema_editor() as editor:
        migration.hash_clear_tokens(apps, editor)

    assert not AuthToken.objects.exists()
