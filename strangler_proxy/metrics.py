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
    _COUNTERS = ("errors", "fallbacks", "retries", "rate_limited", "shadow")

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

    def add(self, data: dict) -> None:
        """Add another worker's `snapshot()` to these figures (entries of the wrong shape are
        skipped: a snapshot is read from a file another process writes)."""
        for entry in data.get("latency") or ():
            try:
                route, upstream, counts, total, classes = entry
                if len(counts) != len(BUCKETS) + 1 or len(classes) != len(_CLASSES):
                    continue
                counts, classes = [int(n) for n in counts], [int(n) for n in classes]
                total = float(total)
                key = (str(route), str(upstream))
            except (TypeError, ValueError):
                continue
            hist = self.latency.get(key)
            if hist is None:
                hist = self.latency[key] = _Histogram()
            hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
            hist.classes = [a + b for a, b in zip(hist.classes, classes, strict=True)]
            hist.sum += total
        for family in self._COUNTERS:
            counter = getattr(self, family)
            width = 1 if family in ("retries", "rate_limited") else 3 if family == "errors" else 2
            for entry in data.get(family) or ():
                if not isinstance(entry, list) or len(entry) != width + 1:
                    continue
                key = entry[0] if width == 1 else tuple(entry[:width])
                try:
                    value = int(entry[-1])
                    counter[key] += value
                except (TypeError, ValueError):
                    continue

    @classmethod
    def merged(cls, own: Metrics, others: list[dict]) -> Metrics:
        """Return new figures: `own` plus every snapshot in `others`."""
        out = cls()
        out.add(own.snapshot())
        for data in others:
            out.add(data)
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
