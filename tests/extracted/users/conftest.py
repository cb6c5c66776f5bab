"""Fixtures of the users service tests (run with --ds=extracted.users.settings).

A client reaches the service as the proxy would send it: with a Bearer token (checked here
against the service's digests) or with the X-Strangler-Identity header signed for `users`.
Backfill, reconcile and the two-halves tests use a real monolith database next to the service's
(`<service db>_mono`), migrated with the monolith's settings in a subprocess, so this process
never imports the monolith.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from ..signing import SECRET, SignedClient

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "s3cret-Passw0rd"
_emails = itertools.count(1)

if django_settings.ROOT_URLCONF != "extracted.users.urls":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True)
def service_settings(settings) -> None:
    """Sign identities with a known secret; no waiting for replicas unless a test asks."""
    settings.STRANGLER_IDENTITY_SECRET = SECRET
    settings.STRANGLER_USER_REPLICA_WAIT_MS = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db):
    """Register a user through the service's own rules: make_user(email=..., **fields)."""
    from extracted.users.services import user_register, user_update

    def make(email: str | None = None, password: str = PASSWORD, **flags):
        user = user_register(email=email or f"user{next(_emails)}@example.com", password=password)
        if flags:
            user = user_update(user=user, require_current_password=False, **flags)
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def bearer_for(db):
    """Return an API client carrying a fresh Bearer token of `user`."""
    from extracted.users.services import token_create

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user)}")
        return client

    return make


@pytest.fixture
def signed_for():
    """Return an API client carrying an identity the proxy signed for the users service."""

    def make(user, staff: bool = False) -> APIClient:
        return SignedClient(user.pk, audience="users", staff=staff)

    return make


# ---------------------------------------------------------------- the monolith's database
def _service_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/strangler_xusers")


@pytest.fixture(scope="session")
def monolith_db_url() -> str:
    """A real monolith database next to the service's (`<service db>_mono`), migrated once."""
    base = _service_url()
    if not base.startswith("postgres"):
        pytest.skip("backfill and reconcile tests need PostgreSQL (DATABASE_URL=postgres://...)")
    server, _, name = base.rpartition("/")
    mono_name = f"{name}_mono"
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{mono_name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{mono_name}"')
    url = f"{server}/{mono_name}"
    env = os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "monolith.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    yield url
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{mono_name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def monolith_sql(monolith_db_url):
    """A writable connection to the monolith's database, emptied of users and their events."""
    connection = psycopg2.connect(monolith_db_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE knox_authtoken, outbox_outboxevent, outbox_aggregatesequence, "
            "outbox_inboxevent, outbox_consumercursor, users_user CASCADE"
        )
    yield connection
    connection.close()


def monolith_run(monolith_db_url: str, script: str, *args: str) -> str:
    """Run `tests/extracted/users/monolith_side.py SCRIPT ARGS` in the monolith's settings."""
    env = os.environ | {
        "DATABASE_URL": monolith_db_url,
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
        "STRANGLER_FAST_PASSWORD_HASHER": "1",
    }
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("monolith_side.py")), script, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
