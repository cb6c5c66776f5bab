"""Every process of the stack, as data: the one list `strangler up` and compose.yaml both follow.

A `ProcessSpec` says how to start a process (argv and environment, as templates), where it
listens, how to tell it is ready, and which playbook steps need it. Nothing here starts anything:
`migrations_playbook.runner` turns the specs into child processes, and
`tests/migrations_playbook/test_compose.py` checks that compose.yaml says the same thing.

Templates are `str.format` strings over one `Context`:

* ``{bind}``: the address to listen on (127.0.0.1 natively, 0.0.0.0 in a container);
* ``{port}``: this process's port;
* ``{url[NAME]}``: the base URL of the HTTP process NAME, as the others reach it;
* ``{step}``: the playbook step the stack runs;
* ``{routes}``: the proxy's route table file, written by the `routes` job from the step data and
  the playbook's state (so a restarted stack comes back at the stage the rollout reached).

Each process belongs to one service's database (`database`): the monolith's processes get the
operator's DATABASE_URL unchanged; an extracted service's get their own, derived from it by
`migrations_playbook.databases` (SQLite per service, or `<db>_<service>` on PostgreSQL), plus
MONOLITH_DATABASE_URL for backfill and reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

#: What every process of the monolith reads from the operator's environment. Unset means the
#: embedded default (SQLite and kombu's filesystem broker under STRANGLER_VAR_DIR). The identity
#: key: the monolith trusts the identity the proxy signs for it (step 2).
MONOLITH_SETTINGS = (
    "DATABASE_URL",
    "BROKER_URL",
    "REDIS_URL",
    "STRANGLER_IDENTITY_SECRET",
    "STRANGLER_SECRET_KEY",
)
#: What an extracted service's processes read: their own database (derived), the monolith's
#: (read only), the shared broker and Redis, the key that checks the proxy's identities, and
#: Django's key (shared by the halves: it also keys the idempotency fingerprints).
SERVICE_SETTINGS = (
    "DATABASE_URL",
    "MONOLITH_DATABASE_URL",
    "BROKER_URL",
    "REDIS_URL",
    "STRANGLER_IDENTITY_SECRET",
    "STRANGLER_SECRET_KEY",
)
#: What the proxy reads (Redis, the identity key, the admin token), plus what the operator's
#: tools run beside it need (`strangler playbook`, `compare`, `routes`; in compose
#: `docker compose exec proxy strangler playbook apply 1`): the monolith's database, from which
#: the services' are derived for backfill and reconcile, the broker, and Django's key.
PROXY_SETTINGS = (
    "REDIS_URL",
    "STRANGLER_IDENTITY_SECRET",
    "STRANGLER_ADMIN_TOKEN",
    "DATABASE_URL",
    "BROKER_URL",
    "STRANGLER_SECRET_KEY",
)


@dataclass(frozen=True)
class ProcessSpec:
    """Describe one process of the stack: how to start it and how to know it is ready.

    `kind` is "service" for a long-running process and "job" for one that runs to completion
    (a migration) before the services listed in their `after` start. An HTTP service has a
    `port` and a `ready_path`; a service without a port is ready when a line of its log matches
    `ready_log`. `settings` names the variables passed through from the operator's environment;
    `env` adds fixed ones. A spec with `requires_module` is skipped, with a note, while that
    module cannot be imported (a component still being built).

    `health` is the command that tells whether the running service does its work (compose.yaml's
    healthcheck); an HTTP service needs none, it is asked `GET ready_path` on its port. Every
    service has one or the other.
    """

    name: str
    argv: tuple[str, ...]
    steps: frozenset[int]
    kind: Literal["service", "job"] = "service"
    port: int | None = None
    ready_path: str | None = None
    ready_log: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    settings: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    requires_module: str | None = None
    database: str = "monolith"
    health: tuple[str, ...] = ()

    @property
    def port_variable(self) -> str:
        """Return the environment variable that overrides this process's port."""
        return f"STRANGLER_{self.name.upper().replace('-', '_')}_PORT"

    def _values(self, context: Context) -> dict[str, object]:
        return {
            "bind": context.bind,
            "port": context.ports.get(self.name),
            "url": context.urls,
            "step": context.step,
            "routes": context.routes,
        }

    def render(self, context: Context) -> tuple[list[str], dict[str, str]]:
        """Return this process's argv and fixed environment with the templates filled in."""
        values = self._values(context)
        argv = [part.format(**values) for part in self.argv]
        env = {key: value.format(**values) for key, value in self.env.items()}
        return argv, env

    def health_argv(self, context: Context) -> list[str]:
        """Return the command that checks this service from inside its container ([] for a job)."""
        if self.health:
            values = self._values(context)
            return [part.format(**values) for part in self.health]
        if self.ready_path and self.port is not None:
            port = context.ports.get(self.name, self.port)
            url = f"http://127.0.0.1:{port}{self.ready_path}"
            return ["python", "-m", "migrations_playbook.probe", url]
        return []


@dataclass(frozen=True)
class Context:
    """Say where the processes listen and how they reach each other (native or in compose)."""

    bind: str
    ports: Mapping[str, int]
    hosts: Mapping[str, str]
    step: int = 0
    routes: str = "var/playbook/routes.toml"

    @property
    def urls(self) -> dict[str, str]:
        """Return the base URL of every process that has a port."""
        return {name: f"http://{self.hosts[name]}:{port}" for name, port in self.ports.items()}


_DJANGO = MappingProxyType({"DJANGO_SETTINGS_MODULE": "monolith.settings"})
_ALL = frozenset({0, 1, 2})
_FROM_1 = frozenset({1, 2})
_FROM_2 = frozenset({2})
_GUNICORN = (
    "--workers",
    "2",
    "--threads",
    "4",
    "--graceful-timeout",
    "5",
    "--access-logfile",
    "-",
    # gunicorn's control socket sits at one path per user; two stacks would fight over it.
    "--no-control-socket",
)
_RELAY_READY = r"outbox relay publishing to"
_HEALTH = ("python", "-m", "migrations_playbook.health")

# (process name, consumer service) of the monolith's outbox consumers.
_MONOLITH_CONSUMERS = (
    ("notifications", "notifications"),
    ("analytics", "analytics"),
    ("monolith-consumer", "monolith"),
)


def _routes_job(steps: frozenset[int], services: tuple[str, ...]) -> ProcessSpec:
    """Return the job writing the proxy's table, told where each extracted service listens."""
    urls = [part for name in services for part in ("--service-url", f"{name}={{url[{name}]}}")]
    return ProcessSpec(
        name="routes",
        kind="job",
        # The proxy's table for the stage each route reached (playbook state in the var dir).
        argv=(
            "strangler",
            "playbook",
            "table",
            "--step",
            "{step}",
            "--output",
            "{routes}",
            *urls,
        ),
        steps=steps,
    )


def _service_processes(
    name: str, *, module: str, port: int, steps: frozenset[int], env: Mapping[str, str]
) -> tuple[ProcessSpec, ...]:
    """Return an extracted service's processes: migrate job, gunicorn, relay, consumer."""
    settings = MappingProxyType({"DJANGO_SETTINGS_MODULE": f"extracted.{module}.settings"})
    return (
        ProcessSpec(
            name=f"migrate-{name}",
            kind="job",
            # Creates the service's own database when it is missing, then migrates it.
            argv=("python", "-m", "migrations_playbook.databases"),
            steps=steps,
            env=settings,
            settings=SERVICE_SETTINGS,
            database=name,
        ),
        ProcessSpec(
            name=name,
            argv=("gunicorn", f"extracted.{module}.wsgi", "--bind", "{bind}:{port}", *_GUNICORN),
            steps=steps,
            port=port,
            ready_path="/readyz",
            env=MappingProxyType(settings | dict(env)),
            settings=SERVICE_SETTINGS,
            after=(f"migrate-{name}",),
            database=name,
        ),
        ProcessSpec(
            name=f"{name}-relay",
            argv=("python", "manage.py", "outbox_relay"),
            steps=steps,
            ready_log=_RELAY_READY,
            env=settings,
            settings=SERVICE_SETTINGS,
            after=(f"migrate-{name}",),
            database=name,
            health=(*_HEALTH, "relay"),
        ),
        ProcessSpec(
            name=f"{name}-consumer",
            argv=("python", "manage.py", "outbox_consume", "--service", name),
            steps=steps,
            ready_log=rf"outbox consumer '{name}' bound to",
            env=settings,
            settings=SERVICE_SETTINGS,
            after=(f"migrate-{name}",),
            database=name,
            health=(*_HEALTH, "consumer", name),
        ),
    )


def _monolith_consumer(name: str, service: str) -> ProcessSpec:
    """Return the spec of `manage.py outbox_consume --service SERVICE` in the monolith."""
    return ProcessSpec(
        name=name,
        argv=("python", "manage.py", "outbox_consume", "--service", service),
        steps=_ALL,
        ready_log=rf"outbox consumer '{service}' bound to",
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
        after=("migrate",),
        health=(*_HEALTH, "consumer", service),
    )


PROCESSES: tuple[ProcessSpec, ...] = (
    ProcessSpec(
        name="migrate",
        kind="job",
        argv=("python", "manage.py", "migrate", "--noinput"),
        steps=_ALL,
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
    ),
    # Step 2's table names the users service too; one spec per set of steps, one per step.
    _routes_job(frozenset({0, 1}), ("payments",)),
    _routes_job(_FROM_2, ("payments", "users")),
    ProcessSpec(
        name="monolith",
        # Threads rather than many workers: the app mostly waits on its database, and two
        # cores are all a developer machine or CI can spare.
        argv=("gunicorn", "monolith.wsgi", "--bind", "{bind}:{port}", *_GUNICORN),
        steps=_ALL,
        port=8001,
        ready_path="/readyz",
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
        after=("migrate",),
    ),
    ProcessSpec(
        name="worker",
        argv=(
            "celery",
            "-A",
            "monolith",
            "worker",
            "-Q",
            "monolith.jobs,monolith.emails",
            "--concurrency",
            "2",
            "-n",
            "monolith@%h",
            "--loglevel",
            "INFO",
        ),
        steps=_ALL,
        ready_log=r"@\S+ ready\.",
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
        after=("migrate",),
        health=(*_HEALTH, "worker", "monolith", "monolith@%h"),
    ),
    ProcessSpec(
        name="beat",
        # The schedule file lives under STRANGLER_VAR_DIR (CELERY_BEAT_SCHEDULE_FILENAME).
        argv=("celery", "-A", "monolith", "beat", "--loglevel", "INFO"),
        steps=_ALL,
        ready_log=r"beat: Starting",
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
        after=("migrate",),
        health=(*_HEALTH, "beat"),
    ),
    ProcessSpec(
        name="relay",
        # Publishes the monolith's committed outbox rows to the broker.
        argv=("python", "manage.py", "outbox_relay"),
        steps=_ALL,
        ready_log=_RELAY_READY,
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
        after=("migrate",),
        health=(*_HEALTH, "relay"),
    ),
    # The monolith's subscribers; "monolith" applies the payments service's events (step 1) and
    # the users service's (step 2), and is idle before that.
    *(_monolith_consumer(name, service) for name, service in _MONOLITH_CONSUMERS),
    *_service_processes(
        "payments",
        module="payments",
        port=8101,
        steps=_FROM_1,
        env={"STRANGLER_ORDERS_URL": "{url[monolith]}"},
    ),
    # Step 2: the users service (8102), its own database, relay and consumer.
    *_service_processes("users", module="users", port=8102, steps=_FROM_2, env={}),
    ProcessSpec(
        name="proxy",
        argv=("strangler", "proxy"),
        steps=_ALL,
        port=8000,
        ready_path="/readyz",
        env=MappingProxyType(
            {
                "STRANGLER_PROXY_HOST": "{bind}",
                "STRANGLER_PROXY_PORT": "{port}",
                "STRANGLER_MONOLITH_URL": "{url[monolith]}",
                "STRANGLER_ROUTES": "{routes}",
            }
        ),
        settings=PROXY_SETTINGS,
        after=("routes",),
        requires_module="strangler_proxy.cli",
    ),
)


def known_steps() -> list[int]:
    """Return every playbook step some process is declared for, in order."""
    return sorted({step for spec in PROCESSES for step in spec.steps})


def processes_for(step: int) -> list[ProcessSpec]:
    """Return the processes step `step` needs, jobs first, in declaration order."""
    if step not in known_steps():
        steps = ", ".join(str(s) for s in known_steps())
        raise ValueError(f"unknown step {step}; the steps that exist are: {steps}")
    chosen = [spec for spec in PROCESSES if step in spec.steps]
    return [s for s in chosen if s.kind == "job"] + [s for s in chosen if s.kind == "service"]
