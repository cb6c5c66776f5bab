"""Start the stack of one playbook step for a comparison, and remove every trace afterwards.

The stack is `strangler up --step N` itself, run as a child process (the runner owns signal
handling and the foreground, so it runs in a process of its own), with:

* a temporary var dir (the embedded default's SQLite files and broker folders live there);
* on PostgreSQL (DATABASE_URL names one), a fresh database ``<name>_cmp<random>`` per stack,
  and the services' ``<that>_<service>``, all dropped afterwards; on RabbitMQ (BROKER_URL
  amqp://, with `rabbitmqctl` on this machine), a fresh vhost per stack, deleted afterwards;
  nothing of one side leaks into the other;
* a free port for every HTTP process;
* the routes of steps 1..N already at the last stage of their rollout (``extracted``), through
  the playbook's state file, so step N means "after the extraction";
* ``STRANGLER_FAST_PASSWORD_HASHER=1`` on both sides (every contract test registers users,
  and PBKDF2's cost is not part of the contract);
* a staff account created once the stack is ready, for the staff-only tests, then the backfill
  of every step 1..N run, as `apply` would have: the staff account (made in the monolith's
  database, as an operator's `createsuperuser` does) reaches a service that owns users by then.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from migrations_playbook.databases import MONOLITH, database_ensure, service_environment
from migrations_playbook.processes import PROCESSES, processes_for
from migrations_playbook.runner import importable
from migrations_playbook.state import state_read, state_write, step_state
from migrations_playbook.stepfile import Step, steps_load
from migrations_playbook.up_process import UpProcess, up_command

from .suite import Staff

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class StackFailed(RuntimeError):
    """A step's stack could not be started; the message carries the runner's last lines."""


@dataclass
class StackInfo:
    """A running stack: where to send requests, and what it runs on."""

    step: int
    url: str
    urls: dict[str, str]
    var_dir: Path
    env: dict[str, str]
    log: Path
    staff: Staff | None
    notes: list[str] = field(default_factory=list)
    died: Callable[[], str | None] = lambda: None

    def check_alive(self) -> str | None:
        """Return why the stack stopped on its own (a child died), or None while it runs."""
        return self.died()


def free_port() -> int:
    """Return a TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def final_modes(steps: dict[int, Step], upto: int) -> dict[int, str]:
    """Return, for each step 1..`upto` that moves routes, the mode its rollout ends in."""
    return {
        number: step.rollout[-1].mode
        for number, step in steps.items()
        if 0 < number <= upto and step.routes and step.rollout
    }


def _fresh_database(environ: dict[str, str]) -> str | None:
    """Return a new PostgreSQL database URL next to the operator's, or None off PostgreSQL."""
    url = environ.get("DATABASE_URL") or ""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return None
    name = (parts.path.lstrip("/") or "strangler") + f"_cmp{secrets.token_hex(4)}"
    fresh = urlunsplit(parts._replace(path=f"/{name}"))
    database_ensure(fresh)
    return fresh


def _drop_databases(url: str, services: list[str]) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")), connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for database in [name, *(f"{name}_{service}" for service in services)]:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
    finally:
        connection.close()


def _fresh_vhost(environ: dict[str, str]) -> tuple[str, str] | None:
    """Return (BROKER_URL, vhost) of a new RabbitMQ vhost, or None when that cannot be done.

    Only on AMQP with `rabbitmqctl` on this machine (a local broker); elsewhere the stack uses
    the operator's BROKER_URL as it is, and its queues may hold the other side's events.
    """
    url = environ.get("BROKER_URL") or ""
    parts = urlsplit(url)
    if not parts.scheme.startswith("amqp") or not shutil.which("rabbitmqctl"):
        return None
    vhost = f"strangler-compare-{secrets.token_hex(4)}"
    try:
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
    except (subprocess.SubprocessError, OSError):
        return None
    return urlunsplit(parts._replace(path=f"/{vhost}")), vhost


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(  # noqa: S603 (fixed argv)
        ["rabbitmqctl", "-q", *args],  # noqa: S607 (found on PATH by _fresh_vhost)
        check=True,
        capture_output=True,
        timeout=60,
    )


def _create_staff(env: dict[str, str], var_dir: Path) -> Staff:
    """Create a superuser in the monolith's database of this stack; return its credentials."""
    staff = Staff(f"compare-{secrets.token_hex(6)}@compare.example.com", secrets.token_urlsafe(18))
    monolith_env = env | service_environment(
        service=MONOLITH, settings="monolith.settings", environ=env, var_dir=var_dir
    )
    monolith_env |= {
        "DJANGO_SUPERUSER_EMAIL": staff.email,
        "DJANGO_SUPERUSER_PASSWORD": staff.password,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=PROJECT_ROOT,
        env=monolith_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise StackFailed(f"createsuperuser exited {done.returncode}: {done.stderr[-1500:]}")
    return staff


def _backfill(steps: dict[int, Step], upto: int, env: dict[str, str], var_dir: Path) -> None:
    """Run the backfill commands of steps 1..`upto` in their services, as `apply` would."""
    for number, step in steps.items():
        if not 0 < number <= upto:
            continue
        for job in step.backfill:
            service = step.service(job.service)
            assert service is not None  # the step file's validation guarantees it
            half_env = env | service_environment(
                service=service.name, settings=service.settings, environ=env, var_dir=var_dir
            )
            done = subprocess.run(  # noqa: S603 (argv from the validated step file)
                [sys.executable, "manage.py", *job.command, "--no-progress"],
                cwd=PROJECT_ROOT, env=half_env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            if done.returncode != 0:
                raise StackFailed(
                    f"step {number}'s backfill `{' '.join(job.command)}` exited "
                    f"{done.returncode}: {done.stderr[-1500:]}"
                )


@contextlib.contextmanager
def stack_started(
    *,
    step: int,
    label: str,
    out_dir: Path,
    environ: dict[str, str] | None = None,
    ready_timeout: float = 120.0,
    say: Callable[[str], None] = lambda text: None,
) -> Iterator[StackInfo]:
    """Run step `step`'s stack until the block exits; then stop it and remove its data."""
    environ = dict(os.environ if environ is None else environ)
    processes_for(step)  # an unknown step fails here, naming the ones that exist
    steps = steps_load()
    var_dir = Path(tempfile.mkdtemp(prefix=f"strangler-compare-{label}-"))
    log = out_dir / f"stack-{label}.log"
    notes: list[str] = []
    env = environ | {
        "STRANGLER_VAR_DIR": str(var_dir),
        "STRANGLER_FAST_PASSWORD_HASHER": "1",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
    }
    database = _fresh_database(environ)
    if database:
        env["DATABASE_URL"] = database
    vhost = _fresh_vhost(environ)
    if vhost:
        env["BROKER_URL"] = vhost[0]
    elif environ.get("BROKER_URL"):
        notes.append("the stack used the operator's BROKER_URL as it is (no vhost of its own)")
    # Step N is "after": its routes start where their rollout ends.
    state = state_read(var_dir)
    for number, mode in final_modes(steps, step).items():
        step_state(state, number)["stage"] = mode
        notes.append(f"step {number}'s routes set to {mode!r} (the end of its rollout)")
    state_write(var_dir, state)
    ports = {spec.name: free_port() for spec in PROCESSES if spec.port is not None}
    command = up_command(step=step, var_dir=var_dir, ports=ports, ready_timeout=ready_timeout)
    runner: UpProcess | None = None
    services = sorted({s.name for n, st in steps.items() if n <= step for s in st.services})
    try:
        say(f"starting the stack of step {step} (var dir {var_dir})")
        started = time.monotonic()
        runner = UpProcess(command, env, log, error=StackFailed)
        runner.wait_ready(ready_timeout + 60)
        staff = _create_staff(env, var_dir)
        _backfill(steps, step, env, var_dir)
        front = "proxy" if importable("strangler_proxy.cli") else "monolith"
        if front != "proxy":
            notes.append("strangler_proxy is not installed: the suite ran against the monolith")
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        say(f"step {step} ready in {time.monotonic() - started:.1f} s at {urls[front]}")
        yield StackInfo(step, urls[front], urls, var_dir, env, log, staff, notes, died=runner.death)
    finally:
        if runner is not None:
            stopping = time.monotonic()
            note = runner.stop()
            if note:
                notes.append(note)
            say(f"step {step} stopped in {time.monotonic() - stopping:.1f} s")
        if database:
            try:
                _drop_databases(database, services)
            except Exception as exc:  # cleaning up must not hide the comparison's result
                notes.append(f"could not drop {database}: {exc}")
        if vhost:
            try:
                _rabbitmqctl("delete_vhost", vhost[1])
            except (subprocess.SubprocessError, OSError) as exc:
                notes.append(f"could not delete the vhost {vhost[1]}: {exc}")
        shutil.rmtree(var_dir, ignore_errors=True)
