"""Start the monolith as a black box for the default run: fresh database, migrate, serve, stop.

Only subprocesses, requests and the standard library: the suite talks to the server over HTTP
like any client. `psycopg2` (a pinned dependency of the project) is imported lazily, only to
create and drop the throw-away PostgreSQL database.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 40.0
COMMAND_TIMEOUT_S = 120.0
LISTENING = re.compile(r"Listening at: http://[^:]+:(\d+)")


@dataclass(frozen=True)
class Deployment:
    """Where the suite sends its requests, and the staff account it may use (if any)."""

    base_url: str
    staff_email: str | None = None
    staff_password: str | None = None
    # "postgresql" or "sqlite" when this suite started the server; None for a given URL.
    database: str | None = None
    # The started server's environment, to start more processes on the same database.
    server_env: dict[str, str] | None = field(default=None, repr=False, compare=False)


class ServerFailed(RuntimeError):
    """The monolith could not be started; the message carries its log's tail."""


@contextmanager
def monolith(database_url: str | None, broker_url: str | None) -> Iterator[Deployment]:
    """Run the monolith on a fresh database until the block exits, then remove every trace.

    `database_url` names a PostgreSQL server (its database part is ignored: a new database
    `strangler_contract_<random>` is created there and dropped afterwards); anything else, or
    None, means a throw-away SQLite file.
    """
    workdir = Path(tempfile.mkdtemp(prefix="strangler-contract-"))
    staff_email = f"staff-{uuid.uuid4().hex[:12]}@contract.example.com"
    staff_password = f"staff-{uuid.uuid4().hex}"
    try:
        with _database(database_url, workdir) as server_database_url:
            database = "sqlite" if server_database_url.startswith("sqlite") else "postgresql"
            env = _server_env(server_database_url, broker_url, workdir)
            _manage(["migrate", "--noinput"], env)
            # The staff account is created while the server boots: both only need the schema.
            superuser = _start_manage(
                ["createsuperuser", "--noinput"],
                env
                | {
                    "DJANGO_SUPERUSER_EMAIL": staff_email,
                    "DJANGO_SUPERUSER_PASSWORD": staff_password,
                },
            )
            try:
                with serving(env, workdir, workers=1) as base_url:
                    _finish_manage(superuser)
                    yield Deployment(base_url, staff_email, staff_password, database, env)
            finally:
                if superuser.poll() is None:  # the server failed first; do not leave it behind
                    superuser.kill()
                    superuser.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _server_env(database_url: str, broker_url: str | None, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="monolith.settings",
        DATABASE_URL=database_url,
        STRANGLER_VAR_DIR=str(workdir / "var"),
        # Jobs (the confirmation email) run in the request, into an in-memory mailbox: nothing
        # piles up on a shared broker, and readiness still checks the broker for real.
        STRANGLER_CELERY_EAGER="1",
        STRANGLER_EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        # PBKDF2's deliberate slowness is not part of the contract; every test registers users.
        STRANGLER_FAST_PASSWORD_HASHER="1",
        PYTHONUNBUFFERED="1",
    )
    if broker_url:
        env["BROKER_URL"] = broker_url
    else:
        env.pop("BROKER_URL", None)  # the embedded filesystem broker, under STRANGLER_VAR_DIR
    return env


@contextmanager
def _database(database_url: str | None, workdir: Path) -> Iterator[str]:
    """Yield the URL of a brand-new database; drop it afterwards."""
    parts = urlsplit(database_url or "")
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        yield f"sqlite:///{workdir / 'contract.sqlite3'}"
        return
    import psycopg2  # the project's own driver; only needed when we create the database

    name = f"strangler_contract_{uuid.uuid4().hex[:12]}"
    admin_dsn = urlunsplit(parts._replace(path="/postgres"))
    _admin_sql(psycopg2, admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        # WITH (FORCE) ends connections a killed worker may have left behind (PostgreSQL 13+).
        _admin_sql(psycopg2, admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_sql(psycopg2, dsn: str, statement: str) -> None:
    connection = psycopg2.connect(dsn, connect_timeout=5)
    try:
        connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def _manage(args: list[str], env: dict[str, str]) -> None:
    _finish_manage(_start_manage(args, env))


def _start_manage(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish_manage(process: subprocess.Popen) -> None:
    """Wait, boundedly, for a manage.py command; raise with its output if it failed."""
    try:
        output, _ = process.communicate(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    if process.returncode != 0:
        raise ServerFailed(
            f"{' '.join(process.args[1:])} exited {process.returncode}:\n{output[-3000:]}"
        )


@contextmanager
def serving(env: dict[str, str], workdir: Path, *, workers: int) -> Iterator[str]:
    """Start gunicorn on an ephemeral port (runserver if gunicorn is missing); yield its URL.

    One worker process with threads is the default: requests still run concurrently (the race
    tests need that), and the suite's results do not depend on which process served them.
    `test_multiprocess.py` starts a second server with several workers on purpose.
    """
    log_path = workdir / f"server-{uuid.uuid4().hex[:6]}.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if gunicorn.exists():
        # Port 0: the kernel picks a free port and gunicorn logs which one it got.
        command = [
            str(gunicorn),
            "monolith.wsgi",
            "--bind=127.0.0.1:0",
            f"--workers={workers}",
            "--worker-class=gthread",
            "--threads=8",
            "--timeout=30",
            # Import Django once in the arbiter and fork: workers are ready sooner.
            "--preload",
            # Its default control socket is one fixed path per machine user, shared with every
            # other gunicorn running here; a throw-away server needs none.
            "--no-control-socket",
        ]
        port = None
    else:
        port = _free_port()
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base_url = _wait_ready(process, log_path, port)
        yield base_url
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen, log_path: Path, port: int | None) -> str:
    """Wait, boundedly, for the port to be known and /readyz to answer 200; return the URL."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"the server exited {process.returncode}:\n{_tail(log_path)}")
        if port is None:
            match = LISTENING.search(log_path.read_text(errors="replace"))
            port = int(match.group(1)) if match else None
        if port is not None:
            url = f"http://127.0.0.1:{port}"
            try:
                response = requests.get(f"{url}/readyz", timeout=2)
            except requests.RequestException as exc:
                last = f"/readyz unreachable: {exc}"
            else:
                if response.status_code == 200:
                    return url
                last = f"/readyz answered {response.status_code}: {response.text[:300]}"
        time.sleep(0.1)
    raise ServerFailed(
        f"the server was not ready within {STARTUP_TIMEOUT_S:g}s ({last}):\n{_tail(log_path)}"
    )


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and its workers (its own process group), forcefully if it lingers."""
    if process.poll() is not None:
        return
    # SIGINT is gunicorn's quick shutdown: a test server need not drain keep-alive connections.
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"
