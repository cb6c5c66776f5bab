"""`strangler up [--step N]`: every process a playbook step needs, in the foreground.

The processes come from `migrations_playbook.processes` (the same list compose.yaml follows).
Jobs (migrations) run first; then the services start together, each log line prefixed with its
process name, and the runner waits for each one to be ready: GET /readyz answers 200 for an HTTP
process, a known log line for the others. It prints one line per ready process, then keeps the
stack in the foreground until Ctrl-C or SIGTERM, or until a child dies, and stops them all.

Configuration: unset DATABASE_URL / BROKER_URL / REDIS_URL mean the embedded default (SQLite per
service and kombu's filesystem broker under --var-dir, passed to children as STRANGLER_VAR_DIR);
set, they are passed through unchanged (PostgreSQL, RabbitMQ, Redis). Exit status: 0 after a
requested stop, 1 when a child died, failed or never became ready, 2 for bad arguments (or a
Docker engine that cannot run the stack).

Secrets: each of STRANGLER_ADMIN_TOKEN, STRANGLER_IDENTITY_SECRET and STRANGLER_SECRET_KEY that is
unset is made up once per var dir (``admin-token``, ``identity-secret``, ``secret-key``, mode
0600: service_kit/var_secrets.py). The identity secret and the Django key are given to every
child (one Django key serves every half: the payments idempotency fingerprints are keyed with
it on both sides); the admin token is not put in any environment: the proxy and the CLI read
the file.

`--engine docker` (or STRANGLER_ENGINE=docker) runs the same processes as containers of the
project's image through the Docker SDK (`migrations_playbook.containers`); everything else,
from readiness to stopping, is the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from migrations_playbook.broker_users import (
    BrokerUsersError,
    HalfUser,
    broker_users_ensure,
    broker_users_remove,
    half_environment,
)
from migrations_playbook.containers import (
    ContainerChild,
    DockerEngine,
    EngineError,
    engine_arguments,
    engine_open,
)
from migrations_playbook.databases import MONOLITH, service_environment
from migrations_playbook.probe import probe
from migrations_playbook.processes import (
    PROCESSES,
    Context,
    ProcessSpec,
    known_steps,
    processes_for,
)
from migrations_playbook.supervisor import (
    Child,
    LogWriter,
    colour_wanted,
    describe_signal,
    stop_children,
)
from service_kit.var_secrets import SecretFileError, var_secret

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNNER_NAME = "strangler"
LOOPBACK = "127.0.0.1"


class RunnerError(Exception):
    """The stack cannot be started as asked; the message says why and what to change."""


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port must be an integer, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port must be between 1 and 65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `strangler up`, with a --NAME-port flag per HTTP process."""
    parser = argparse.ArgumentParser(
        prog="strangler up",
        description="Start every process a playbook step needs, in the foreground; "
        "Ctrl-C stops them all.",
    )
    parser.add_argument(
        "--step",
        type=int,
        default=0,
        metavar="N",
        help=f"playbook step (one of: {', '.join(map(str, known_steps()))}; default 0)",
    )
    parser.add_argument(
        "--var-dir",
        metavar="DIR",
        default=os.environ.get("STRANGLER_VAR_DIR", "var"),
        help="where the embedded default keeps its SQLite files and broker folders "
        "(default: $STRANGLER_VAR_DIR or ./var)",
    )
    for spec in PROCESSES:
        if spec.port is not None:
            parser.add_argument(
                f"--{spec.name}-port",
                type=_port,
                dest=f"port_{spec.name}",
                metavar="PORT",
                help=f"port of {spec.name} (default: ${spec.port_variable} or {spec.port})",
            )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME",
        help="do not start process NAME (repeatable)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        metavar="SECONDS",
        default=60.0,
        help="seconds each process has to become ready (default 60)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        default=10.0,
        help="seconds between SIGTERM and SIGKILL when stopping (default 10)",
    )
    engine_arguments(parser)
    return parser


def resolve_port(spec: ProcessSpec, flag: int | None, environ: dict[str, str]) -> int:
    """Return the port of `spec`: the flag, else its STRANGLER_<NAME>_PORT, else the default."""
    if flag is not None:
        return flag
    raw = environ.get(spec.port_variable)
    if raw:
        try:
            return _port(raw)
        except argparse.ArgumentTypeError as exc:
            raise RunnerError(f"{spec.port_variable}: {exc}") from None
    assert spec.port is not None
    return spec.port


def resolve_command(name: str) -> str:
    """Return the executable for `name`: this interpreter, a script beside it, or one on PATH."""
    if name == "python":
        return sys.executable
    sibling = Path(sys.executable).parent / name
    if sibling.exists():
        return str(sibling)
    found = shutil.which(name)
    if found is None:
        raise RunnerError(
            f"cannot find the command {name!r} beside {sys.executable} or on PATH; "
            "install the project first (make venv)"
        )
    return found


def ensure_port_free(name: str, port: int, spec: ProcessSpec) -> None:
    """Fail early, naming the process and the override, when `port` is already taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise RunnerError(
                f"port {port} for {name} is already in use; choose another with "
                f"--{name}-port or {spec.port_variable}"
            ) from None


def hide_password(url: str) -> str:
    """Return `url` with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def describe_backends(environ: dict[str, str], var_dir: Path) -> str:
    """Say in one line which database and broker the stack will use."""
    database = environ.get("DATABASE_URL")
    broker = environ.get("BROKER_URL")
    db_text = hide_password(database) if database else f"SQLite per service under {var_dir}"
    broker_text = hide_password(broker) if broker else f"filesystem broker under {var_dir}/broker"
    return f"database: {db_text}; broker: {broker_text}"


@dataclass
class Stack:
    """The processes of one step, started and watched together."""

    specs: list[ProcessSpec]
    context: Context
    env: dict[str, str]
    log: LogWriter
    ready_timeout: float
    grace: float
    engine: DockerEngine | None = None
    # Per half (a process's `database`): its broker user's OUTBOX_BROKER_URL, its metrics folder.
    half_env: dict[str, dict[str, str]] = field(default_factory=dict)
    children: list[Child | ContainerChild] = field(default_factory=list)
    stop_signal: int | None = None
    signals_seen: int = 0

    def say(self, text: str) -> None:
        """Print one line of the runner's own."""
        self.log.line(RUNNER_NAME, text)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.signals_seen += 1
        if self.stop_signal is None:
            self.stop_signal = signum

    def _child(self, spec: ProcessSpec) -> Child | ContainerChild:
        argv, env = spec.render(self.context)
        if self.engine is None:
            argv[0] = resolve_command(argv[0])
        database = {}
        if spec.database != MONOLITH:
            # An extracted service: its own database, and the monolith's to read from.
            database = service_environment(
                service=spec.database,
                settings=env.get("DJANGO_SETTINGS_MODULE", ""),
                environ=self.env,
                var_dir=Path(self.env["STRANGLER_VAR_DIR"]),
            )
        if self.engine is not None:
            return self.engine.child(
                name=spec.name,
                argv=argv,
                env=self.env | database | self.half_env.get(spec.database, {}) | env,
                log=self.log,
                ready_log=spec.ready_log,
            )
        return Child(
            name=spec.name,
            argv=argv,
            env=self.env | database | self.half_env.get(spec.database, {}) | env,
            cwd=str(PROJECT_ROOT),
            log=self.log,
            ready_log=spec.ready_log,
        )

    def run(self) -> int:
        """Run jobs, start and watch the services; return the exit status."""
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        started = time.monotonic()
        try:
            status = self._run_jobs()
            if status is None:
                status = self._run_services(started)
        except (RunnerError, EngineError) as exc:
            self.say(f"error: {exc}")
            status = 1
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return status

    def _run_jobs(self) -> int | None:
        for spec in (s for s in self.specs if s.kind == "job"):
            child = self._child(spec)
            self.children.append(child)
            self.say(f"running {spec.name}: {' '.join(spec.argv)}")
            child.start()
            while child.poll() is None:
                if self.stop_signal is not None:
                    self.say(f"{describe_signal(self.stop_signal)} received; stopping")
                    return 0
                time.sleep(0.05)
            child.finish()
            if child.poll() != 0:
                self.say(f"{spec.name} {child.exit_description()}; nothing else was started")
                return 1
        return None

    def _run_services(self, started: float) -> int:
        services = [s for s in self.specs if s.kind == "service"]
        pending: dict[str, tuple[ProcessSpec, Child | ContainerChild]] = {}
        for spec in services:
            child = self._child(spec)
            child.start()
            self.children.append(child)
            pending[spec.name] = (spec, child)
            self.say(f"started {spec.name} ({child.handle}): {' '.join(child.argv[1:])}")
        services_started = time.monotonic()
        last_answer: dict[str, str] = {}
        next_probe = 0.0
        while pending:
            status = self._check_stop_or_death()
            if status is not None:
                return status
            probing = time.monotonic() >= next_probe
            for name, (spec, child) in list(pending.items()):
                if spec.ready_path and probing:
                    url = self.context.urls[name] + spec.ready_path
                    code, body = probe(url, timeout=2.0)
                    last_answer[name] = f"{code} {body}" if code else body
                    ready = code == 200
                else:
                    ready = child.log_said_ready.is_set()
                if ready:
                    del pending[name]
                    self.say(f"ready  {name:<{self.log.width}}  {self._where(spec)}")
            if probing:
                next_probe = time.monotonic() + 0.2
            if pending and time.monotonic() - services_started > self.ready_timeout:
                return self._not_ready(pending, last_answer)
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        self.say(f"all {len(services)} processes ready in {elapsed:.1f} s; Ctrl-C stops them")
        while True:
            status = self._check_stop_or_death()
            if status is not None:
                return status
            time.sleep(0.1)

    def _where(self, spec: ProcessSpec) -> str:
        if spec.port is not None:
            return self.context.urls[spec.name] + "/"
        return "(no port; its log says it is ready)"

    def _check_stop_or_death(self) -> int | None:
        if self.stop_signal is not None:
            self.say(f"{describe_signal(self.stop_signal)} received; stopping every process")
            return 0
        if self.log.broken:
            return 1  # nobody reads the logs any more (`strangler up | head`): stop
        for child in self.children:
            if child.poll() is not None and child.name in self._service_names():
                self.say(f"{child.name} {child.exit_description()}; stopping the others")
                return 1
        return None

    def _service_names(self) -> set[str]:
        return {spec.name for spec in self.specs if spec.kind == "service"}

    def _not_ready(
        self,
        pending: dict[str, tuple[ProcessSpec, Child | ContainerChild]],
        last_answer: dict[str, str],
    ) -> int:
        for name, (spec, child) in pending.items():
            how = (
                f"GET {spec.ready_path} last answered: {last_answer.get(name, 'nothing')}"
                if spec.ready_path
                else f"no log line matched {spec.ready_log!r}"
            )
            self.say(f"{name} did not become ready within {self.ready_timeout:g} s ({how})")
            self.say(f"last lines of {name}:")
            for line in child.last_lines:
                self.say(f"  {line}")
        return 1

    def _stop_all(self) -> None:
        running = [child for child in self.children if child.group_alive()]
        if not running:
            for child in self.children:
                child.finish()
            return
        began = time.monotonic()
        signals_before = self.signals_seen
        stop_children(
            self.children,
            grace=self.grace,
            hurry=lambda: self.signals_seen > signals_before,
            say=self.say,
        )
        for child in self.children:
            if child in running or child.name in self._service_names():
                self.say(f"{child.name} {child.exit_description()}")
        self.say(f"all processes stopped in {time.monotonic() - began:.1f} s")


def importable(module: str) -> bool:
    """Return True when `module` (dotted) can be imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def plan_stack(
    args: argparse.Namespace, environ: dict[str, str]
) -> tuple[list[ProcessSpec], Context, Path, list[str]]:
    """Return the specs to start, their context, the var dir, and notes about what is left out."""
    try:
        specs = processes_for(args.step)
    except ValueError as exc:
        raise RunnerError(str(exc)) from None
    known = {spec.name for spec in specs}
    unknown = sorted(set(args.skip) - known)
    if unknown:
        raise RunnerError(
            f"cannot skip {', '.join(unknown)}: "
            f"step {args.step} has only {', '.join(sorted(known))}"
        )
    notes = []
    chosen = []
    for spec in specs:
        if spec.name in args.skip:
            notes.append(f"skipping {spec.name} (--skip)")
        elif spec.requires_module and not importable(spec.requires_module):
            notes.append(f"skipping {spec.name}: {spec.requires_module} is not installed yet")
        else:
            chosen.append(spec)
    # Skipped processes keep their ports: the others still reach them there (`--skip monolith`
    # with a monolith you run yourself, say, under a debugger).
    # Every HTTP process has a port, in the step or not: a step's route table names the
    # services of later steps too (they are simply not routed to yet).
    ports = {
        spec.name: resolve_port(spec, getattr(args, f"port_{spec.name}"), environ)
        for spec in PROCESSES
        if spec.port is not None
    }
    for spec in chosen:
        if spec.port is not None:
            ensure_port_free(spec.name, ports[spec.name], spec)
    step_ports = {name: port for name, port in ports.items() if name in known}
    if len(set(step_ports.values())) != len(step_ports):
        raise RunnerError(f"two processes were given the same port: {step_ports}")
    var_dir = Path(args.var_dir).resolve()
    context = Context(
        bind=LOOPBACK,
        ports=ports,
        hosts=dict.fromkeys(ports, LOOPBACK),
        step=args.step,
        routes=str(var_dir / "playbook" / "routes.toml"),
    )
    return chosen, context, var_dir, notes


def identity_secret(var_dir: Path) -> str:
    """Return the key the proxy signs identities with, kept in the var dir across restarts.

    The proxy and every extracted service must share it; an operator who sets
    STRANGLER_IDENTITY_SECRET decides it, otherwise the stack makes one up once.
    """
    return var_secret(var_dir=var_dir, name="identity-secret")


#: (variable, file in the var dir, random bytes) of the secrets every child gets.
SECRETS = (
    ("STRANGLER_IDENTITY_SECRET", "identity-secret", 32),
    ("STRANGLER_SECRET_KEY", "secret-key", 48),
)


def stack_secrets(var_dir: Path, environ: dict[str, str]) -> dict[str, str]:
    """Return the secrets the children get: the operator's, else the var dir's (made once).

    The admin token is made here too when unset (so the CLI finds it before the proxy is up),
    but stays in its file: no child but the proxy needs it, and the proxy reads it there.
    """
    if not environ.get("STRANGLER_ADMIN_TOKEN"):
        var_secret(var_dir=var_dir, name="admin-token")
    return {
        variable: environ.get(variable) or var_secret(var_dir=var_dir, name=name, nbytes=size)
        for variable, name, size in SECRETS
    }


def half_metrics_dirs(var_dir: Path) -> dict[str, dict[str, str]]:
    """Return each half's PROMETHEUS_MULTIPROC_DIR, emptied: a new stack counts from zero.

    Every process of a half (gunicorn workers, relay, consumers) writes its figures there and
    the half's web process serves their sum at /metrics (docs/outbox.md, "Metrics").
    """
    root = var_dir / "metrics"
    shutil.rmtree(root, ignore_errors=True)
    dirs = {}
    for half in sorted({spec.database for spec in PROCESSES}):
        (root / half).mkdir(parents=True)
        dirs[half] = {"PROMETHEUS_MULTIPROC_DIR": str(root / half)}
    return dirs


def broker_identities(
    environ: dict[str, str], var_dir: Path
) -> tuple[dict[str, dict[str, str]], dict[str, str], str | None, list[HalfUser]]:
    """Return each half's broker user environment, the shared one, a line to print, the users.

    On RabbitMQ every half's outbox connects as its own user (migrations_playbook.broker_users);
    elsewhere, or with STRANGLER_BROKER_USERS=0, nothing changes. Raise BrokerUsersError.
    """
    url = environ.get("BROKER_URL", "")
    if not url.startswith(("amqp", "pyamqp")):
        return {}, {}, None, []
    if environ.get("STRANGLER_BROKER_USERS", "1").strip().lower() in {"0", "false", "no", "off"}:
        said = "STRANGLER_BROKER_USERS=0: every half uses the broker as the operator's user"
        return {}, {}, said, []
    users = broker_users_ensure(broker_url=url, var_dir=var_dir, environ=environ)
    per_half, mapping = half_environment(users)
    return per_half, {"OUTBOX_BROKER_USERS": mapping}, f"broker users per half: {mapping}", users


def main(argv: list[str] | None = None) -> int:
    """Run `strangler up`; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ)
    out = sys.stdout
    log = LogWriter(
        names=[RUNNER_NAME, *(spec.name for spec in PROCESSES)],
        stream=out,
        colour=colour_wanted(out),
    )
    try:
        specs, context, var_dir, notes = plan_stack(args, environ)
        var_dir.mkdir(parents=True, exist_ok=True)
        engine = engine_open(
            args, environ=environ, var_dir=var_dir, say=lambda text: log.line(RUNNER_NAME, text)
        )
        if engine is not None:
            notes.append(f"engine: docker, image {engine.image}, host network, {var_dir} mounted")
    except (RunnerError, EngineError) as exc:
        print(f"strangler up: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        log.line(RUNNER_NAME, note)
    log.line(RUNNER_NAME, f"step {args.step}; {describe_backends(environ, var_dir)}")
    env = environ | {"STRANGLER_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}
    try:
        env |= stack_secrets(var_dir, environ)
    except SecretFileError as exc:
        print(f"strangler up: {exc}", file=sys.stderr)
        return 2
    where = (
        "STRANGLER_ADMIN_TOKEN"
        if environ.get("STRANGLER_ADMIN_TOKEN")
        else str(var_dir / "admin-token")
    )
    log.line(RUNNER_NAME, f"the proxy's admin API takes the token in {where}")
    try:
        half_env, shared_env, said, users = broker_identities(environ, var_dir)
    except BrokerUsersError as exc:
        print(f"strangler up: {exc}", file=sys.stderr)
        return 1
    if said:
        log.line(RUNNER_NAME, said)
    env |= shared_env
    metrics = half_metrics_dirs(var_dir)
    half_env = {half: half_env.get(half, {}) | metrics[half] for half in metrics}
    stack = Stack(
        specs=specs,
        context=context,
        env=env,
        log=log,
        ready_timeout=args.ready_timeout,
        grace=args.grace,
        engine=engine,
        half_env=half_env,
    )
    try:
        status = stack.run()
    finally:
        if users:
            for problem in broker_users_remove(users=users, broker_url=environ["BROKER_URL"]):
                log.line(RUNNER_NAME, f"could not delete broker user {problem}")
    if log.broken:
        # Python flushes stdout at exit; point it at /dev/null so that raises nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return status
