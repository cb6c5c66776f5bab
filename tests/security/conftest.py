"""The stack an outsider meets: `strangler up --step 1` with defaults, on real servers.

One stack for the whole package (it takes about half a minute to start): the proxy in front of
the monolith and the extracted payments service, on a fresh PostgreSQL database and RabbitMQ
vhost when DATABASE_URL and BROKER_URL name them (migrations_playbook.compare.stack does the
same for `strangler compare`), payments at the end of its rollout (`extracted`). Nothing is
configured: every secret is the one the runner generated in the stack's var dir.

The attacks talk to the proxy as a client would (requests, raw sockets); a test that needs an
insider's view (the proxy's log, the var dir, a half's own port) says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from migrations_playbook.compare.stack import StackInfo, stack_started

PASSWORD = "s3cret-Passw0rd-security"
TIMEOUT = 15.0


@pytest.fixture(scope="package")
def stack() -> Iterator[StackInfo]:
    """The step-1 stack, started with defaults for this package, removed afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="strangler-security-") as out,
        stack_started(step=1, label="security", out_dir=Path(out), ready_timeout=120) as info,
    ):
        yield info


@pytest.fixture(scope="package")
def proxy(stack: StackInfo) -> str:
    """The proxy's base URL: the only address an outsider reaches."""
    return stack.urls["proxy"]


@pytest.fixture(scope="package")
def admin_token(stack: StackInfo) -> str:
    """The admin token the runner generated (an insider's: read from the var dir)."""
    return (stack.var_dir / "admin-token").read_text().strip()


@pytest.fixture(scope="package")
def admin(admin_token: str) -> dict[str, str]:
    """Headers of a legitimate admin call."""
    return {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}


@dataclass
class Customer:
    """A user registered and logged in through the proxy."""

    id: int
    email: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def customer_new(proxy: str) -> Customer:
    """Register a user through the proxy and log them in; return them with their token."""
    email = f"security-{uuid.uuid4().hex[:12]}@example.com"
    created = requests.post(
        f"{proxy}/api/users/", json={"email": email, "password": PASSWORD}, timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text
    return Customer(created.json()["id"], email, PASSWORD, login(proxy, email, PASSWORD))


def login(proxy: str, email: str, password: str) -> str:
    answer = requests.post(
        f"{proxy}/api/auth/token/", json={"email": email, "password": password}, timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


@pytest.fixture
def customer(proxy: str) -> Customer:
    return customer_new(proxy)


@pytest.fixture
def restored_table(proxy: str, admin: dict[str, str]) -> Iterator[dict]:
    """The route table in force; put back as it was after the test changed it."""
    table = requests.get(f"{proxy}/_strangler/routes", headers=admin, timeout=TIMEOUT).json()
    yield table
    table.pop("version", None)
    back = requests.put(f"{proxy}/_strangler/routes", json=table, headers=admin, timeout=TIMEOUT)
    assert back.status_code == 200, back.text


def stack_log(stack: StackInfo, *, until: str = "", timeout: float = 5.0) -> str:
    """Everything the stack's processes printed so far (the proxy's access log included).

    With `until`, wait (boundedly) for that text to appear: logs are written in batches.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = stack.log.read_text(errors="replace")
        if until in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def raw_exchange(base: str, payload: bytes, *, timeout: float = 10.0, source: str = "") -> bytes:
    """Send `payload` on a new connection to `base` and return all it answered until close."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection(
        (host, int(port)), timeout=timeout, source_address=(source, 0) if source else None
    ) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
    return received


def run(coroutine):
    """Run one coroutine to completion (tests here are synchronous)."""
    return asyncio.run(coroutine)
