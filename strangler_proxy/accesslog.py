"""Count every finished request, and write its access-log line (one JSON object per line).

Lines are buffered and written together (every 50 ms by the gateway's upkeep, at 256 lines, and
on close): one write per batch, not per request. Every field but the path comes from a
validated alphabet (request ids, route and service names, methods, addresses), so only the path
is JSON-escaped; ``ts`` is formatted once per millisecond.
"""

from __future__ import annotations

import json
import sys
import time
from json.encoder import encode_basestring_ascii as _json_string

from .metrics import Metrics


class AccessLog:
    """The metrics and the access log of one process."""

    def __init__(self, metrics: Metrics, *, enabled: bool):
        self.metrics, self.enabled = metrics, enabled
        self._lines: list[str] = []
        self._tick = -1  # the millisecond _ts shows
        self._ts = ""

    def finish(
        self, req, status: int, rid: str, route, upstream: str, started: float,
        fallback: str | None = None, shadow: str | None = None,
    ) -> None:  # fmt: skip
        """Count request `req` (a server.Request), answered `status` by `upstream`, and log it."""
        elapsed = time.perf_counter() - started
        route_name = route.name if route is not None else "-"
        self.metrics.observe(route_name, upstream, status, elapsed)
        if not self.enabled:
            return
        tick = round(time.time() * 1000)
        if tick != self._tick:  # the same "ts" for every line of a millisecond
            self._tick = tick
            self._ts = f"{tick // 1000}.{tick % 1000:03d}"
        line = (
            f'{{"ts": {self._ts}, "request_id": "{rid}", "method": "{req.method}", '
            f'"path": {_json_string(req.path)}, "route": "{route_name}", '
            f'"mode": "{route.mode if route else "-"}", "upstream": "{upstream}", '
            f'"status": {status}, "ms": {elapsed * 1000:.3f}, "client": "{req.remote}"'
        )
        if fallback:
            line += f', "fallback": {json.dumps(fallback)}'
        if shadow:
            line += f', "shadow": "{shadow}"'
        lines = self._lines
        lines.append(line + "}\n")
        if len(lines) >= 256:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines."""
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            sys.stdout.write(text)
