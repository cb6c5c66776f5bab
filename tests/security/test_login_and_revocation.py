"""Guessing passwords at the edge, and tokens the proxy keeps vouching for after revocation.

Attacks: try passwords at full speed through the proxy; keep using a token after its owner
changed their password, or after the users' half revoked it out of band (an administrator
disabling the account), counting on the proxy's token cache.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import time
from urllib.parse import urlsplit

import pytest
import requests

from migrations_playbook.databases import MONOLITH, service_environment

from .conftest import PASSWORD, TIMEOUT, customer_new

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _login_from(proxy: str, source: str, email: str, password: str):
    """POST a login from the client address `source` (another loopback address)."""
    parts = urlsplit(proxy)
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=TIMEOUT, source_address=(source, 0)
    )
    try:
        conn.request(
            "POST", "/api/auth/token/", body=json.dumps({"email": email, "password": password}),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_password_guessing_through_the_proxy_is_throttled_per_client_address(proxy):
    victim = customer_new(proxy)
    guesser = "127.0.0.2"
    refused = None
    for attempt in range(1, 40):
        # Other accounts too: one address guessing many accounts' passwords.
        email = victim.email if attempt % 2 else f"nobody-{attempt}@example.com"
        status, headers, body = _login_from(proxy, guesser, email, f"guess-{attempt}")
        if status == 429 and headers.get("X-Strangler-Upstream") == "proxy":
            refused = (attempt, headers, json.loads(body))
            break
        assert status in (400, 401, 429), body
    assert refused is not None, "39 wrong passwords in a row were all let through"
    attempt, headers, body = refused
    assert attempt <= 21  # the default rule: 20 failures, then one every 2 s
    assert int(headers["Retry-After"]) >= 1
    assert body["error"] == "rate_limited" and body["detail"]
    # Even the right password waits now, from that address; another address is not held up
    # (another account: the victim's own is now throttled at the monolith, per account, from
    # every address, after its ten failures).
    assert _login_from(proxy, guesser, victim.email, PASSWORD)[0] == 429
    bystander = customer_new(proxy)
    assert _login_from(proxy, "127.0.0.3", bystander.email, PASSWORD)[0] == 200


def test_successful_logins_from_one_address_are_never_throttled_by_the_proxy(proxy):
    someone = customer_new(proxy)
    statuses = {_login_from(proxy, "127.0.0.4", someone.email, PASSWORD)[0] for _ in range(30)}
    assert statuses == {200}


def _monolith_accepts(stack, token: str) -> bool:
    answer = requests.get(
        f"{stack.urls['monolith']}/api/users/me/", headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )  # fmt: skip
    return answer.status_code == 200


def _payments_status(proxy: str, token: str) -> int:
    return requests.get(
        f"{proxy}/api/payments/", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    ).status_code


def _refused_within(proxy: str, token: str, seconds: float) -> float | None:
    """Return how long until the proxy stops vouching for `token`, or None if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if _payments_status(proxy, token) == 401:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def test_a_token_revoked_by_a_password_change_through_the_proxy_is_refused_within_a_second(
    stack, proxy, customer
):
    assert _payments_status(proxy, customer.token) == 200  # the proxy now caches the token
    changed = requests.patch(
        f"{proxy}/api/users/me/", json={"password": "n3w-Passw0rd-security",
                                        "current_password": customer.password},
        headers=customer.auth, timeout=TIMEOUT,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    if _monolith_accepts(stack, customer.token):
        pytest.skip("this monolith keeps a token across a password change (the users' half)")

    assert _refused_within(proxy, customer.token, 1.0) is not None


def _deactivate(stack, user_id: int) -> None:
    """Disable a user in the monolith's database, as its Django admin would (out of band)."""
    url = service_environment(
        service=MONOLITH, settings="monolith.settings", environ=stack.env, var_dir=stack.var_dir
    )["DATABASE_URL"]
    statement = "UPDATE users_user SET is_active = false WHERE id = %s"
    if url.startswith("postgres"):
        import psycopg2

        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute(statement, (user_id,))
        connection.close()
    else:
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            connection.execute(statement.replace("%s", "?"), (user_id,))


def test_a_revocation_a_half_publishes_reaches_the_proxy_within_a_second(
    stack, proxy, customer, settings
):
    if not stack.env.get("REDIS_URL"):
        pytest.skip("out-of-band revocations travel on Redis; this stack has no REDIS_URL")
    from service_kit.revocations import revocation_publish

    assert _payments_status(proxy, customer.token) == 200  # cached by the proxy
    _deactivate(stack, customer.id)
    assert not _monolith_accepts(stack, customer.token)
    # Without a word from the half, the proxy keeps vouching from its cache (its TTL, 30 s).
    assert _payments_status(proxy, customer.token) == 200

    settings.REDIS_URL = stack.env["REDIS_URL"]
    settings.STRANGLER_AUTH_REVOKE_CHANNEL = "strangler:auth:revoked"
    revocation_publish(user_id=customer.id)

    assert _refused_within(proxy, customer.token, 1.0) is not None
