"""Prometheus metrics kept in plain dicts, rendered as text exposition format 0.0.4.

Hand-rolled rather than prometheus_client because it sits on the hot path: one dict lookup and a
few integer additions per request, no locks (the proxy is one event loop per process).

Families (labels): ``strangler_requests_total`` (route, upstream, code class),
``strangler_request_seconds`` histogram (route, upstream), ``strangler_upstream_errors_total``
(route, upstream, kind), ``strangler_fallbacks_total`` (route, from), ``strangler_retries_total``
(route), ``strangler_rate_limited_total`` (route), ``strangler_shadow_total`` (route, outcome:
same/diff/error/skipped), ``strangler_shadow_diff_rate`` (route), ``strangler_breaker_open``
(upstream instance).

With ``--workers N`` each worker counts its own requests; ``snapshot()`` and ``merged()`` let a
scrape answer with the sum over every worker (strangler_proxy/sharing.py, ``SharedMetrics``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_CLASS_OF = (0, 0, 1, 2, 3, 4, 4, 4, 4, 4)  # status // 100 -> index in _CLASSES (clamped)


class _Histogram:
    """Latency buckets of one (route, upstream), and its answers by status class."""

    __slots__ = ("classes", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.classes = [0] * len(_CLASSES)  # 1xx .. 5xx

    @property
    def count(self) -> int:
        return sum(self.counts)


class Metrics:
    """Counters and latency histograms per route and upstream."""

    def __init__(self) -> None:
        self.latency: dict[tuple[str, str], _Histogram] = {}
        self.errors: dict[tuple[str, str, str], int] = defaultdict(int)
        self.fallbacks: dict[tuple[str, str], int] = defaultdict(int)
        self.retries: dict[str, int] = defaultdict(int)
        self.rate_limited: dict[str, int] = defaultdict(int)
        self.shadow: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, route: str, upstream: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (route, upstream)
        hist = self.latency.get(key)
        if hist is None:
            hist = self.latency[key] = _Histogram()
        hist.counts[bisect_left(BUCKETS, seconds)] += 1
        hist.sum += seconds
        hist.classes[_CLASS_OF[status // 100] if 0 <= status < 1000 else 4] += 1

    # -- across worker processes
    _LABELS = {"errors": 3, "fallbacks": 2, "retries": 1, "rate_limited": 1, "shadow": 2}
    _COUNTERS = tuple(_LABELS)

    def snapshot(self) -> dict:
        """Return every figure as JSON-ready data (what one worker publishes for the others)."""
        data: dict = {
            "latency": [
                [route, upstream, hist.counts, hist.sum, hist.classes]
                for (route, upstream), hist in self.latency.items()
            ]
        }
        for family in self._COUNTERS:
            data[family] = [
                [*(key if isinstance(key, tuple) else (key,)), value]
                for key, value in getattr(self, family).items()
            ]
        return data

    @classmethod
    def from_snapshot(cls, data: dict) -> Metrics:
        """Return the figures of another worker's `snapshot()`; raise ValueError, naming what
        is wrong, if any part of it is malformed (it is read from a file another process
        writes, so it is taken whole or not at all)."""
        out = cls()
        if not isinstance(data, dict):
            raise ValueError("a snapshot must be an object")
        try:
            for entry in _entries(data, "latency"):
                route, upstream, counts, total, classes = entry
                if len(counts) != len(BUCKETS) + 1 or len(classes) != len(_CLASSES):
                    raise ValueError("latency: wrong number of buckets or status classes")
                hist = out.latency.setdefault((str(route), str(upstream)), _Histogram())
                hist.counts = [a + _count(n) for a, n in zip(hist.counts, counts, strict=True)]
                hist.classes = [a + _count(n) for a, n in zip(hist.classes, classes, strict=True)]
                hist.sum += float(total)
                if not math.isfinite(hist.sum):
                    raise ValueError("latency: the sum is not a finite number")
            for family in cls._COUNTERS:
                counter = getattr(out, family)
                width = cls._LABELS[family]
                for entry in _entries(data, family):
                    if len(entry) != width + 1:
                        raise ValueError(f"{family}: an entry of the wrong length")
                    labels = tuple(str(label) for label in entry[:width])
                    counter[labels[0] if width == 1 else labels] += _count(entry[-1])
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"malformed metrics snapshot: {exc}") from None
        return out

    def add(self, other: Metrics) -> None:
        """Add `other`'s figures to these."""
        for key, theirs in other.latency.items():
            hist = self.latency.setdefault(key, _Histogram())
            hist.counts = [a + b for a, b in zip(hist.counts, theirs.counts, strict=True)]
            hist.classes = [a + b for a, b in zip(hist.classes, theirs.classes, strict=True)]
            hist.sum += theirs.sum
        for family in self._COUNTERS:
            counter = getattr(self, family)
            for key, value in getattr(other, family).items():
                counter[key] += value

    @classmethod
    def merged(cls, own: Metrics, others: list[Metrics]) -> Metrics:
        """Return new figures: `own` plus each of `others`."""
        out = cls()
        out.add(own)
        for other in others:
            out.add(other)
        return out

    @property
    def requests(self) -> dict[tuple[str, str, str], int]:
        """Requests answered per (route, upstream, status class), as they were counted."""
        return {
            (route, upstream, code): count
            for (route, upstream), hist in self.latency.items()
            for code, count in zip(_CLASSES, hist.classes, strict=True)
            if count
        }

    def diff_rate(self, route: str) -> float:
        same = self.shadow.get((route, "same"), 0)
        diff = self.shadow.get((route, "diff"), 0)
        return diff / (same + diff) if same + diff else 0.0

    def render(self, breakers: dict[str, str] | None = None) -> str:
        """Return every metric in Prometheus text format."""
        out: list[str] = []

        def family(name: str, kind: str, helptext: str) -> None:
            out.append(f"# HELP {name} {helptext}")
            out.append(f"# TYPE {name} {kind}")

        family(
            "strangler_requests_total",
            "counter",
            "Requests answered, by route, upstream and status class.",
        )
        for (route, upstream, code), value in sorted(self.requests.items()):
            out.append(
                f'strangler_requests_total{{route="{route}",upstream="{upstream}",'
                f'code="{code}"}} {value}'
            )
        family("strangler_request_seconds", "histogram", "Time to the last response byte.")
        for (route, upstream), hist in sorted(self.latency.items()):
            labels = f'route="{route}",upstream="{upstream}"'
            running = 0
            for bound, count in zip(BUCKETS, hist.counts, strict=False):
                running += count
                out.append(f'strangler_request_seconds_bucket{{{labels},le="{bound}"}} {running}')
            out.append(f'strangler_request_seconds_bucket{{{labels},le="+Inf"}} {hist.count}')
            out.append(f"strangler_request_seconds_sum{{{labels}}} {hist.sum:.6f}")
            out.append(f"strangler_request_seconds_count{{{labels}}} {hist.count}")
        family("strangler_upstream_errors_total", "counter", "Failed upstream attempts, by kind.")
        for (route, upstream, kind), value in sorted(self.errors.items()):
            out.append(
                f'strangler_upstream_errors_total{{route="{route}",upstream="{upstream}",'
                f'kind="{kind}"}} {value}'
            )
        family(
            "strangler_fallbacks_total",
            "counter",
            "Requests served by the monolith after the candidate failed.",
        )
        for (route, source), value in sorted(self.fallbacks.items()):
            out.append(f'strangler_fallbacks_total{{route="{route}",from="{source}"}} {value}')
        family("strangler_retries_total", "counter", "Retried upstream attempts.")
        for route, value in sorted(self.retries.items()):
            out.append(f'strangler_retries_total{{route="{route}"}} {value}')
        family("strangler_rate_limited_total", "counter", "Requests refused with 429.")
        for route, value in sorted(self.rate_limited.items()):
            out.append(f'strangler_rate_limited_total{{route="{route}"}} {value}')
        family("strangler_shadow_total", "counter", "Shadow comparisons, by outcome.")
        for (route, outcome), value in sorted(self.shadow.items()):
            out.append(f'strangler_shadow_total{{route="{route}",outcome="{outcome}"}} {value}')
        family(
            "strangler_shadow_diff_rate",
            "gauge",
            "Share of compared shadow requests that differed.",
        )
        for route in sorted({r for r, _ in self.shadow}):
            out.append(f'strangler_shadow_diff_rate{{route="{route}"}} {self.diff_rate(route):.6f}')
        family(
            "strangler_breaker_open",
            "gauge",
            "1 when an upstream instance's circuit is not closed.",
        )
        for url, state in sorted((breakers or {}).items()):
            out.append(
                f'strangler_breaker_open{{upstream="{url}",state="{state}"}} '
                f"{int(state != 'closed')}"
            )
        return "\n".join(out) + "\n"


def _entries(data: dict, family: str) -> list[list]:
    entries = data.get(family, [])
    if not isinstance(entries, list) or not all(isinstance(e, list) for e in entries):
        raise ValueError(f"{family}: not a list of entries")
    return entries


def _count(value) -> int:
    """A counter's value from JSON: a whole number of at least 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value
