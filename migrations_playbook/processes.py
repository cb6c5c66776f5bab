"""Every process of the stack, as data: the one list `strangler up` and compose.yaml both follow.

A `ProcessSpec` says how to start a process (argv and environment, as templates), where it
listens, how to tell it is ready, and which playbook steps need it. Nothing here starts anything:
`migrations_playbook.runner` turns the specs into child processes, and
`tests/migrations_playbook/test_compose.py` checks that compose.yaml says the same thing.

Templates are `str.format` strings over one `Context`:

* ``{bind}``: the address to listen on (127.0.0.1 natively, 0.0.0.0 in a container);
* ``{port}``: this process's port;
* ``{url[NAME]}``: the base URL of the HTTP process NAME, as the others reach it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

#: What every process of the monolith reads from the operator's environment. Unset means the
#: embedded default (SQLite and kombu's filesystem broker under STRANGLER_VAR_DIR).
MONOLITH_SETTINGS = ("DATABASE_URL", "BROKER_URL", "REDIS_URL")


@dataclass(frozen=True)
class ProcessSpec:
    """Describe one process of the stack: how to start it and how to know it is ready.

    `kind` is "service" for a long-running process and "job" for one that runs to completion
    (a migration) before the services listed in their `after` start. An HTTP service has a
    `port` and a `ready_path`; a service without a port is ready when a line of its log matches
    `ready_log`. `settings` names the variables passed through from the operator's environment;
    `env` adds fixed ones. A spec with `requires_module` is skipped, with a note, while that
    module cannot be imported (a component still being built).
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

    @property
    def port_variable(self) -> str:
        """Return the environment variable that overrides this process's port."""
        return f"STRANGLER_{self.name.upper().replace('-', '_')}_PORT"

    def render(self, context: Context) -> tuple[list[str], dict[str, str]]:
        """Return this process's argv and fixed environment with the templates filled in."""
        values = {"bind": context.bind, "port": context.ports.get(self.name), "url": context.urls}
        argv = [part.format(**values) for part in self.argv]
        env = {key: value.format(**values) for key, value in self.env.items()}
        return argv, env


@dataclass(frozen=True)
class Context:
    """Say where the processes listen and how they reach each other (native or in compose)."""

    bind: str
    ports: Mapping[str, int]
    hosts: Mapping[str, str]

    @property
    def urls(self) -> dict[str, str]:
        """Return the base URL of every process that has a port."""
        return {name: f"http://{self.hosts[name]}:{port}" for name, port in self.ports.items()}


_DJANGO = MappingProxyType({"DJANGO_SETTINGS_MODULE": "monolith.settings"})

PROCESSES: tuple[ProcessSpec, ...] = (
    ProcessSpec(
        name="migrate",
        kind="job",
        argv=("python", "manage.py", "migrate", "--noinput"),
        steps=frozenset({0}),
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
    ),
    ProcessSpec(
        name="monolith",
        # Threads rather than many workers: the app mostly waits on its database, and two
        # cores are all a developer machine or CI can spare.
        argv=(
            "gunicorn",
            "monolith.wsgi",
            "--bind",
            "{bind}:{port}",
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
        ),
        steps=frozenset({0}),
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
        steps=frozenset({0}),
        ready_log=r"@\S+ ready\.",
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
        after=("migrate",),
    ),
    ProcessSpec(
        name="beat",
        # The schedule file lives under STRANGLER_VAR_DIR (CELERY_BEAT_SCHEDULE_FILENAME).
        argv=("celery", "-A", "monolith", "beat", "--loglevel", "INFO"),
        steps=frozenset({0}),
        ready_log=r"beat: Starting",
        env=_DJANGO,
        settings=MONOLITH_SETTINGS,
        after=("migrate",),
    ),
    ProcessSpec(
        name="proxy",
        argv=("strangler", "proxy"),
        steps=frozenset({0}),
        port=8000,
        ready_path="/readyz",
        env=MappingProxyType(
            {
                "STRANGLER_PROXY_HOST": "{bind}",
                "STRANGLER_PROXY_PORT": "{port}",
                "STRANGLER_MONOLITH_URL": "{url[monolith]}",
            }
        ),
        settings=("REDIS_URL",),
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
