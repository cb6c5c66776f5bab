"""The proxy's admin API holds every route: closed to anyone without the admin token.

Attacks, as an outsider who reaches the proxy: replace the route table (send every request,
passwords and cards included, to a server of theirs), read diffs and recordings (user data),
post cross-site as text/plain, pose as someone else in the change log, fish for the token in
the proxy's log.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import requests

from .conftest import TIMEOUT, stack_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVIL_TABLE = {
    "services": {"evil": {"url": "http://203.0.113.66:80", "health_path": None}},
    "routes": [{"name": "all", "prefix": "/", "mode": "extracted", "service": "evil"}],
}


def test_route_table_replace_without_admin_token_is_refused(proxy, admin):
    before = requests.get(f"{proxy}/_strangler/routes", headers=admin, timeout=TIMEOUT).json()

    for headers in ({}, {"Authorization": "Bearer guessed-token-0123456789"}):
        answer = requests.put(
            f"{proxy}/_strangler/routes", json=EVIL_TABLE, headers=headers, timeout=TIMEOUT
        )
        assert answer.status_code == 401
        assert answer.json()["error"] == "not_authenticated"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")

    after = requests.get(f"{proxy}/_strangler/routes", headers=admin, timeout=TIMEOUT).json()
    assert after == before  # same version, same routes: nothing reached the attacker's server


@pytest.mark.parametrize(
    "path", ["routes", "routes/payments", "registry", "diffs", "noise", "recordings",
             "metrics", "changes"],
)  # fmt: skip
def test_admin_reads_without_admin_token_are_refused(proxy, path):
    answer = requests.get(f"{proxy}/_strangler/{path}", timeout=TIMEOUT)

    assert answer.status_code == 401
    assert answer.json()["error"] == "not_authenticated"


def test_health_and_the_dashboard_shell_answer_without_a_token_and_hold_no_data(proxy):
    assert requests.get(f"{proxy}/_strangler/healthz", timeout=TIMEOUT).status_code == 200
    page = requests.get(f"{proxy}/_strangler/", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "payments" not in page.text  # no route, diff or instance: the page asks for them


def test_cross_site_text_plain_post_to_the_admin_api_is_refused(proxy, admin_token):
    # What a page on another site can send without a CORS preflight: text/plain, no token.
    forged = requests.patch(
        f"{proxy}/_strangler/routes/payments", data='{"mode": "monolith"}',
        headers={"Content-Type": "text/plain"}, timeout=TIMEOUT,
    )  # fmt: skip
    assert forged.status_code == 401
    # And text/plain is refused even with the token: writes are JSON only.
    plain = requests.patch(
        f"{proxy}/_strangler/routes/payments", data='{"mode": "monolith"}',
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {admin_token}"},
        timeout=TIMEOUT,
    )  # fmt: skip
    assert plain.status_code == 415
    assert plain.json()["error"] == "unsupported_media_type"
    mode = requests.get(
        f"{proxy}/_strangler/routes/payments",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=TIMEOUT,
    ).json()["mode"]
    assert mode == "extracted"


def test_an_actor_header_is_recorded_only_as_a_claim_beside_the_tokens_holder(
    proxy, admin, restored_table
):
    changed = requests.patch(
        f"{proxy}/_strangler/routes/payments", json={"timeout": 29},
        headers=admin | {"X-Strangler-Actor": "the-ceo"}, timeout=TIMEOUT,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text

    changes = requests.get(f"{proxy}/_strangler/changes", headers=admin, timeout=TIMEOUT).json()
    last = changes["changes"][-1]
    assert last["who"] == "admin"
    assert last["claimed_actor"] == "the-ceo"


def test_the_admin_and_user_tokens_never_reach_the_proxy_log(stack, proxy, admin, customer):
    requests.get(f"{proxy}/_strangler/diffs", headers=admin, timeout=TIMEOUT)
    requests.get(f"{proxy}/api/payments/", headers=customer.auth, timeout=TIMEOUT)
    requests.get(f"{proxy}/api/users/me/", headers=customer.auth, timeout=TIMEOUT)
    requests.get(f"{proxy}/api/payments/{customer.id}-seen/", timeout=TIMEOUT)
    log = stack_log(stack, until=f"/api/payments/{customer.id}-seen/")
    assert f"/api/payments/{customer.id}-seen/" in log  # the access log has these requests
    assert admin["Authorization"].removeprefix("Bearer ") not in log
    assert customer.token not in log


def test_the_generated_admin_token_sits_in_the_var_dir_readable_by_its_owner_only(stack):
    token = stack.var_dir / "admin-token"
    mode = stat.S_IMODE(token.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert len(token.read_text().strip()) >= 32


def test_strangler_routes_finds_the_generated_admin_token_in_the_var_dir(stack, proxy):
    env = {k: v for k, v in os.environ.items() if k != "STRANGLER_ADMIN_TOKEN"}
    env["STRANGLER_VAR_DIR"] = str(stack.var_dir)
    listed = subprocess.run(
        [sys.executable, "-m", "migrations_playbook.cli", "routes", "--proxy", proxy],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "payments" in listed.stdout and "extracted" in listed.stdout
    elsewhere = subprocess.run(
        [sys.executable, "-m", "migrations_playbook.cli", "routes", "--proxy", proxy],
        env=env | {"STRANGLER_VAR_DIR": str(stack.var_dir / "nowhere")}, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert elsewhere.returncode == 1 and "401" in elsewhere.stderr
    assert "no admin token" in elsewhere.stderr
