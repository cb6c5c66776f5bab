"""Playbook steps as data: load `migrations_playbook/steps/step-N-*.toml`, strictly.

A step file declares what one migration step changes; the engine (`engine.py`) does the rest.
Validation is strict and collects every problem before refusing the file: an unknown key, a
value of the wrong type, a mode the proxy does not know, a threshold out of range or a gate that
is named but not defined each give one line naming the file, the key and the value found:

    step-1-extract-payments.toml: gates.shadow_diff.max_rate: must be a number between 0 and 1,
    got 5

Sections (docs/playbook.md has the full reference):

* ``step``, ``name``, ``title``, ``chapter``: who the step is;
* ``[[services]]``: services it introduces (name, settings module, wsgi module, port, consumer,
  ``owns``: the data it takes over from the monolith, for review);
* ``[[routes]]``: proxy routes it moves (name, prefix or path, service, fallback, compare,
  ``identity``: the route whose half owns identity, by its mode);
* ``[[backfill]]``: management commands copying data into a service, run in its settings;
* ``[[subscriptions]]``: event consumers that must be bound before the backfill;
* ``[[rollout]]``: the stages every route walks (mode, gates to enter, dwell_s);
* ``[gates.NAME]``: gate definitions (kind contract | shadow_diff | reconcile | outbox_lag);
* ``[rollback]``: the mode routes return to and how long to wait for the drain.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strangler_proxy.modes import mode_problem

STEPS_DIR = Path(__file__).resolve().parent / "steps"
FILE_PATTERN = re.compile(r"^step-(\d+)-[a-z0-9-]+\.toml$")
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
GATE_KINDS = ("contract", "shadow_diff", "reconcile", "outbox_lag")


class StepFileError(ValueError):
    """A step file is invalid; `problems` names the file, key and value of each fault."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path.name}: {problem}" for problem in problems))


@dataclass(frozen=True)
class Service:
    """A service a step introduces: its Django project, its port and its event consumer."""

    name: str
    settings: str
    wsgi: str
    port: int
    consumer: str | None = None
    owns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """A proxy route a step moves from the monolith to `service`."""

    name: str
    service: str
    prefix: str | None = None
    path: str | None = None
    methods: tuple[str, ...] = ()
    fallback: bool = True
    compare: dict[str, Any] = field(default_factory=dict)
    identity: bool = False

    def table_entry(self, mode: str) -> dict[str, Any]:
        """Return this route as an entry of the proxy's route table, in `mode`."""
        entry: dict[str, Any] = {"name": self.name, "mode": mode, "service": self.service}
        entry |= {"prefix": self.prefix} if self.prefix else {"path": self.path}
        if self.methods:
            entry["methods"] = list(self.methods)
        entry["fallback"] = self.fallback
        if self.compare:
            entry["compare"] = dict(self.compare)
        if self.identity:
            entry["identity"] = True
        return entry


@dataclass(frozen=True)
class Backfill:
    """A management command that copies data into `service` (run in its settings)."""

    service: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class Subscription:
    """An event consumer: queue `<consumer>.events`, run in the settings of `service`."""

    consumer: str
    service: str
    events: tuple[str, ...]
    handlers: str | None = None


@dataclass(frozen=True)
class Stage:
    """One rollout stage: the routes' mode, the gates to enter it, how long to watch it."""

    mode: str
    gates: tuple[str, ...]
    dwell_s: float = 0.0


@dataclass(frozen=True)
class Gate:
    """A named check with its kind and thresholds (see gates.py for what each kind measures)."""

    name: str
    kind: str
    options: dict[str, Any]
    watch: bool = False


@dataclass(frozen=True)
class Rollback:
    mode: str = "monolith"
    drain_timeout_s: float = 120.0


@dataclass(frozen=True)
class Step:
    """One playbook step, as its file declares it."""

    number: int
    name: str
    title: str
    chapter: str
    path: Path
    services: tuple[Service, ...] = ()
    routes: tuple[Route, ...] = ()
    backfill: tuple[Backfill, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    rollout: tuple[Stage, ...] = ()
    gates: dict[str, Gate] = field(default_factory=dict)
    rollback: Rollback = field(default_factory=Rollback)

    def stage_index(self, mode: str) -> int:
        """Return the position of `mode` in the rollout; -1 for the monolith (not started)."""
        for index, stage in enumerate(self.rollout):
            if stage.mode == mode:
                return index
        return -1

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)


# ---------------------------------------------------------------- validation helpers


class _Checker:
    """Collect problems while reading one file's tables."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, text: str) -> None:
        self.problems.append(f"{key}: {text}")

    def table(self, data: Any, key: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail(key, f"must be a table, got {data!r}")
            return {}
        return data

    def keys(self, data: dict[str, Any], key: str, required: set[str], optional: set[str]):
        prefix = f"{key}." if key else ""
        for name in sorted(set(data) - required - optional):
            self.fail(
                f"{prefix}{name}",
                f"unknown key (value {data[name]!r}); expected one of "
                f"{', '.join(sorted(required | optional))}",
            )
        for name in sorted(required - set(data)):
            self.fail(f"{prefix}{name}", "is required")

    def string(self, data, key, name, *, pattern=None, default=None, what="a string"):
        value = data.get(name, default)
        if name not in data and default is not None:
            return value
        if not isinstance(value, str) or (pattern and not pattern.match(value)):
            if name in data:
                self.fail(f"{key}.{name}" if key else name, f"must be {what}, got {value!r}")
            return default
        return value

    def number(self, data, key, name, *, low, high=None, default, integer=False, what=None):
        if name not in data:
            return default
        value = data[name]
        kind = int if integer else (int, float)
        in_range = (
            isinstance(value, kind)
            and not isinstance(value, bool)
            and value >= low
            and (high is None or value <= high)
        )
        if not in_range:
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            noun = what or ("an integer" if integer else "a number")
            self.fail(f"{key}.{name}", f"must be {noun} {bound}, got {value!r}")
            return default
        return value

    def boolean(self, data, key, name, default):
        value = data.get(name, default)
        if not isinstance(value, bool):
            self.fail(f"{key}.{name}", f"must be true or false, got {value!r}")
            return default
        return value

    def strings(self, data, key, name, *, required=False, pattern=None, what="strings"):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{key}.{name}", f"must be a list of {what}, got {value!r}")
            return ()
        if pattern:
            for item in value:
                if not pattern.match(item):
                    self.fail(f"{key}.{name}", f"{item!r} is not a valid {what[:-1]}")
        if required and not value:
            self.fail(f"{key}.{name}", f"must list at least one of the {what}, got []")
        return tuple(value)

    def array(self, data, name) -> list[dict[str, Any]]:
        value = data.get(name, [])
        if not isinstance(value, list):
            self.fail(name, f"must be an array of tables ([[{name}]]), got {value!r}")
            return []
        return [self.table(item, f"{name}[{i}]") for i, item in enumerate(value)]


_GATE_OPTIONS: dict[str, tuple[set[str], set[str]]] = {
    "contract": ({"paths"}, {"timeout_s", "max_failures"}),
    "shadow_diff": ({"max_rate", "min_compared"}, set()),
    "reconcile": ({"service", "command"}, {"attempts", "settle_s"}),
    "outbox_lag": ({"services", "consumers", "max_messages"}, {"max_age_s"}),
}


def _gate(check: _Checker, name: str, data: dict[str, Any], service_names: set[str]) -> Gate:
    key = f"gates.{name}"
    kind = data.get("kind")
    if kind not in GATE_KINDS:
        check.fail(f"{key}.kind", f"must be one of {', '.join(GATE_KINDS)}; got {kind!r}")
        return Gate(name=name, kind=str(kind), options={})
    required, optional = _GATE_OPTIONS[kind]
    check.keys(data, key, required | {"kind"}, optional | {"watch"})
    options: dict[str, Any] = {}
    if kind == "contract":
        options["paths"] = check.strings(data, key, "paths", required=True, what="test paths")
        options["timeout_s"] = check.number(data, key, "timeout_s", low=1, default=300)
        options["max_failures"] = check.number(
            data, key, "max_failures", low=0, default=0, integer=True
        )
    elif kind == "shadow_diff":
        options["max_rate"] = check.number(
            data, key, "max_rate", low=0, high=1, default=0.01, what="a number (a share)"
        )
        options["min_compared"] = check.number(
            data, key, "min_compared", low=1, default=20, integer=True
        )
    elif kind == "reconcile":
        options["service"] = check.string(data, key, "service", pattern=NAME, what="a name")
        if options["service"] and options["service"] not in service_names:
            check.fail(
                f"{key}.service",
                f"names no service of this step: {options['service']!r} "
                f"(services: {', '.join(sorted(service_names)) or 'none'})",
            )
        options["command"] = check.strings(data, key, "command", required=True, what="arguments")
        options["attempts"] = check.number(data, key, "attempts", low=1, default=3, integer=True)
        options["settle_s"] = check.number(data, key, "settle_s", low=0, default=2.0)
    elif kind == "outbox_lag":
        known = service_names | {"monolith"}
        options["services"] = check.strings(
            data, key, "services", required=True, pattern=NAME, what="service names"
        )
        for service in options["services"]:
            if service not in known:
                check.fail(f"{key}.services", f"names no service of this step: {service!r}")
        options["consumers"] = check.strings(
            data, key, "consumers", pattern=NAME, what="consumer names"
        )
        options["max_messages"] = check.number(
            data, key, "max_messages", low=0, default=200, integer=True
        )
        options["max_age_s"] = check.number(data, key, "max_age_s", low=0, default=30.0)
    return Gate(
        name=name, kind=kind, options=options, watch=check.boolean(data, key, "watch", False)
    )


def step_parse(path: Path, data: dict[str, Any]) -> Step:
    """Return the Step that `data` (read from `path`) declares, or raise StepFileError."""
    check = _Checker()
    top = {"step", "name", "title", "chapter"}
    sections = {"services", "routes", "backfill", "subscriptions", "rollout", "gates", "rollback"}
    check.keys(data, "", top, sections)
    number = check.number(data, "", "step", low=0, default=-1, integer=True)
    match = FILE_PATTERN.match(path.name)
    if match and isinstance(number, int) and number >= 0 and int(match.group(1)) != number:
        check.fail("step", f"is {number!r} but the file name says step {match.group(1)}")
    name = check.string(data, "", "name", pattern=NAME, default="", what="a lowercase name")
    title = check.string(data, "", "title", default="")
    chapter = check.string(data, "", "chapter", default="")

    services = []
    for i, item in enumerate(check.array(data, "services")):
        key = f"services[{i}]"
        check.keys(item, key, {"name", "settings", "wsgi", "port"}, {"consumer", "owns"})
        services.append(
            Service(
                name=check.string(item, key, "name", pattern=NAME, default="", what="a name"),
                settings=check.string(
                    item, key, "settings", pattern=MODULE, default="", what="a dotted module"
                ),
                wsgi=check.string(
                    item, key, "wsgi", pattern=MODULE, default="", what="a dotted module"
                ),
                port=check.number(item, key, "port", low=1, high=65535, default=0, integer=True),
                consumer=check.string(item, key, "consumer", pattern=NAME, what="a name"),
                owns=check.strings(item, key, "owns", what="names of data"),
            )
        )
    service_names = {s.name for s in services}

    routes = []
    for i, item in enumerate(check.array(data, "routes")):
        key = f"routes[{i}]"
        check.keys(item, key, {"name", "service"}, {"prefix", "path", "methods", "fallback",
                                                     "compare", "identity"})  # fmt: skip
        service = check.string(item, key, "service", pattern=NAME, default="", what="a name")
        if service and service not in service_names:
            check.fail(f"{key}.service", f"names no service of this step: {service!r}")
        if ("prefix" in item) == ("path" in item):
            check.fail(key, "needs exactly one of 'prefix' and 'path'")
        for where in ("prefix", "path"):
            value = item.get(where)
            if value is not None and (not isinstance(value, str) or not value.startswith("/")):
                check.fail(f"{key}.{where}", f"must be a path starting with '/', got {value!r}")
        compare = item.get("compare", {})
        if not isinstance(compare, dict):
            check.fail(f"{key}.compare", f"must be a table, got {compare!r}")
            compare = {}
        routes.append(
            Route(
                name=check.string(item, key, "name", pattern=NAME, default="", what="a name"),
                service=service,
                prefix=item.get("prefix"),
                path=item.get("path"),
                methods=check.strings(item, key, "methods", what="HTTP methods"),
                fallback=check.boolean(item, key, "fallback", True),
                compare=compare,
                identity=check.boolean(item, key, "identity", False),
            )
        )
    if sum(route.identity for route in routes) > 1:
        check.fail("routes", "more than one route says identity = true; one route owns identity")

    backfill = []
    for i, item in enumerate(check.array(data, "backfill")):
        key = f"backfill[{i}]"
        check.keys(item, key, {"service", "command"}, set())
        service = check.string(item, key, "service", pattern=NAME, default="", what="a name")
        if service and service not in service_names:
            check.fail(f"{key}.service", f"names no service of this step: {service!r}")
        command = check.strings(item, key, "command", required=True, what="arguments")
        backfill.append(Backfill(service=service, command=command))

    subscriptions = []
    for i, item in enumerate(check.array(data, "subscriptions")):
        key = f"subscriptions[{i}]"
        check.keys(item, key, {"consumer", "service", "events"}, {"handlers"})
        service = check.string(item, key, "service", pattern=NAME, default="", what="a name")
        if service and service not in service_names | {"monolith"}:
            check.fail(f"{key}.service", f"names no service of this step: {service!r}")
        subscriptions.append(
            Subscription(
                consumer=check.string(
                    item, key, "consumer", pattern=NAME, default="", what="a name"
                ),
                service=service,
                events=check.strings(item, key, "events", required=True, what="event patterns"),
                handlers=check.string(
                    item, key, "handlers", pattern=MODULE, what="a dotted module"
                ),
            )
        )

    gates = {}
    raw_gates = check.table(data.get("gates", {}), "gates")
    for gate_name, gate_data in raw_gates.items():
        if not NAME.match(gate_name):
            check.fail(f"gates.{gate_name}", "is not a valid gate name")
        gates[gate_name] = _gate(
            check, gate_name, check.table(gate_data, f"gates.{gate_name}"), service_names
        )

    rollout = []
    for i, item in enumerate(check.array(data, "rollout")):
        key = f"rollout[{i}]"
        check.keys(item, key, {"mode"}, {"gates", "dwell_s"})
        mode = item.get("mode")
        problem = mode_problem(mode)
        if problem or mode == "monolith":
            check.fail(f"{key}.mode", problem or "a rollout stage cannot be 'monolith'")
        stage_gates = check.strings(item, key, "gates", what="gate names")
        for gate_name in stage_gates:
            if gate_name not in gates:
                check.fail(
                    f"{key}.gates",
                    f"names an undefined gate {gate_name!r} "
                    f"(defined: {', '.join(sorted(gates)) or 'none'})",
                )
        dwell = check.number(item, key, "dwell_s", low=0, default=0.0)
        rollout.append(Stage(mode=str(mode), gates=stage_gates, dwell_s=float(dwell)))
    modes = [stage.mode for stage in rollout]
    if len(set(modes)) != len(modes):
        check.fail("rollout", f"lists a mode twice: {modes}")
    if routes and not rollout:
        check.fail("rollout", "is required when the step moves routes")

    rollback = Rollback()
    if "rollback" in data:
        item = check.table(data["rollback"], "rollback")
        check.keys(item, "rollback", set(), {"mode", "drain_timeout_s"})
        mode = item.get("mode", "monolith")
        if mode != "monolith":
            check.fail("rollback.mode", f"routes roll back to 'monolith' only, got {mode!r}")
        rollback = Rollback(
            drain_timeout_s=float(
                check.number(item, "rollback", "drain_timeout_s", low=0, default=120.0)
            )
        )
    if check.problems:
        raise StepFileError(path, check.problems)
    return Step(
        number=number,
        name=name,
        title=title,
        chapter=chapter,
        path=path,
        services=tuple(services),
        routes=tuple(routes),
        backfill=tuple(backfill),
        subscriptions=tuple(subscriptions),
        rollout=tuple(rollout),
        gates=gates,
        rollback=rollback,
    )


def step_load(path: Path) -> Step:
    """Read and validate one step file."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StepFileError(path, [f"is not valid TOML: {exc}"]) from None
    return step_parse(path, data)


def steps_load(directory: Path = STEPS_DIR) -> dict[int, Step]:
    """Return every step in `directory` by number; refuse a file named unlike step-N-name."""
    steps: dict[int, Step] = {}
    for path in sorted(directory.glob("*.toml")):
        if not FILE_PATTERN.match(path.name):
            raise StepFileError(path, ["file name must look like step-N-name.toml"])
        step = step_load(path)
        if step.number in steps:
            raise StepFileError(path, [f"step: {step.number} is also {steps[step.number].path}"])
        steps[step.number] = step
    return dict(sorted(steps.items()))


def step_get(number: int, directory: Path = STEPS_DIR) -> Step:
    """Return step `number`, or raise KeyError naming the steps that exist."""
    steps = steps_load(directory)
    if number not in steps:
        known = ", ".join(str(n) for n in steps)
        raise KeyError(f"unknown step {number}; the steps that exist are: {known}")
    return steps[number]
