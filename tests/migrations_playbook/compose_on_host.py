"""Run compose.yaml's app services on this machine's servers, through the Docker SDK.

The official server images cannot be pulled where CI runs, and its engine has no bridge network.
So this starts the APP services of compose.yaml as written there: their image, command,
environment, healthcheck, restart policy, init, the var volume, and the start order their
``depends_on`` conditions give, with only the changes host networking needs:

* postgres, rabbitmq and redis are left out, and a URL naming one of them names this machine's
  server instead: a fresh database (with the same suffixes: ``monolith`` -> ``<db>``,
  ``monolith_payments`` -> ``<db>_payments``), a vhost of the test's own, the test's Redis;
* each HTTP service listens on 127.0.0.1 at a free port instead of 0.0.0.0 at its fixed one: the
  same substitution in commands, settings and healthchecks (``0.0.0.0:8001``, ``monolith:8001``,
  ``127.0.0.1:8001`` and a ``*_PORT: "8001"`` setting all become ``127.0.0.1:<free>``);
* ``STRANGLER_FAST_PASSWORD_HASHER=1``: the contract suite registers many users, and PBKDF2's
  cost is not under test.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SERVERS = frozenset({"postgres", "rabbitmq", "redis"})
LABEL = "org.strangler.compose-test"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ComposeFailed(AssertionError):
    """A service did not come up as compose.yaml says it should; the message has its log."""


def duration_ns(text: str) -> int:
    """Return compose's duration `text` ("2s", "1m30s", "500ms") in nanoseconds."""
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise ValueError(f"not a compose duration: {text!r}")
    return int(sum(float(n) * _UNITS[u] for n, u in parts) * 1e9)


@dataclass
class Servers:
    """The machine's servers the app services use instead of compose's own."""

    database_url: str  # the fresh monolith database; the services' get its name plus a suffix
    broker_url: str
    redis_url: str


@dataclass
class Plan:
    """One app service, ready to run on the host network."""

    name: str
    command: list[str]
    environment: dict[str, str]
    healthcheck: dict[str, Any] | None
    depends_on: dict[str, str]
    restart: str
    init: bool
    volumes: list[str]
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _published_port(service: dict[str, Any]) -> int | None:
    ports = [str(mapping).rsplit(":", 1)[-1] for mapping in service.get("ports", [])]
    return int(ports[0]) if ports else None


def host_plans(compose: dict[str, Any], *, servers: Servers, ports: dict[str, int]) -> list[Plan]:
    """Return the app services of `compose` (interpolated), adapted to the host network.

    `ports` gives each HTTP service (by name) the free port it listens on instead.
    """
    services = compose["services"]
    main_database = urlsplit(services["monolith"]["environment"]["DATABASE_URL"]).path.lstrip("/")
    fixed = {name: _published_port(s) for name, s in services.items() if name not in SERVERS}
    fixed = {name: port for name, port in fixed.items() if port is not None}
    names = "|".join(re.escape(name) for name in [*services, "0.0.0.0", "127.0.0.1", "localhost"])
    by_port = {port: ports[name] for name, port in fixed.items()}
    address = re.compile(rf"\b(?:{names}):(\d+)\b")

    def moved(text: str) -> str:
        return address.sub(
            lambda m: (
                f"127.0.0.1:{by_port[int(m.group(1))]}"
                if int(m.group(1)) in by_port
                else m.group(0)
            ),
            text,
        )

    def server_url(url: str) -> str:
        parts = urlsplit(url)
        if parts.hostname == "postgres":
            name = parts.path.lstrip("/")
            assert name.startswith(main_database), f"{name} is not derived from {main_database}"
            ours = urlsplit(servers.database_url)
            suffix = name[len(main_database) :]
            return urlunsplit(ours._replace(path=ours.path + suffix))
        if parts.hostname == "rabbitmq":
            return servers.broker_url
        if parts.hostname == "redis":
            return servers.redis_url
        return url

    plans = []
    for name, service in services.items():
        if name in SERVERS:
            continue
        environment = {}
        for key, value in service.get("environment", {}).items():
            value = str(value)
            if key.endswith("_PORT") and value.isdigit() and int(value) in by_port:
                value = str(by_port[int(value)])
            elif value == "0.0.0.0":
                value = "127.0.0.1"
            elif "://" in value:
                value = moved(server_url(value))
            environment[key] = value
        environment["STRANGLER_FAST_PASSWORD_HASHER"] = "1"
        healthcheck = None
        if "healthcheck" in service:
            check = service["healthcheck"]
            healthcheck = {"test": [moved(str(part)) for part in check["test"]]}
            for key in ("interval", "timeout", "start_period"):
                if key in check:
                    healthcheck[key] = duration_ns(check[key])
            if "retries" in check:
                healthcheck["retries"] = int(check["retries"])
        plans.append(
            Plan(
                name=name,
                command=[moved(str(part)) for part in service["command"]],
                environment=environment,
                healthcheck=healthcheck,
                depends_on={
                    dependency: condition["condition"]
                    for dependency, condition in service.get("depends_on", {}).items()
                    if dependency not in SERVERS
                },
                restart=service.get("restart", "no"),
                init=bool(service.get("init", False)),
                volumes=list(service.get("volumes", [])),
                port=ports.get(name),
            )
        )
    return plans


class HostCompose:
    """Start `plans` from `image` in depends_on order, watch them, remove everything after."""

    def __init__(self, *, client: Any, image: str, plans: list[Plan],
                 say: Callable[[str], None] = print) -> None:  # fmt: skip
        self.client = client
        self.image = image
        self.plans = {plan.name: plan for plan in plans}
        self.say = say
        self.run_id = secrets.token_hex(4)
        self.containers: dict[str, Any] = {}
        self.volumes: dict[str, str] = {}

    def _volume(self, name: str) -> str:
        if name not in self.volumes:
            created = self.client.volumes.create(
                name=f"strangler-compose-{self.run_id}-{name}", labels={LABEL: self.run_id}
            )
            self.volumes[name] = created.name
        return self.volumes[name]

    def _start(self, plan: Plan) -> None:
        volumes = {}
        for entry in plan.volumes:
            source, target = entry.split(":", 1)
            volumes[self._volume(source)] = {"bind": target, "mode": "rw"}
        restart = {"Name": plan.restart} if plan.restart not in ("no", "") else None
        self.containers[plan.name] = self.client.containers.run(
            self.image,
            plan.command,
            detach=True,
            name=f"strangler-compose-{self.run_id}-{plan.name}",
            environment=plan.environment,
            network_mode="host",
            init=plan.init,
            healthcheck=plan.healthcheck,
            restart_policy=restart,
            volumes=volumes,
            labels={LABEL: self.run_id, "org.strangler.service": plan.name},
        )
        self.say(f"compose: started {plan.name}")

    def state(self, name: str) -> dict[str, Any]:
        """Return the engine's view of service `name`'s container (State)."""
        container = self.containers[name]
        container.reload()
        return container.attrs["State"]

    def health(self, name: str) -> str | None:
        """Return "starting", "healthy" or "unhealthy", or None without a healthcheck."""
        return (self.state(name).get("Health") or {}).get("Status")

    def _met(self, dependency: str, condition: str) -> bool:
        if dependency not in self.containers:
            return False
        state = self.state(dependency)
        if condition == "service_completed_successfully":
            if state["Status"] == "exited" and state["ExitCode"] != 0:
                raise self.failed(dependency, f"exited with code {state['ExitCode']}")
            return state["Status"] == "exited"
        if condition == "service_healthy":
            return (state.get("Health") or {}).get("Status") == "healthy"
        return state["Status"] == "running"

    def failed(self, name: str, why: str) -> ComposeFailed:
        """Return the error for service `name`, with the end of its log."""
        logs = self.containers[name].logs(tail=40).decode("utf-8", "replace")
        return ComposeFailed(f"{name} {why}; its last lines:\n{logs}")

    def check_running(self) -> None:
        """Raise ComposeFailed when a long-running service died or restarted."""
        for name, plan in self.plans.items():
            if plan.restart == "no" or name not in self.containers:
                continue
            state = self.state(name)
            if state["Status"] != "running" or state.get("Restarting"):
                raise self.failed(name, f"is {state['Status']} (exit code {state['ExitCode']})")
            if self.containers[name].attrs.get("RestartCount", 0):
                raise self.failed(name, "was restarted: it died once")

    def up(self, *, timeout: float) -> float:
        """Start every service once its dependencies are met; return the seconds it took."""
        started = time.monotonic()
        waiting = dict(self.plans)
        while waiting:
            for name, plan in list(waiting.items()):
                if all(self._met(dep, cond) for dep, cond in plan.depends_on.items()):
                    self._start(plan)
                    del waiting[name]
            self.check_running()
            if time.monotonic() - started > timeout:
                blocked = {
                    name: {
                        dep: self.health(dep) if dep in self.containers else "not started"
                        for dep in plan.depends_on
                    }
                    for name, plan in waiting.items()
                }
                raise ComposeFailed(f"not started within {timeout:g} s, waiting on: {blocked}")
            time.sleep(0.5)
        return time.monotonic() - started

    def wait_healthy(self, *, timeout: float, only: set[str] | None = None) -> dict[str, str]:
        """Wait until every service with a healthcheck (or those `only` names) is healthy.

        Return each one's status.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            status = {
                name: self.health(name)
                for name, plan in self.plans.items()
                if plan.healthcheck and plan.restart != "no" and (only is None or name in only)
            }
            if all(value == "healthy" for value in status.values()):
                return status
            if time.monotonic() > deadline:
                bad = [name for name, value in status.items() if value != "healthy"]
                details = {
                    name: (self.state(name).get("Health") or {}).get("Log", [])[-1:] for name in bad
                }
                raise ComposeFailed(
                    f"not healthy within the time: {status}; last checks: {details}"
                )
            time.sleep(1)

    def down(self) -> None:
        """Remove every container and volume of this run."""
        for container in self.client.containers.list(
            all=True, filters={"label": f"{LABEL}={self.run_id}"}
        ):
            with contextlib.suppress(Exception):
                container.remove(force=True)
        for name in self.volumes.values():
            with contextlib.suppress(Exception):
                self.client.volumes.get(name).remove(force=True)


@contextlib.contextmanager
def compose_running(
    *, client: Any, image: str, plans: list[Plan], timeout: float, say: Callable[[str], None]
) -> Iterator[HostCompose]:
    """Run `plans` until the block exits; then remove every trace."""
    stack = HostCompose(client=client, image=image, plans=plans, say=say)
    try:
        seconds = stack.up(timeout=timeout)
        say(f"compose: every service started in {seconds:.1f} s")
        yield stack
    finally:
        stack.down()
