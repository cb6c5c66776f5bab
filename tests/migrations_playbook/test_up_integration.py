"""`strangler up` on the embedded default, as a user runs it: ready, serving, and stopped clean."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from migrations_playbook.runner import hide_password

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STRANGLER = Path(sys.executable).with_name("strangler")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(root: int) -> set[int]:
    """Return the pids of every live process below `root`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int], within: float = 3.0) -> set[int]:
    """Return the pids still alive after waiting up to `within` seconds for them to go."""
    deadline = time.monotonic() + within
    while True:
        alive = set()
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            alive.add(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


class Up:
    """`strangler up` running as a subprocess, its output collected line by line."""

    def __init__(self, var_dir: Path, servers: dict[str, str] | None = None) -> None:
        self.monolith_port = _free_port()
        self.proxy_port = _free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "BROKER_URL", "REDIS_URL", "STRANGLER_VAR_DIR"}
        } | (servers or {})
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                str(STRANGLER),
                "up",
                "--var-dir",
                str(var_dir),
                "--monolith-port",
                str(self.monolith_port),
                "--proxy-port",
                str(self.proxy_port),
            ],
            env=env | {"NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        pytest.fail(f"no line matched {pattern!r}; output:\n{self.output()[-4000:]}")

    def pid_of(self, name: str) -> int:
        return int(self.wait_for(rf"started {name} \(pid (\d+)\)", 5).group(1))

    def finish(self, timeout: float = 30) -> int:
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            for pid in _descendants(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()


@pytest.fixture
def up(tmp_path):
    stack = Up(tmp_path / "var")
    yield stack
    stack.kill()


def _proxy_installed() -> bool:
    try:
        return importlib.util.find_spec("strangler_proxy.cli") is not None
    except ModuleNotFoundError:
        return False


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return response.status


def test_up_serves_the_monolith_and_sigint_stops_every_process(up):
    up.wait_for(r"all \d+ processes ready in [\d.]+ s", timeout=45)
    ready_after = time.monotonic() - up.started
    base = f"http://127.0.0.1:{up.monolith_port}"
    assert up.wait_for(rf"ready  monolith +{re.escape(base)}/", 1)
    assert _get(f"{base}/healthz") == 200
    assert _get(f"{base}/readyz") == 200
    if _proxy_installed():
        proxy = f"http://127.0.0.1:{up.proxy_port}"
        assert up.wait_for(rf"ready  proxy +{re.escape(proxy)}/", 1)
        assert _get(f"{proxy}/healthz") == 200
    else:
        assert up.wait_for(r"skipping proxy: strangler_proxy.cli is not installed yet", 1)
    children = [up.pid_of(name) for name in ("monolith", "worker", "beat")]
    assert all(os.getpgid(pid) == pid for pid in children), "each child leads its own group"
    everything = _descendants(up.process.pid)
    assert len(everything) > len(children)  # gunicorn and celery workers too

    up.process.send_signal(signal.SIGINT)

    assert up.finish() == 0, up.output()[-3000:]
    assert _alive(everything) == set()
    assert "SIGINT received; stopping every process" in up.output()
    print(f"strangler up: all ready {ready_after:.1f} s after start")


def test_up_stops_the_rest_and_says_which_child_died(up):
    up.wait_for(r"all \d+ processes ready", timeout=45)
    worker = up.pid_of("worker")
    everything = _descendants(up.process.pid)

    os.kill(worker, signal.SIGKILL)

    assert up.finish() == 1
    assert "worker was killed by signal SIGKILL; stopping the others" in up.output()
    assert "monolith exited with code 0" in up.output()
    assert _alive(everything) == set()


def _rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return result.stdout


@pytest.fixture
def servers():
    """Yield DATABASE_URL, BROKER_URL and REDIS_URL of a fresh database and RabbitMQ vhost."""
    database_url, broker_url = os.environ.get("DATABASE_URL", ""), os.environ.get("BROKER_URL", "")
    if not database_url.startswith("postgres") or not broker_url.startswith("amqp"):
        pytest.skip("needs DATABASE_URL=postgres://... and BROKER_URL=amqp://... (make test)")
    if not shutil.which("rabbitmqctl"):
        pytest.skip("needs rabbitmqctl to give the stack a vhost of its own")
    import psycopg2

    suffix = uuid.uuid4().hex[:10]
    db_parts, broker_parts = urlsplit(database_url), urlsplit(broker_url)
    name = f"{db_parts.path.lstrip('/') or 'strangler'}_up_{suffix}"
    admin = psycopg2.connect(urlunsplit(db_parts._replace(path="/postgres")))
    admin.autocommit = True
    vhost = f"strangler-up-test-{suffix}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, broker_parts.username or "guest", ".*", ".*", ".*")
    try:
        yield {
            "DATABASE_URL": urlunsplit(db_parts._replace(path=f"/{name}")),
            "BROKER_URL": urlunsplit(broker_parts._replace(path=f"/{vhost}")),
            "REDIS_URL": os.environ.get("REDIS_URL", ""),
            "vhost": vhost,
        }
    finally:
        _rabbitmqctl("delete_vhost", vhost)
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_up_passes_database_and_broker_urls_through_to_every_process(servers, tmp_path):
    import psycopg2

    vhost = servers.pop("vhost")
    stack = Up(tmp_path / "var", servers)
    try:
        stack.wait_for(r"all \d+ processes ready", timeout=45)
        assert f"database: {hide_password(servers['DATABASE_URL'])};" in stack.output()
        assert _get(f"http://127.0.0.1:{stack.monolith_port}/readyz") == 200
        with psycopg2.connect(servers["DATABASE_URL"]) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_migrations")
            assert cursor.fetchone()[0] > 0
        queues = _rabbitmqctl("list_queues", "-p", vhost, "name", "consumers", "--no-table-headers")
        consumers = dict(line.split() for line in queues.splitlines() if line.strip())
        assert int(consumers["monolith.jobs"]) >= 1
        assert int(consumers["monolith.emails"]) >= 1
        stack.process.send_signal(signal.SIGINT)
        assert stack.finish() == 0
    finally:
        stack.kill()
