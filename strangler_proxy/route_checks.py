"""Check the parts of a route table as read (a file, the admin API), naming every problem.

Each check collects its problems in the list it is given (``route 'x': ...``, ``service 'y':
...``) and returns the fields of the part as plain values; routes.py builds the table from them
and refuses it whole if any problem was found.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ModeError
from .modes import mode_parse

MONOLITH = "monolith"
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
BALANCERS = ("round_robin", "least_outstanding")
PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not re.match(r"^http://[^/\s?#]+$", url.rstrip("/")):
        return f"{url!r} is not an http://host:port URL"
    return None


def services_check(raw: Any, monolith_url: str | None, problems: list[str]) -> dict[str, dict]:
    if not isinstance(raw, dict):
        problems.append("services: expected a mapping of name to service")
        return {}
    raw = dict(raw)
    if MONOLITH not in raw:
        if monolith_url is None:
            problems.append("service 'monolith': missing")
        else:
            raw[MONOLITH] = {"url": monolith_url}
    services: dict[str, dict] = {}
    for name, spec in raw.items():
        where = f"service {name!r}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        if not NAME.match(str(name)):
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
            if (problem := url_problem(url)) is not None:
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
        interval = number(
            spec.get("health_interval", 5.0), f"{where}: 'health_interval'", problems, low=0.1
        )
        services[str(name)] = dict(
            name=str(name),
            instances=tuple(str(u).rstrip("/") for u in instances if isinstance(u, str)),
            discovery=bool(discovery),
            balance=str(balance),
            health_path=health_path,
            health_interval=interval,
            preserve_host=bool(spec.get("preserve_host", False)),
        )
    return services


def rate_limits_check(raw: Any, problems: list[str]) -> dict[str, dict]:
    if not isinstance(raw, dict):
        problems.append("rate_limits: expected a mapping of group to {rate, burst}")
        return {}
    limits = {}
    for name, spec in raw.items():
        where = f"rate limit {name!r}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a mapping with 'rate' and 'burst'")
            continue
        rate = number(spec.get("rate"), f"{where}: 'rate'", problems, low=0.001)
        burst = number(
            spec.get("burst", max(1, int(rate or 1))), f"{where}: 'burst'", problems, low=1
        )
        limits[str(name)] = {"rate": rate, "burst": int(burst)}
    return limits


def number(
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


def route_check(
    raw: Any,
    index: int,
    services: dict[str, Any],
    rate_limits: dict[str, Any],
    problems: list[str],
) -> dict[str, Any] | None:
    """Return the fields of route entry `raw` (number `index`), or None; collect problems."""
    if not isinstance(raw, dict):
        problems.append(f"route #{index}: expected a mapping, got {type(raw).__name__}")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(
            f"route #{index}: 'name' must be 1-64 letters, digits or _.:-, got {name!r}"
        )
        name = f"#{index}"
    where = f"route {name!r}"
    extra = set(raw) - {
        "name", "mode", "service", "prefix", "path", "methods", "headers", "timeout",
        "connect_timeout", "retries", "fallback", "rate_limit", "compare", "record", "redact",
        "identity",
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
    timeout = number(
        raw.get("timeout", 30.0), f"{where}: 'timeout'", problems, low=0.001, high=3600
    )
    connect_timeout = number(
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
    record = number(raw.get("record", 0.0), f"{where}: 'record'", problems, low=0.0, high=1.0)
    redact_headers, redact_fields = _redact(raw.get("redact") or {}, where, problems)
    identity = raw.get("identity", False)
    if not isinstance(identity, bool):
        problems.append(f"{where}: 'identity' must be true or false, got {identity!r}")
    return dict(
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
        identity=identity is True,
        regex=regex,
    )


def _compile(path: str, where: str, problems: list[str]) -> re.Pattern | None:
    pieces, last = [], 0
    names: set[str] = set()
    for found in PARAM.finditer(path):
        pieces.append(re.escape(path[last : found.start()]))
        if found.group(1) in names:
            problems.append(f"{where}: parameter {{{found.group(1)}}} used twice")
        names.add(found.group(1))
        pieces.append(f"(?P<{found.group(1)}>[^/]+)")
        last = found.end()
    pieces.append(re.escape(path[last:]))
    rest = PARAM.sub("", path)
    if "{" in rest or "}" in rest:
        problems.append(f"{where}: malformed parameter in 'path' {path!r}")
        return None
    return re.compile("^" + "".join(pieces) + "$")


def _compare(raw: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: 'compare' must be a mapping")
        return {}
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
    sample = number(
        raw.get("noise_sample", 0.1),
        f"{where}: compare 'noise_sample'",
        problems,
        low=0.0,
        high=1.0,
    )
    return dict(
        ignore=lists["ignore"],
        unordered=lists["unordered"],
        normalize_numbers=bool(raw.get("normalize_numbers", True)),
        status=bool(raw.get("status", True)),
        headers=lists["headers"],
        noise_sample=sample,
        settle_ms=int(
            number(
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
