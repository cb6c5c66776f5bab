"""Fixtures of the orders service tests (run with --ds=extracted.orders.settings).

The service has no users: a client is "signed in" by carrying the X-Strangler-Identity header
the proxy would sign. The catalogue is planted directly.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from ..signing import SECRET, SignedClient
from ..signing import signed as _signed

ROOT = Path(__file__).resolve().parents[3]

_users = itertools.count(2000)

# These tests need the service's settings (--ds=extracted.orders.settings); under any other
# settings (the monolith suite's default run) they are not collected rather than failing.
if django_settings.ROOT_URLCONF != "extracted.orders.urls":
    collect_ignore_glob = ["test_*.py"]

CATALOGUE = {"BOOK-1": ("A book", "9.99"), "PEN-2": ("A pen", "0.10"), "MUG-3": ("A mug", "7.50")}


@pytest.fixture(autouse=True)
def service_settings(settings) -> None:
    settings.STRANGLER_IDENTITY_SECRET = SECRET


def signed(user_id: int, *, method: str = "GET", path: str = "/api/orders/", **kw) -> str:
    """Return an X-Strangler-Identity value for `user_id`, signed for the orders service."""
    kw.setdefault("audience", "orders")
    return _signed(user_id, method=method, path=path, **kw)


@pytest.fixture
def user_id() -> int:
    return next(_users)


@pytest.fixture
def client_for():
    """Return an API client carrying a signed identity: client_for(user_id, staff=False)."""

    def make(user_id: int, *, staff: bool = False) -> APIClient:
        return SignedClient(user_id, audience="orders", staff=staff)

    return make


@pytest.fixture
def auth_client(client_for, user_id) -> APIClient:
    return client_for(user_id)


@pytest.fixture
def staff_client(client_for) -> APIClient:
    return client_for(next(_users), staff=True)


@pytest.fixture
def catalogue(db):
    """Plant the test catalogue: BOOK-1 9.99, PEN-2 0.10, MUG-3 7.50."""
    from extracted.orders.models import Product

    for sku, (name, price) in CATALOGUE.items():
        Product.objects.update_or_create(
            sku=sku, defaults={"name": name, "unit_price": Decimal(price)}
        )
    return CATALOGUE


@pytest.fixture
def place(catalogue):
    """Place an order through the service: place(user_id, items=[("BOOK-1", 2)]) -> state."""
    from extracted.orders.services import order_place

    def do(user_id: int, items=(("BOOK-1", 1),)):
        return order_place(
            user_id=user_id, items=[{"sku": sku, "quantity": qty} for sku, qty in items]
        )

    return do


# ---------------------------------------------------------------- the monolith's database
def _service_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/strangler_xord")


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
    """A writable connection to the monolith's database, emptied of users, orders, products."""
    connection = psycopg2.connect(monolith_db_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE payments_idempotencyrecord, payments_payment, orders_orderitem, "
            "orders_order, orders_product, outbox_aggregatesequence, users_user CASCADE"
        )
    yield connection
    connection.close()
