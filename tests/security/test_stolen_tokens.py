"""Attack: use a token that should no longer work, or read tokens out of the database.

Against the monolith (gunicorn, PostgreSQL) behind the proxy, as shipped: the database holds no
usable token, a password change shuts every stolen token out and tells the proxy, a logout
revokes the token it was called with, and a token does not live for ever.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import requests

from .halves_stack import bearer, login, register_and_login
from .halves_stack import stack as stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "s3cret-Passw0rd-theft"


def me(url: str, token: str) -> requests.Response:
    return requests.get(f"{url}/api/users/me/", headers=bearer(token), timeout=10)


def test_a_database_reader_finds_no_usable_token(stack):
    token = register_and_login(stack.proxy_url, f"reader-{uuid.uuid4().hex[:8]}@x.com", PASSWORD)

    connection = psycopg2.connect(stack.database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
            tables = [name for (name,) in cursor.fetchall()]
            dumped = []
            for table in tables:
                cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the catalog
                dumped.append(repr(cursor.fetchall()))
    finally:
        connection.close()

    assert "authtoken_token" not in tables
    assert token not in "".join(dumped)
    assert token[:15] not in "".join(dumped)


def test_a_stolen_token_stops_working_when_the_owner_changes_the_password(stack):
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    owners = register_and_login(stack.proxy_url, email, PASSWORD)
    stolen = login(stack.proxy_url, email, PASSWORD)
    assert me(stack.proxy_url, stolen).status_code == 200

    changed = requests.patch(
        f"{stack.proxy_url}/api/users/me/",
        json={"password": "n3w-Passw0rd-theft", "current_password": PASSWORD},
        headers=bearer(owners),
        timeout=10,
    )

    assert changed.status_code == 200, changed.text
    assert me(stack.proxy_url, stolen).status_code == 401
    assert me(stack.proxy_url, owners).status_code == 401
    assert me(stack.proxy_url, login(stack.proxy_url, email, "n3w-Passw0rd-theft")).ok


def test_a_password_change_is_announced_to_the_proxy_on_the_revocation_channel(stack):
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL (make test sets it)")
    import redis

    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    token = register_and_login(stack.proxy_url, email, PASSWORD)
    user_id = me(stack.proxy_url, token).json()["id"]
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("strangler:auth:revoked")
    try:
        pubsub.get_message(timeout=1.0)
        requests.patch(
            f"{stack.proxy_url}/api/users/me/",
            json={"password": "n3w-Passw0rd-theft", "current_password": PASSWORD},
            headers=bearer(token),
            timeout=10,
        ).raise_for_status()
        deadline, seen = time.monotonic() + 1.0, []
        while f"user:{user_id}".encode() not in seen and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message:
                seen.append(message["data"])
        assert f"user:{user_id}".encode() in seen, seen
    finally:
        pubsub.close()
        client.close()


def test_logging_out_a_stolen_token_leaves_the_owners_other_devices_working(stack):
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    laptop = register_and_login(stack.proxy_url, email, PASSWORD)
    phone = login(stack.proxy_url, email, PASSWORD)

    out = requests.post(f"{stack.proxy_url}/api/auth/logout/", headers=bearer(phone), timeout=10)

    assert out.status_code == 204
    assert me(stack.proxy_url, phone).status_code == 401
    assert me(stack.proxy_url, laptop).status_code == 200


def test_a_stolen_token_expires(stack):
    # The default lifetime is 7 days; 2 s here so the test can watch one end.
    with (
        tempfile.TemporaryDirectory() as workdir,
        stack.monolith_with(Path(workdir), STRANGLER_TOKEN_TTL_S="2") as url,
    ):
        token = register_and_login(url, f"short-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
        assert me(url, token).status_code == 200
        deadline = time.monotonic() + 10
        while me(url, token).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.25)

        response = me(url, token)
        assert response.status_code == 401
        assert response.json()["detail"] == "The token has expired; log in again."
