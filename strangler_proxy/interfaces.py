"""The small interfaces the request pipeline's parts depend on, instead of on one another.

Each part receives what it needs as one of these (or as a plain object of a lower layer: the
metrics, a recorder), never the gateway that wires them (gateway.py):

| interface | what it offers | who offers it | who uses it |
|---|---|---|---|
| ``TableSource`` | the table in force | tables.TableStore | fast path, pipeline, forwarding |
| ``Upstreams`` | a buffered request to a service | forwarding.Forwarder | shadow, overview |
| ``Mirror`` | mirror an answered request | shadow.ShadowRunner | forwarding, fast path |

The front server's own interface, ``server.RequestHandler``, is the pipeline; the admin API's,
``admin_data.AdminSources``, is assembled by the gateway.
"""

from __future__ import annotations

from typing import Any, Protocol

from .routes import Route, RouteTable

#: An upstream's answer as the shadow comparison reads it: status, lowercased headers, body.
Answer3 = tuple[int, dict[str, str], bytes]


class TableSource(Protocol):
    """Where the route table in force is read (each request reads it once)."""

    table: RouteTable


class Upstreams(Protocol):
    """Send a buffered request to a service's instances."""

    async def fetch(
        self, *, service: str, method: str, target: str, headers: Any, route: Route
    ) -> tuple[Answer3, str]:
        """Return ``((status, headers, body), instance URL)``; raise UpstreamFailed."""


class Mirror(Protocol):
    """Mirror a request the monolith answered to a route's candidate, and compare."""

    def submit(
        self, *, route: Route, method: str, target: str, headers: Any, primary: Answer3
    ) -> str:
        """Start a mirror, or skip it; return the outcome for the access log."""
