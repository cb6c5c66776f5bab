"""The route table: an immutable, validated model of which half serves which endpoint.

A table is built whole from a mapping (read from a TOML or YAML file, or sent to the admin API)
and never changed in place: a change builds a new table and the store (tables.py) swaps one
reference, so a request in flight keeps the table it started with. Validation (route_checks.py)
collects every problem and names the route (or service) and what is wrong; one problem refuses
the whole table.

Matching, most specific first (file order breaks ties):

* ``path = "/api/orders/{id}/pay"``: a pattern, exact, ``{name}`` matches one path segment;
* ``prefix = "/api/payments/"``: the path itself or anything below it (segment boundary);
* ``methods = ["GET"]`` and ``headers = {"X-Beta" = "1"}`` (``"*"``: present) narrow a route.

Modes: ``monolith``, ``shadow``, ``canary:P`` (0 < P < 100), ``extracted`` (modes.py reads them).

Who owns identity (answers ``GET /api/users/me/`` for a Bearer token) is a property of the table:
the route marked ``identity = true`` (at most one) decides, by its mode. Before its step and
until it is ``extracted``, the monolith is asked first and the route's service second (during
canary both halves issue tokens, each learning the other's by events a moment later); once
``extracted``, the service first and the monolith second. Without such a route: the monolith
alone. See ``RouteTable.identity_owners`` and docs/step-2-extract-users.md.
"""

from __future__ import annotations

import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import RouteTableError
from .route_checks import (
    BALANCERS,
    KNOWN_METHODS,
    MONOLITH,
    PARAM,
    rate_limits_check,
    route_check,
    services_check,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
__all__ = [
    "BALANCERS",
    "KNOWN_METHODS",
    "MONOLITH",
    "SAFE_METHODS",
    "CompareRules",
    "RateLimit",
    "Route",
    "RouteTable",
    "RouteTableError",
    "Service",
    "step0_table",
    "table_from_dict",
    "table_from_file",
]


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
    # This route's half owns identity when it serves the route (see the module docstring).
    identity: bool = False
    regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    @property
    def specificity(self) -> tuple[int, int, int]:
        literal = len(PARAM.sub("", self.path)) if self.path else len(self.prefix or "")
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
        if self.identity:
            data["identity"] = True
        return data


@dataclass(frozen=True, slots=True)
class RouteTable:
    """An immutable, validated table: services, routes (most specific first), rate limits."""

    services: dict[str, Service]
    routes: tuple[Route, ...]
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    version: int = 1
    # Whether any route matches on headers: then a routing decision depends on more than the
    # method and path (the fast path remembers decisions only when it does not).
    matches_headers: bool = field(default=False, init=False, repr=False, compare=False)
    # The services asked who a Bearer token belongs to, in order (see the module docstring).
    identity_owners: tuple[str, ...] = field(default=(MONOLITH,), init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matches_headers", any(r.headers for r in self.routes))
        owner = next((r for r in self.routes if r.identity), None)
        owners: tuple[str, ...] = (MONOLITH,)
        if owner is not None and owner.service != MONOLITH:
            if owner.mode == "extracted":
                owners = (owner.service, MONOLITH)
            else:
                owners = (MONOLITH, owner.service)
        object.__setattr__(self, "identity_owners", owners)

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
    services = {
        name: Service(**fields)
        for name, fields in services_check(
            data.get("services") or {}, monolith_url, problems
        ).items()
    }
    rate_limits = {
        name: RateLimit(**fields)
        for name, fields in rate_limits_check(data.get("rate_limits") or {}, problems).items()
    }
    raw_routes = data.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        problems.append("table: 'routes' must be a non-empty list")
        raw_routes = []
    routes: list[Route] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_routes):
        fields = route_check(raw, index, services, rate_limits, problems)
        if fields is None:
            continue
        route = Route(**fields | {"compare": CompareRules(**fields["compare"])})
        if route.name in seen:
            problems.append(f"route {route.name!r}: name used twice")
        if route.identity and any(r.identity for r in routes):
            owner = next(r.name for r in routes if r.identity)
            problems.append(
                f"route {route.name!r}: 'identity' is already claimed by route {owner!r}; "
                "one route owns identity"
            )
        seen.add(route.name)
        routes.append(route)
    if problems:
        raise RouteTableError(problems)
    ordered = sorted(routes, key=lambda r: r.specificity, reverse=True)
    return RouteTable(
        services=services, routes=tuple(ordered), rate_limits=rate_limits, version=version
    )
