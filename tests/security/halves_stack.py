"""A real stack for the halves' attacks: the monolith (gunicorn, PostgreSQL) behind the proxy.

The monolith is started by the contract suite's black-box server helper on a brand-new database
(migrated, so it holds the demo catalogue), with the settings as shipped; the proxy is
`strangler proxy` in its own process, routing everything to the monolith (step 0). Tests that
need a changed setting start another monolith server on the same database with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.contract.server import PROJECT_ROOT, _free_port, _stop, _tail, monolith, serving

STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Stack:
    """Where to attack: the proxy's URL, the monolith's own URL, and how it was started."""

    proxy_url: str
    monolith_url: str
    database_url: str
    server_env: dict[str, str]

    def forget_login_counters(self) -> None:
        """Empty the login throttles of this deployment, in Redis and in the database cache."""
        import dj_database_url
        import psycopg2

        from service_kit.env import shared_cache_config

        connection = psycopg2.connect(self.database_url)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute("DELETE FROM strangler_cache")
        finally:
            connection.close()
        redis_url = os.environ.get("REDIS_URL")
        if redis_url:
            import redis

            database = dj_database_url.parse(self.database_url)
            prefix = shared_cache_config(service="monolith", database=database, redis_url="")
            client = redis.Redis.from_url(redis_url)
            try:
                for key in client.scan_iter(f"{prefix['KEY_PREFIX']}:*"):
                    client.delete(key)
            finally:
                client.close()

    @contextmanager
    def monolith_with(self, workdir: Path, *, workers: int = 1, **env: str) -> Iterator[str]:
        """Serve the same database from another monolith server with `env` changed."""
        with serving(self.server_env | env, workdir, workers=workers) as url:
            yield url


@contextmanager
def proxy_in_front_of(
    monolith_url: str, workdir: Path, *, server_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `strangler proxy` (every route to `monolith_url`) until the block exits.

    With the monolith's `server_env`, the proxy signs identities with the monolith's key (made
    in its var dir), as `strangler up` gives every process one key: the monolith trusts them.
    """
    port = _free_port()
    log_path = workdir / f"proxy-{port}.log"
    env = dict(os.environ) | {
        "STRANGLER_MONOLITH_URL": monolith_url,
        "STRANGLER_VAR_DIR": str(workdir / "proxy-var"),
        "PYTHONUNBUFFERED": "1",
    }
    if server_env is not None:
        secret = Path(server_env["STRANGLER_VAR_DIR"]) / "identity-secret"
        env["STRANGLER_IDENTITY_SECRET"] = secret.read_text().strip()
    env.pop("STRANGLER_ROUTES", None)
    # In-process registry and rate limits: no state shared with other tests' proxies.
    env.pop("REDIS_URL", None)
    command = [str(Path(sys.executable).with_name("strangler")), "proxy", "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, last = time.monotonic() + STARTUP_TIMEOUT_S, "no answer yet"
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the proxy exited {process.returncode}:\n{_tail(log_path)}")
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not answer ({last}):\n{_tail(log_path)}")
            time.sleep(0.1)
        yield url
    finally:
        _stop(process)


@contextmanager
def halves_stack() -> Iterator[Stack]:
    """Start the monolith on a fresh PostgreSQL database and the proxy in front of it."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the security stack runs on PostgreSQL: set DATABASE_URL (make test does)")
    with (
        monolith(database_url, os.environ.get("BROKER_URL")) as deployment,
        tempfile.TemporaryDirectory(prefix="strangler-security-") as workdir,
        proxy_in_front_of(
            deployment.base_url, Path(workdir), server_env=deployment.server_env
        ) as proxy_url,
    ):
        yield Stack(
            proxy_url=proxy_url,
            monolith_url=deployment.base_url,
            database_url=deployment.server_env["DATABASE_URL"],
            server_env=deployment.server_env,
        )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The halves' stack, shared by the attacks of one module."""
    with halves_stack() as started:
        yield started


def register_and_login(url: str, email: str, password: str) -> str:
    """Register `email` at `url` (through whatever serves it) and return a fresh token."""
    created = requests.post(
        f"{url}/api/users/", json={"email": email, "password": password}, timeout=10
    )
    assert created.status_code == 201, created.text
    return login(url, email, password)


def login(url: str, email: str, password: str) -> str:
    response = requests.post(
        f"{url}/api/auth/token/", json={"email": email, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


__all__ = ["PROJECT_ROOT", "Stack", "bearer", "halves_stack", "login", "register_and_login"]
