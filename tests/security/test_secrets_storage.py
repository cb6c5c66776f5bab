"""What the proxy stores (recordings, shadow diffs, their curl replays) never holds a secret.

Attacks, as someone who gets to read what the proxy keeps (an operator's laptop, a replay file
passed around, a dashboard left open): find a password, a token, a card number, a cookie or a
signed identity in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from .conftest import TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CARD = "4242424242424242"


def _set(proxy: str, admin: dict, route: str, change: dict) -> None:
    answer = requests.patch(
        f"{proxy}/_strangler/routes/{route}", json=change, headers=admin, timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text


def test_a_login_password_its_token_and_a_card_number_are_never_recorded(
    proxy, admin, customer, restored_table
):
    _set(proxy, admin, "default", {"record": 1})
    _set(proxy, admin, "payments", {"record": 1})
    requests.delete(f"{proxy}/_strangler/recordings", headers=admin, timeout=TIMEOUT)

    logged_in = requests.post(
        f"{proxy}/api/auth/token/", json={"email": customer.email, "password": customer.password},
        timeout=TIMEOUT,
    )  # fmt: skip
    assert logged_in.status_code == 200
    token = logged_in.json()["token"]
    requests.post(
        f"{proxy}/api/payments/", json={"order_id": "8c7a0f52-8c4e-4f7b-9b51-3c2f1f9e0a11",
                                        "card_number": CARD, "cvc": "123"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-security",
                 "Cookie": "sessionid=cookie-secret"},
        timeout=TIMEOUT,
    )  # fmt: skip
    recorded = requests.get(f"{proxy}/_strangler/recordings", headers=admin, timeout=TIMEOUT)

    lines = [json.loads(line) for line in recorded.text.splitlines()]
    assert {line["path"] for line in lines} >= {"/api/auth/token/", "/api/payments/"}
    for secret in (customer.password, token, customer.token, CARD, "cookie-secret"):
        assert secret not in recorded.text
    login = next(line for line in lines if line["path"] == "/api/auth/token/")
    assert json.loads(login["body"])["password"] == "<redacted>"
    assert json.loads(login["response"]["body"])["token"] == "<redacted>"
    pay = next(line for line in lines if line["path"] == "/api/payments/")
    assert pay["headers"]["Authorization"] == "Bearer <redacted>"
    assert pay["headers"]["Cookie"] == "<redacted>"
    assert json.loads(pay["body"])["card_number"] == "<redacted>"


def test_shadow_diffs_and_their_curl_replay_never_hold_the_callers_token_or_identity(
    proxy, admin, customer, restored_table
):
    # The payments service does not serve /api/users/me/: mirrored there, every read differs,
    # and the proxy stores the diff with the request and both answers.
    table = {k: v for k, v in restored_table.items() if k != "version"}
    table["routes"] = [
        {"name": "me-shadow", "path": "/api/users/me/", "mode": "shadow", "service": "payments",
         "compare": {"noise_sample": 0}},
        *table["routes"],
    ]  # fmt: skip
    put = requests.put(f"{proxy}/_strangler/routes", json=table, headers=admin, timeout=TIMEOUT)
    assert put.status_code == 200, put.text
    for _ in range(3):
        assert (
            requests.get(
                f"{proxy}/api/users/me/", headers=customer.auth, timeout=TIMEOUT
            ).status_code
            == 200
        )
    deadline, listing = time.monotonic() + 10, {"diffs": []}
    while not listing["diffs"] and time.monotonic() < deadline:
        time.sleep(0.2)
        listing = requests.get(
            f"{proxy}/_strangler/diffs?route=me-shadow", headers=admin, timeout=TIMEOUT
        ).json()
    assert listing["diffs"], "no diff was stored"
    diff_id = listing["diffs"][-1]["id"]
    diff = requests.get(f"{proxy}/_strangler/diffs/{diff_id}", headers=admin, timeout=TIMEOUT)
    curl = requests.get(f"{proxy}/_strangler/diffs/{diff_id}/curl", headers=admin, timeout=TIMEOUT)

    stored = diff.text + curl.text
    assert customer.email in diff.text  # the diff is there, with the monolith's answer
    assert customer.token not in stored
    assert "eyJ" not in stored  # no signed identity (a JWT), whoever it was signed for
    headers = dict(diff.json()["headers"])
    assert headers["Authorization"] == "Bearer <redacted>"
    assert headers["X-Strangler-Identity"] == "<redacted>"
    assert "'Authorization: Bearer <redacted>'" in curl.json()["monolith"]


def test_a_route_table_that_tries_to_shrink_the_deny_list_is_refused(proxy, admin):
    answer = requests.patch(
        f"{proxy}/_strangler/routes/payments", json={"redact": {"keep": ["authorization"]}},
        headers=admin, timeout=TIMEOUT,
    )  # fmt: skip
    assert answer.status_code == 400
    assert "cannot remove" in " ".join(answer.json()["fields"]["routes"])


@pytest.mark.parametrize(
    ("variable", "value"),
    [("STRANGLER_REDACT_HEADERS", "none"), ("STRANGLER_RECORD_REDACT", "x-api-key")],
)
def test_an_environment_that_tries_to_shrink_the_deny_list_stops_the_proxy(
    tmp_path, variable, value
):
    env = {**os.environ, variable: value, "STRANGLER_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "migrations_playbook.cli", "proxy", "--port", "9"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert variable in done.stderr and "deny-list" in done.stderr
