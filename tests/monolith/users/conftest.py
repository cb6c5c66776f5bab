"""Fixtures of the users tests: a fast hasher, a staff client, and request helpers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 costs ~0.3 s a hash; the rules under test do not depend on the algorithm.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(make_user):
    return make_user(email="staff@example.com", is_staff=True)


@pytest.fixture
def staff_client(client_for, staff) -> APIClient:
    return client_for(staff)


def bearer(token: str) -> APIClient:
    """Return a client that presents `token` as `Authorization: Bearer <token>`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
