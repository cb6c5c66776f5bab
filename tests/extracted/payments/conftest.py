"""Fixtures of the payments service tests (run with --ds=extracted.payments.settings).

The service has no users: a client is "signed in" by carrying the X-Strangler-Identity header
the proxy would sign, for each request's method and path. Orders exist here only as replicas,
made directly.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from service_kit.payment_provider import SUCCEED_CARD

from ..signing import SECRET, SignedClient
from ..signing import signed as _signed
from .recording import RecordingProvider

ROOT = Path(__file__).resolve().parents[3]

_keys = itertools.count(1)
_users = itertools.count(1000)


# These tests need the service's settings (--ds=extracted.payments.settings); under any other
# settings (the monolith suite's default run) they are not collected rather than failing.
if django_settings.ROOT_URLCONF != "extracted.payments.urls":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True)
def service_settings(settings) -> None:
    """Sign identities with a known secret; never ask a real orders owner unless a test does."""
    settings.STRANGLER_IDENTITY_SECRET = SECRET
    settings.STRANGLER_ORDERS_URL = "http://127.0.0.1:9"  # discard port: refused at once
    settings.STRANGLER_ORDER_REPLICA_WAIT_MS = 0


@pytest.fixture(autouse=True)
def provider(settings) -> type[RecordingProvider]:
    """Make every payment go through the counting provider, instantly."""
    settings.STRANGLER_PAYMENT_PROVIDER = "tests.extracted.payments.recording.RecordingProvider"
    settings.STRANGLER_PAYMENT_LATENCY_MS = 0
    settings.STRANGLER_PAYMENT_TIMEOUT_S = 5.0
    RecordingProvider.reset()
    yield RecordingProvider
    RecordingProvider.reset()


def signed(user_id: int, *, method: str = "POST", path: str = "/api/payments/", **kw) -> str:
    """Return an X-Strangler-Identity value for `user_id`, signed for the payments service."""
    kw.setdefault("audience", "payments")
    return _signed(user_id, method=method, path=path, **kw)


@pytest.fixture
def user_id() -> int:
    return next(_users)


@pytest.fixture
def client_for():
    """Return an API client carrying a signed identity for `user_id`."""

    def make(user_id: int) -> APIClient:
        return SignedClient(user_id, audience="payments")

    return make


@pytest.fixture
def auth_client(client_for, user_id) -> APIClient:
    return client_for(user_id)


@pytest.fixture
def make_order(db):
    """Create an order replica: make_order(user_id, total="25.00", status="pending")."""
    from extracted.payments.models import OrderReplica

    def make(user_id: int, total: str = "25.00", status: str = "pending", currency: str = "EUR"):
        return OrderReplica.objects.create(
            order_id=uuid.uuid4(),
            user_id=user_id,
            total=Decimal(total),
            status=status,
            currency=currency,
            source="event",
        )

    return make


@pytest.fixture
def order(make_order, user_id):
    return make_order(user_id)


@pytest.fixture
def pay():
    """POST /api/payments/: pay(client, order_id, card=SUCCEED_CARD, key=None, **extra_body)."""

    def do(client, order_id, card: str = SUCCEED_CARD, key: str | None = None, **extra):
        key = key or f"key-{next(_keys)}"
        body = {"order_id": str(order_id), "card_number": card, **extra}
        return client.post("/api/payments/", body, format="json", headers={"Idempotency-Key": key})

    return do


# ---------------------------------------------------------------- the monolith's database
def _service_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/strangler_xpay")


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
    """A writable connection to the monolith's database, emptied of users, orders, payments."""
    connection = psycopg2.connect(monolith_db_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE payments_idempotencyrecord, payments_payment, orders_orderitem, "
            "orders_order, outbox_aggregatesequence, users_user CASCADE"
        )
    yield connection
    connection.close()


def assert_refund_of_shipped_order_refused(response, provider) -> None:
    """A refund of a shipped order is a 409 naming both states; nothing moves."""
    from extracted.payments.models import Payment

    assert response.status_code == 409
    assert response.json() == {
        "error": "invalid_transition",
        "detail": "Cannot move order from 'shipped' to 'refunded'.",
        "from": "shipped",
        "to": "refunded",
    }
    assert provider.refunds == []
    assert Payment.objects.get().status == "succeeded"
