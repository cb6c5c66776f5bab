"""Fixtures shared by the whole suite: API clients, users, and a logged-in client."""

from __future__ import annotations

import itertools
import uuid

import pytest
from rest_framework.test import APIClient

_emails = itertools.count(1)


@pytest.fixture(scope="session")
def _payment_ledger(tmp_path_factory):
    return tmp_path_factory.mktemp("provider") / "simulated-provider.sqlite3"


@pytest.fixture(autouse=True)
def _isolated_payment_ledger(settings, _payment_ledger):
    """Keep the simulated provider's charges in this run's own ledger file."""
    settings.STRANGLER_PAYMENT_LEDGER = str(_payment_ledger)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hash passwords with MD5 in tests: PBKDF2's deliberate slowness is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Give each test its own cache key prefix: login throttles never carry over between tests.

    The cache stays the real one (Redis under `make test`, else the database table).
    """
    default = settings.CACHES.get("default", {})
    settings.CACHES = {
        **settings.CACHES,
        "default": {**default, "KEY_PREFIX": f"{default.get('KEY_PREFIX', '')}:{uuid.uuid4().hex}"},
    }


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def make_user(db):
    """Create a user: make_user(email=None, password="s3cret-Passw0rd", **fields)."""
    from django.contrib.auth import get_user_model

    def make(email: str | None = None, password: str = "s3cret-Passw0rd", **fields):
        email = email or f"user{next(_emails)}@example.com"
        return get_user_model().objects.create_user(email=email, password=password, **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def client_for(db):
    """Return an API client authenticated as the given user with a Bearer token."""

    # Imported here, not at the top: the extracted services' settings install no knox app, and
    # a module-level import of the users services would break collecting their tests.
    from monolith.users.services import token_create

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user)}")
        return client

    return make


@pytest.fixture
def auth_client(client_for, user) -> APIClient:
    """An API client logged in as `user`."""
    return client_for(user)
