"""What the end-to-end walks share: throwaway servers, a stack in the background, the CLI.

`servers()` yields a fresh PostgreSQL database (the monolith's; each service's is derived from
it) and a RabbitMQ vhost, and drops them all afterwards. `Stack` runs `strangler up --step N` on
free ports. `playbook()` runs `strangler playbook ...` as an operator does. `drained()` waits
until the outbox of every half and every queue of a lag gate are empty, twice in a row.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from migrations_playbook.databases import service_database_url
from migrations_playbook.gates import GateContext, outbox_lag_measure

STRANGLER = Path(sys.executable).with_name("strangler")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout


@contextlib.contextmanager
def servers(label: str, services: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Yield DATABASE_URL, BROKER_URL, REDIS_URL of a fresh database and vhost; drop them after.

    `services` are the extracted services whose derived databases are dropped too.
    """
    database_url, broker_url = os.environ.get("DATABASE_URL", ""), os.environ.get("BROKER_URL", "")
    if not database_url.startswith("postgres") or not broker_url.startswith("amqp"):
        pytest.skip("needs DATABASE_URL=postgres://... and BROKER_URL=amqp://...")
    if not shutil.which("rabbitmqctl"):
        pytest.skip("needs rabbitmqctl to give the stack a vhost of its own")
    import psycopg2

    suffix = uuid.uuid4().hex[:10]
    db_parts, broker_parts = urlsplit(database_url), urlsplit(broker_url)
    name = f"{db_parts.path.lstrip('/') or 'strangler'}_{label}_{suffix}"
    admin = psycopg2.connect(urlunsplit(db_parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    vhost = f"strangler-{label}-{suffix}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, broker_parts.username or "guest", ".*", ".*", ".*")
    monolith_url = urlunsplit(db_parts._replace(path=f"/{name}"))
    try:
        yield {
            "DATABASE_URL": monolith_url,
            "BROKER_URL": urlunsplit(broker_parts._replace(path=f"/{vhost}")),
            "REDIS_URL": os.environ.get("REDIS_URL", ""),
        }
    finally:
        _rabbitmqctl("delete_vhost", vhost)
        derived = [
            urlsplit(
                service_database_url(service=service, database_url=monolith_url, var_dir=Path())
            ).path.lstrip("/")
            for service in services
        ]
        with admin.cursor() as cursor:
            for database in (name, *derived):
                cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


class Stack:
    """`strangler up --step N` in the background on free ports, its output collected."""

    def __init__(self, env: dict[str, str], var_dir: Path, *, step: int, http: tuple[str, ...]):
        self.ports = {name: free_port() for name in http}
        argv = [str(STRANGLER), "up", "--step", str(step), "--var-dir", str(var_dir)]
        argv += [arg for name, port in self.ports.items() for arg in (f"--{name}-port", str(port))]
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            argv, env=env | {"NO_COLOR": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_ready(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(r"all \d+ processes ready in", line) for line in self.lines):
                return time.monotonic() - self.started
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail("the stack did not become ready:\n" + "\n".join(self.lines[-60:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def playbook(env: dict[str, str], *args: str, expect: int = 0) -> str:
    """Run `strangler playbook ARGS` as an operator does; return its output."""
    done = subprocess.run(
        [str(STRANGLER), "playbook", *args], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == expect, output
    return output


def drained(ctx: GateContext, lag_gate, timeout: float = 60) -> None:
    """Wait until the outbox lag the gate measures is zero twice, 0.3 s apart."""
    deadline = time.monotonic() + timeout
    zero = 0
    while zero < 2:
        assert time.monotonic() < deadline, f"the outbox did not drain within {timeout:g} s"
        zero = zero + 1 if outbox_lag_measure(lag_gate, ctx)["messages"] == 0 else 0
        time.sleep(0.3)
