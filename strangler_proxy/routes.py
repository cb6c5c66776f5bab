"""The route table: an immutable, validated model of which half serves which endpoint.

A table is built whole from a mapping (read from a TOML or YAML file, or sent to the admin API)
and never changed in place: a change builds a new table and the gateway swaps one reference, so a
request in flight keeps the table it started with. Validation collects every problem and names
the route (or service) and what is wrong; one problem refuses the whole table.

Matching, most specific first (file order breaks ties):

* ``path = "/api/orders/{id}/pay"``: a pattern, exact, ``{name}`` matches one path segment;
* ``prefix = "/api/payments/"``: the path itself or anything below it (segment boundary);
* ``methods = ["GET"]`` and ``headers = {"X-Beta" = "1"}`` (``"*"``: present) narrow a route.

Modes: ``monolith``, ``shadow``, ``canary:P`` (0 < P < 100), ``extracted`` (modes.py reads them).
"""

from __future__ import annotations

import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ModeError, RouteTableError
from .modes import mode_parse

MONOLITH = "monolith"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
BALANCERS = ("round_robin", "least_outstanding")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Service:
    """Where a named half lives: static instances and/or the discovery registry."""

    name: str
    instances: tuple[str, ...] = ()
    discovery: bool = False
    balance: str = "round_robin"
    health_path: str | None = "/readyz"
    health_interval: float = 5.0
    preserve_host: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "instances": list(self.instances),
            "discovery": self.discovery,
            "balance": self.balance,
            "health_path": self.health_path,
            "health_interval": self.health_interval,
            "preserve_host": self.preserve_host,
        }


@dataclass(frozen=True, slots=True)
class CompareRules:
    """How shadow responses are compared (see compare.py)."""

    ignore: tuple[str, ...] = ()
    unordered: tuple[str, ...] = ()
    normalize_numbers: bool = True
    status: bool = True
    headers: tuple[str, ...] = ()
    noise_sample: float = 0.1
    # A differing answer is fetched again from both halves after this delay and recorded only if
    # it still differs: a read that overtook the write's event is replication lag, not a bug.
    settle_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ignore": list(self.ignore),
            "unordered": list(self.unordered),
            "normalize_numbers": self.normalize_numbers,
            "status": self.status,
            "headers": list(self.headers),
            "noise_sample": self.noise_sample,
            "settle_ms": self.settle_ms,
        }


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `rate` tokens per second, up to `burst`."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of the table: what it matches and how it is served."""

    name: str
    mode: str = MONOLITH
    service: str = MONOLITH
    prefix: str | None = None
    path: str | None = None
    methods: frozenset[str] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 30.0
    connect_timeout: float = 2.0
    retries: int = 1
    fallback: bool = True
    rate_limit: str | None = None
    compare: CompareRules = field(default_factory=CompareRules)
    canary_percent: float = 0.0
    record: float = 0.0  # share of requests recorded for replay (recording.py)
    # Names this route adds to the deny-list of what is never stored (redaction.py).
    redact_headers: tuple[str, ...] = ()
    redact_fields: tuple[str, ...] = ()
    regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    @property
    def specificity(self) -> tuple[int, int, int]:
        literal = len(_PARAM.sub("", self.path)) if self.path else len(self.prefix or "")
        narrowed = int(self.methods is not None) + int(bool(self.headers))
        return (1 if self.path else 0, literal, narrowed)

    def matches(self, method: str, path: str, headers: Any) -> dict[str, str] | None:
        """Return the path parameters if this route serves the request, else None."""
        if self.methods is not None and method not in self.methods:
            return None
        for name, value in self.headers:
            got = headers.get(name)
            if got is None or (value != "*" and got != value):
                return None
        if self.regex is not None:
            found = self.regex.match(path)
            return found.groupdict() if found else None
        prefix = self.prefix
        if prefix.endswith("/"):
            # "/api/payments/" serves "/api/payments" and everything below it.
            if path.startswith(prefix) or path == prefix[:-1]:
                return {}
        elif path == prefix or path.startswith(prefix + "/"):
            return {}
        return None

    def target(self, identity: Any, remote: str | None) -> str:
        """Return the service that serves this route for a caller (canary: sticky per user).

        `identity` is the caller's (None: anonymous, sticky per client address instead). A
        canary hashes the service, not the route, so a user's whole journey through the
        service stays on one side.
        """
        mode = self.mode
        if mode == "monolith" or mode == "shadow":
            return MONOLITH
        if mode == "extracted":
            return self.service
        sticky = identity.user_id if identity else (remote or "")
        bucket = zlib.crc32(f"{self.service}:{sticky}".encode()) % 10000
        return self.service if bucket < self.canary_percent * 100 else MONOLITH

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "mode": self.mode, "service": self.service}
        if self.path:
            data["path"] = self.path
        else:
            data["prefix"] = self.prefix
        if self.methods is not None:
            data["methods"] = sorted(self.methods)
        if self.headers:
            data["headers"] = dict(self.headers)
        data.update(
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            retries=self.retries,
            fallback=self.fallback,
            compare=self.compare.as_dict(),
        )
        if self.rate_limit:
            data["rate_limit"] = self.rate_limit
        if self.record:
            data["record"] = self.record
        if self.redact_headers or self.redact_fields:
            data["redact"] = {"headers": list(self.redact_headers),
                              "fields": list(self.redact_fields)}  # fmt: skip
        return data


@dataclass(frozen=True, slots=True)
class RouteTable:
    """An immutable, validated table: services, routes (most specific first), rate limits."""

    services: dict[str, Service]
    routes: tuple[Route, ...]
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    version: int = 1
    # Whether any route matches on headers: then a routing decision depends on more than the
    # method and path (the gateway's fast path remembers decisions only when it does not).
    matches_headers: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matches_headers", any(r.headers for r in self.routes))

    def match(self, method: str, path: str, headers: Any) -> tuple[Route, dict[str, str]] | None:
        """Return the first (most specific) route serving the request and its parameters."""
        for route in self.routes:
            params = route.matches(method, path, headers)
            if params is not None:
                return route, params
        return None

    def route(self, name: str) -> Route | None:
        for route in self.routes:
            if route.name == name:
                return route
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "services": {name: svc.as_dict() for name, svc in self.services.items()},
            "routes": [route.as_dict() for route in self.routes],
            "rate_limits": {
                name: {"rate": rl.rate, "burst": rl.burst} for name, rl in self.rate_limits.items()
            },
        }

    def with_route(self, name: str, changes: dict[str, Any]) -> RouteTable:
        """Return a new validated table where route `name` has `changes` applied."""
        data = self.as_dict()
        for entry in data["routes"]:
            if entry["name"] == name:
                entry.update(changes)
                if "path" in changes:
                    entry.pop("prefix", None)
                if "prefix" in changes:
                    entry.pop("path", None)
                break
        else:
            raise RouteTableError([f"route {name!r}: no such route"])
        return table_from_dict(data, monolith_url=None, version=self.version + 1)


def step0_table(monolith_url: str) -> RouteTable:
    """Return the step-0 table: every path to the monolith."""
    return table_from_dict(
        {"routes": [{"name": "default", "prefix": "/"}]}, monolith_url=monolith_url
    )


def table_from_file(path: str | Path, *, monolith_url: str, version: int = 1) -> RouteTable:
    """Read and validate a TOML (``.toml``) or YAML (``.yaml``/``.yml``) route table."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RouteTableError([f"file {str(path)!r}: cannot be read ({exc.strerror})"]) from exc
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text) or {}
        else:
            raise RouteTableError([f"file {str(path)!r}: expected .toml, .yaml or .yml"])
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise RouteTableError([f"file {str(path)!r}: not valid {path.suffix[1:]}: {exc}"]) from exc
    return table_from_dict(data, monolith_url=monolith_url, version=version)


def table_from_dict(data: Any, *, monolith_url: str | None, version: int = 1) -> RouteTable:
    """Validate `data` and build a table; raise RouteTableError listing every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise RouteTableError([f"table: expected a mapping, got {type(data).__name__}"])
    unknown = set(data) - {"services", "routes", "rate_limits", "version"}
    if unknown:
        problems.append(f"table: unknown keys {sorted(unknown)}")
    services = _services(data.get("services") or {}, monolith_url, problems)
    rate_limits = _rate_limits(data.get("rate_limits") or {}, problems)
    raw_routes = data.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        problems.append("table: 'routes' must be a non-empty list")
        raw_routes = []
    routes: list[Route] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_routes):
        route = _route(raw, index, services, rate_limits, problems)
        if route is None:
            continue
        if route.name in seen:
            problems.append(f"route {route.name!r}: name used twice")
        seen.add(route.name)
        routes.append(route)
    if problems:
        raise RouteTableError(problems)
    ordered = sorted(routes, key=lambda r: r.specificity, reverse=True)
    return RouteTable(
        services=services, routes=tuple(ordered), rate_limits=rate_limits, version=version
    )


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not re.match(r"^http://[^/\s?#]+$", url.rstrip("/")):
        return f"{url!r} is not an http://host:port URL"
    return None


def _services(raw: Any, monolith_url: str | None, problems: list[str]) -> dict[str, Service]:
    if not isinstance(raw, dict):
        problems.append("services: expected a mapping of name to service")
        return {}
    raw = dict(raw)
    if MONOLITH not in raw:
        if monolith_url is None:
            problems.append("service 'monolith': missing")
        else:
            raw[MONOLITH] = {"url": monolith_url}
    services: dict[str, Service] = {}
    for name, spec in raw.items():
        where = f"service {name!r}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        if not _NAME.match(str(name)):
            problems.append(f"{where}: name must be 1-64 letters, digits or _.:-")
        extra = set(spec) - {
            "url", "instances", "discovery", "balance", "health_path", "health_interval",
            "preserve_host",
        }  # fmt: skip
        if extra:
            problems.append(f"{where}: unknown keys {sorted(extra)}")
        instances = list(spec.get("instances") or [])
        if "url" in spec:
            instances.insert(0, spec["url"])
        for url in instances:
            if (problem := _url_problem(url)) is not None:
                problems.append(f"{where}: instance {problem}")
        discovery = spec.get("discovery", False)
        if not isinstance(discovery, bool):
            problems.append(f"{where}: 'discovery' must be true or false")
        if not instances and not discovery:
            problems.append(f"{where}: needs 'url', 'instances' or 'discovery = true'")
        balance = spec.get("balance", "round_robin")
        if balance not in BALANCERS:
            problems.append(f"{where}: 'balance' must be one of {', '.join(BALANCERS)}")
        health_path = spec.get("health_path", "/readyz")
        if health_path is not None and not (
            isinstance(health_path, str) and health_path.startswith("/")
        ):
            problems.append(f"{where}: 'health_path' must start with / (or be null)")
        interval = _number(
            spec.get("health_interval", 5.0), f"{where}: 'health_interval'", problems, low=0.1
        )
        services[str(name)] = Service(
            name=str(name),
            instances=tuple(str(u).rstrip("/") for u in instances if isinstance(u, str)),
            discovery=bool(discovery),
            balance=str(balance),
            health_path=health_path,
            health_interval=interval,
            preserve_host=bool(spec.get("preserve_host", False)),
        )
    return services


def _rate_limits(raw: Any, problems: list[str]) -> dict[str, RateLimit]:
    if not isinstance(raw, dict):
        problems.append("rate_limits: expected a mapping of group to {rate, burst}")
        return {}
    limits = {}
    for name, spec in raw.items():
        where = f"rate limit {name!r}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a mapping with 'rate' and 'burst'")
            continue
        rate = _number(spec.get("rate"), f"{where}: 'rate'", problems, low=0.001)
        burst = _number(
            spec.get("burst", max(1, int(rate or 1))), f"{where}: 'burst'", problems, low=1
        )
        limits[str(name)] = RateLimit(rate=rate, burst=int(burst))
    return limits


def _number(
    value: Any, where: str, problems: list[str], *, low: float, high: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where} must be a number, got {value!r}")
        return low
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        problems.append(f"{where} must be {bound}, got {value!r}")
        return low
    return float(value)


def _route(
    raw: Any,
    index: int,
    services: dict[str, Service],
    rate_limits: dict[str, RateLimit],
    problems: list[str],
) -> Route | None:
    if not isinstance(raw, dict):
        problems.append(f"route #{index}: expected a mapping, got {type(raw).__name__}")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(
            f"route #{index}: 'name' must be 1-64 letters, digits or _.:-, got {name!r}"
        )
        name = f"#{index}"
    where = f"route {name!r}"
    extra = set(raw) - {
        "name", "mode", "service", "prefix", "path", "methods", "headers", "timeout",
        "connect_timeout", "retries", "fallback", "rate_limit", "compare", "record", "redact",
    }  # fmt: skip
    if extra:
        problems.append(f"{where}: unknown keys {sorted(extra)}")
    mode = raw.get("mode", MONOLITH)
    canary = 0.0
    try:
        parsed = mode_parse(mode)
    except ModeError as exc:
        problems.append(f"{where}: {exc}")
        parsed = None
    else:
        canary = parsed.percent
    service = raw.get("service", MONOLITH)
    if service not in services:
        problems.append(f"{where}: unknown service {service!r}")
    if parsed is not None and parsed.needs_service and service == MONOLITH:
        problems.append(f"{where}: mode {mode!r} needs a 'service' other than the monolith")
    prefix, path = raw.get("prefix"), raw.get("path")
    regex = None
    if (prefix is None) == (path is None):
        problems.append(f"{where}: give exactly one of 'prefix' or 'path'")
    elif path is not None:
        if not isinstance(path, str) or not path.startswith("/") or ".." in path:
            problems.append(f"{where}: 'path' must start with / and hold no '..', got {path!r}")
        else:
            regex = _compile(path, where, problems)
    elif not isinstance(prefix, str) or not prefix.startswith("/") or ".." in prefix:
        problems.append(f"{where}: 'prefix' must start with / and hold no '..', got {prefix!r}")
    methods = raw.get("methods")
    if methods is not None:
        if not isinstance(methods, list) or not methods:
            problems.append(f"{where}: 'methods' must be a non-empty list")
            methods = None
        else:
            methods = [str(m).upper() for m in methods]
            bad = [m for m in methods if m not in KNOWN_METHODS]
            if bad:
                problems.append(f"{where}: unknown methods {bad}")
            methods = frozenset(methods)
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append(f"{where}: 'headers' must map header names to strings")
        headers = {}
    timeout = _number(
        raw.get("timeout", 30.0), f"{where}: 'timeout'", problems, low=0.001, high=3600
    )
    connect_timeout = _number(
        raw.get("connect_timeout", 2.0),
        f"{where}: 'connect_timeout'",
        problems,
        low=0.001,
        high=600,
    )
    retries = raw.get("retries", 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        problems.append(f"{where}: 'retries' must be an integer from 0 to 5, got {retries!r}")
        retries = 0
    fallback = raw.get("fallback", True)
    if not isinstance(fallback, bool):
        problems.append(f"{where}: 'fallback' must be true or false")
    rate_limit = raw.get("rate_limit")
    if rate_limit is not None and rate_limit not in rate_limits:
        problems.append(f"{where}: unknown rate limit group {rate_limit!r}")
    compare = _compare(raw.get("compare") or {}, where, problems)
    record = _number(raw.get("record", 0.0), f"{where}: 'record'", problems, low=0.0, high=1.0)
    redact_headers, redact_fields = _redact(raw.get("redact") or {}, where, problems)
    return Route(
        name=name,
        mode=str(mode),
        service=str(service),
        prefix=prefix if isinstance(prefix, str) else None,
        path=path if isinstance(path, str) else None,
        methods=methods,
        headers=tuple((str(k), v) for k, v in headers.items()),
        timeout=timeout,
        connect_timeout=connect_timeout,
        retries=retries,
        fallback=bool(fallback),
        rate_limit=rate_limit,
        compare=compare,
        canary_percent=canary,
        record=record,
        redact_headers=redact_headers,
        redact_fields=redact_fields,
        regex=regex,
    )


def _compile(path: str, where: str, problems: list[str]) -> re.Pattern | None:
    pieces, last = [], 0
    names: set[str] = set()
    for found in _PARAM.finditer(path):
        pieces.append(re.escape(path[last : found.start()]))
        if found.group(1) in names:
            problems.append(f"{where}: parameter {{{found.group(1)}}} used twice")
        names.add(found.group(1))
        pieces.append(f"(?P<{found.group(1)}>[^/]+)")
        last = found.end()
    pieces.append(re.escape(path[last:]))
    rest = _PARAM.sub("", path)
    if "{" in rest or "}" in rest:
        problems.append(f"{where}: malformed parameter in 'path' {path!r}")
        return None
    return re.compile("^" + "".join(pieces) + "$")


def _compare(raw: Any, where: str, problems: list[str]) -> CompareRules:
    if not isinstance(raw, dict):
        problems.append(f"{where}: 'compare' must be a mapping")
        return CompareRules()
    extra = set(raw) - {
        "ignore",
        "unordered",
        "normalize_numbers",
        "status",
        "headers",
        "noise_sample",
        "settle_ms",
    }
    if extra:
        problems.append(f"{where}: unknown compare keys {sorted(extra)}")
    lists = {}
    for key in ("ignore", "unordered", "headers"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}: compare '{key}' must be a list of strings")
            value = []
        if key != "headers":
            for pointer in value:
                if pointer and not pointer.startswith("/"):
                    problems.append(
                        f"{where}: compare '{key}' entry {pointer!r} must be a JSON pointer"
                    )
        lists[key] = tuple(v.lower() if key == "headers" else v for v in value)
    sample = _number(
        raw.get("noise_sample", 0.1),
        f"{where}: compare 'noise_sample'",
        problems,
        low=0.0,
        high=1.0,
    )
    return CompareRules(
        ignore=lists["ignore"],
        unordered=lists["unordered"],
        normalize_numbers=bool(raw.get("normalize_numbers", True)),
        status=bool(raw.get("status", True)),
        headers=lists["headers"],
        noise_sample=sample,
        settle_ms=int(
            _number(
                raw.get("settle_ms", 0),
                f"{where}: compare 'settle_ms'",
                problems,
                low=0.0,
                high=60000.0,
            )
        ),
    )


def _redact(raw: Any, where: str, problems: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the header names and JSON key parts a route adds to the deny-list.

    It can only add: the defaults (redaction.py) always hold, and any other key is refused.
    """
    if not isinstance(raw, dict):
        problems.append(f"{where}: 'redact' must be a mapping with 'headers' and/or 'fields'")
        return (), ()
    extra = set(raw) - {"headers", "fields"}
    if extra:
        problems.append(
            f"{where}: 'redact' only adds 'headers' and 'fields' to the deny-list, it cannot "
            f"remove any; unknown keys {sorted(extra)}"
        )
    found = []
    for key in ("headers", "fields"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{where}: redact '{key}' must be a list of non-empty names")
            value = []
        found.append(tuple(v.strip().lower() for v in value))
    return found[0], found[1]
