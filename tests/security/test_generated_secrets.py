"""Secrets nobody configured are made per var dir, never shipped: defaults that are not public.

Attacks: use the admin API of a `strangler proxy` started alone with no token set; forge
sessions or idempotency fingerprints with the development `SECRET_KEY` everyone can read in
the source; read a generated secret as another user of the machine.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time

import pytest
import requests

from .conftest import TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PUBLISHED_KEY = "dev-only-insecure-secret-key-change-me-in-production"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_standalone_strangler_proxy_with_no_token_set_is_closed_too(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "STRANGLER_ADMIN_TOKEN"}
    env |= {"STRANGLER_VAR_DIR": str(tmp_path), "STRANGLER_MONOLITH_URL": "http://127.0.0.1:9",
            "STRANGLER_PROXY_PORT": str(port)}  # fmt: skip
    env.pop("REDIS_URL", None)
    proxy = subprocess.Popen(
        [sys.executable, "-m", "migrations_playbook.cli", "proxy"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{base}/_strangler/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert proxy.poll() is None and time.monotonic() < deadline, "no proxy"
                time.sleep(0.1)
        refused = requests.put(
            f"{base}/_strangler/routes", json={"routes": [{"name": "x", "prefix": "/"}]},
            timeout=TIMEOUT,
        )  # fmt: skip
        assert refused.status_code == 401
        token_file = tmp_path / "admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        listed = requests.get(
            f"{base}/_strangler/routes", headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )  # fmt: skip
        assert listed.status_code == 200
    finally:
        proxy.terminate()
        _, err = proxy.communicate(timeout=10)
    assert token not in err  # where the token is, is logged; never the token itself


@pytest.mark.parametrize("settings_module", ["monolith.settings", "extracted.payments.settings"])
def test_an_unset_secret_key_is_generated_per_var_dir_never_the_published_one(
    tmp_path, settings_module
):
    env = {k: v for k, v in os.environ.items() if k != "STRANGLER_SECRET_KEY"}
    env |= {"STRANGLER_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": settings_module}
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    keys = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    ]  # fmt: skip
    key_file = tmp_path / "secret-key"
    assert keys[0] == keys[1] == key_file.read_text().strip()  # the same across restarts
    assert PUBLISHED_KEY not in keys[0] and len(keys[0]) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_the_stacks_generated_secrets_are_readable_by_their_owner_only(stack):
    for name in ("admin-token", "identity-secret", "secret-key"):
        path = stack.var_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    # Every half runs on the one generated key: none on the published one.
    assert PUBLISHED_KEY not in (stack.var_dir / "secret-key").read_text()
