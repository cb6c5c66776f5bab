"""What the admin API and the dashboard read and change: one interface, and the figures from it.

``AdminSources`` is every source the admin API uses, each behind a small interface; the gateway
assembles it (gateway.py), tests and another front end (a dashboard of its own) can assemble
their own. The selectors below turn it into the figures a dashboard shows, as plain data:

* ``routes_figures``: per route, its mode, service, where it matches, its requests per upstream
  and each upstream's share of them (the traffic split);
* ``upstreams_figures``: per upstream service, requests, 5xx answers, upstream errors by kind,
  mean and p50/p99 latency (a histogram's bucket bound: an upper bound), its instances;
* ``shadow_figures``: per shadowed route, compared, diffs, errors, skipped, the diff rate;
* ``diffs_recent``: the latest stored diffs, newest first;
* ``dashboard_figures``: all four and the table version (``GET /_strangler/dashboard``).

Figures are every worker's with ``--workers`` (sharing.SharedMetrics), diffs this worker's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .metrics import BUCKETS, Metrics
from .routes import RouteTable


class TableAdmin(Protocol):
    """The table store (tables.TableStore): the table in force, its log, how it changes."""

    table: RouteTable
    changes: Iterable[dict[str, Any]]

    def swap(self, *, new: RouteTable, actor: str, reason: str, claimed_actor: str | None = None,
             client: str | None = None) -> RouteTable: ...  # fmt: skip

    def reload(self, *, actor: str, claimed_actor: str | None = None,
               client: str | None = None) -> RouteTable: ...  # fmt: skip

    def sync(self) -> bool: ...


class AdminTokens(Protocol):
    """Who holds an admin token (compared in constant time)."""

    configured: bool

    def holder(self, authorization: bytes | None) -> str | None: ...


class Registry(Protocol):
    """The service registry (discovery.py)."""

    backend: str

    async def instances(self, *, service: str) -> list[str]: ...
    async def snapshot(self) -> dict[str, list[str]]: ...
    async def register(self, *, service: str, url: str, ttl: float) -> None: ...
    async def deregister(self, *, service: str, url: str) -> None: ...


class Shadows(Protocol):
    """The shadow comparisons' stored diffs and learned noise (shadow.ShadowRunner)."""

    store: Any  # shadow.DiffStore: list(route), get(id)
    noise: dict[str, set[str]]


class Recordings(Protocol):
    """Recorded exchanges (recording.Recorder)."""

    recorded: Any
    lines: Any

    def jsonl(self, route: str | None = None) -> str: ...
    def clear(self) -> int: ...


@dataclass(frozen=True, slots=True)
class AdminSources:
    """Every source of the admin API."""

    tables: TableAdmin
    tokens: AdminTokens
    figures: Callable[[], tuple[Metrics, dict[str, str]]]  # every worker's, and breaker states
    instances: Callable[[], dict[str, list[dict]]]  # each pool's instances, with their state
    registry: Registry
    shadow: Shadows
    recorder: Recordings
    monolith_url: str


def _quantile(counts: list[int], share: float) -> float | None:
    """Return the upper bound of the bucket holding the `share` quantile (None: no data)."""
    total = sum(counts)
    if not total:
        return None
    running = 0
    for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
        running += count
        if running >= share * total:
            return bound
    return None


def routes_figures(table: RouteTable, metrics: Metrics) -> list[dict[str, Any]]:
    """Return each route's mode and service and how its requests split between upstreams."""
    served: dict[str, dict[str, int]] = {}
    for (route, upstream), hist in metrics.latency.items():
        served.setdefault(route, {})[upstream] = sum(hist.classes)
    out = []
    for route in table.routes:
        split = served.get(route.name, {})
        total = sum(split.values())
        out.append(
            {
                "name": route.name, "mode": route.mode, "service": route.service,
                "match": route.path or f"{route.prefix}*", "requests": total,
                "split": {
                    upstream: {"requests": count, "share": count / total}
                    for upstream, count in sorted(split.items())
                },
            }
        )  # fmt: skip
    return out


def upstreams_figures(
    metrics: Metrics, instances: dict[str, list[dict]]
) -> dict[str, dict[str, Any]]:
    """Return each upstream's requests, errors and latency, and its instances."""
    out: dict[str, dict[str, Any]] = {}
    counts: dict[str, list[int]] = {}
    for (_, upstream), hist in metrics.latency.items():
        entry = out.setdefault(
            upstream, {"requests": 0, "answers_5xx": 0, "errors": {}, "seconds_sum": 0.0}
        )
        entry["requests"] += sum(hist.classes)
        entry["answers_5xx"] += hist.classes[4]
        entry["seconds_sum"] += hist.sum
        merged = counts.setdefault(upstream, [0] * len(hist.counts))
        counts[upstream] = [a + b for a, b in zip(merged, hist.counts, strict=True)]
    for (_, upstream, kind), value in metrics.errors.items():
        entry = out.setdefault(
            upstream, {"requests": 0, "answers_5xx": 0, "errors": {}, "seconds_sum": 0.0}
        )
        entry["errors"][kind] = entry["errors"].get(kind, 0) + value
    for upstream, entry in out.items():
        seconds = entry.pop("seconds_sum")
        entry["mean_ms"] = seconds * 1000 / entry["requests"] if entry["requests"] else None
        for name, share in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            bound = _quantile(counts.get(upstream, []), share)
            entry[name] = None if bound is None or bound == float("inf") else bound * 1000
        entry["instances"] = instances.get(upstream, [])
    for service, listed in instances.items():
        out.setdefault(
            service, {"requests": 0, "answers_5xx": 0, "errors": {}, "mean_ms": None,
                      "p50_ms": None, "p99_ms": None, "instances": listed},
        )  # fmt: skip
    return out


def shadow_figures(metrics: Metrics, route: str | None = None) -> dict[str, dict[str, Any]]:
    """Return each shadowed route's comparisons (or `route`'s only)."""
    shadow = metrics.shadow
    return {
        r: {
            "compared": shadow.get((r, "same"), 0) + shadow.get((r, "diff"), 0),
            "diffs": shadow.get((r, "diff"), 0),
            "errors": shadow.get((r, "error"), 0),
            "skipped": shadow.get((r, "skipped"), 0),
            "diff_rate": metrics.diff_rate(r),
        }
        for r in sorted({r for r, _ in shadow})
        if route is None or r == route
    }


def diffs_recent(
    shadows: Shadows, route: str | None = None, *, limit: int | None = None,
    newest_first: bool = True,
) -> list[dict[str, Any]]:  # fmt: skip
    """Return the stored diffs (`route`'s, or every route's) as summaries, newest first."""
    diffs = shadows.store.list(route)
    if newest_first:
        diffs = sorted(diffs, key=lambda d: d.id, reverse=True)
    return [
        {"id": d.id, "route": d.route, "at": d.at, "method": d.method, "target": d.target,
         "paths": d.paths}
        for d in diffs[:limit]
    ]  # fmt: skip


def dashboard_figures(sources: AdminSources, *, diffs: int = 20) -> dict[str, Any]:
    """Return everything a dashboard shows, in one read."""
    metrics, _ = sources.figures()
    table = sources.tables.table
    return {
        "table_version": table.version,
        "routes": routes_figures(table, metrics),
        "upstreams": upstreams_figures(metrics, sources.instances()),
        "shadow": shadow_figures(metrics),
        "diffs": diffs_recent(sources.shadow, limit=diffs),
    }
