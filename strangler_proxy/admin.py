"""The admin API under ``/_strangler/``: routes, changes, registry, diffs, metrics, dashboard.

| method and path | what |
|---|---|
| GET  /_strangler/ | the dashboard page (a shell without data: it asks for the token) |
| GET  /_strangler/healthz | the proxy is alive |
| GET  /_strangler/routes | the route table in force (with its version) |
| PUT  /_strangler/routes | replace the whole table (JSON body shaped like the file) |
| GET  /_strangler/routes/{name} | one route |
| PATCH /_strangler/routes/{name} | change fields of one route, e.g. ``{"mode": "shadow"}`` |
| POST /_strangler/reload | re-read the route file |
| GET  /_strangler/changes | who changed the table, when, from what to what |
| GET  /_strangler/metrics | Prometheus text |
| GET  /_strangler/registry | registered and static instances with health and breaker state |
| POST /_strangler/registry | register or heartbeat ``{"service", "url", "ttl"}`` |
| DELETE /_strangler/registry | deregister ``{"service", "url"}`` |
| GET  /_strangler/diffs[?route=R] | stored diffs and the diff rate per route |
| GET  /_strangler/diffs/{id} | one diff: request, both answers, differing paths |
| GET  /_strangler/diffs/{id}/curl | curl commands that replay it against each side |
| GET  /_strangler/recordings[?route=R] | recorded exchanges as JSON Lines (compare --replay) |
| DELETE /_strangler/recordings | forget the recorded exchanges |

The request is the front server's (``server.Request``), which offers the parts of aiohttp's
request read here: ``method``, ``path``, ``headers``, ``query``, ``remote``, ``read()``.

Every endpoint but ``healthz`` and the dashboard's shell needs ``Authorization: Bearer <token>``,
reads included (diffs and recordings hold user data): the default token is
``STRANGLER_ADMIN_TOKEN``, else ``$STRANGLER_VAR_DIR/admin-token`` (made up by the proxy or the
runner), and more named tokens may sit in ``$STRANGLER_VAR_DIR/admin-tokens/<holder>``. A proxy
with no token answers every such call 401 (closed, never open). Tokens are compared in constant
time. Writes (anything but GET and HEAD) take ``Content-Type: application/json`` only (415
otherwise), so a cross-site form or ``text/plain`` POST is refused even before its token is
missing. The change log records the token's holder as ``who``; an ``X-Strangler-Actor`` header
is kept as ``claimed_actor``, never trusted.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import BodyTimeout
from .routes import RouteTableError, table_from_dict

if TYPE_CHECKING:
    from .gateway import Gateway

PREFIX = "/_strangler"


def _json(data: Any, status: int = 200) -> web.Response:
    resp = web.Response(
        status=status, text=json.dumps(data, indent=1, default=str), content_type="application/json"
    )
    resp.headers["X-Strangler-Upstream"] = "proxy"
    return resp


def _error(status: int, code: str, detail: str, fields: dict | None = None) -> web.Response:
    return _json({"error": code, "detail": detail, "fields": fields or {}}, status)


async def _body(request: web.BaseRequest) -> dict:
    try:
        data = json.loads(await request.read() or b"{}")
    except (ValueError, ConnectionError, BodyTimeout) as exc:
        raise _Refused(_error(400, "invalid_json", f"The body is not JSON: {exc}.")) from None
    if not isinstance(data, dict):
        raise _Refused(
            _error(
                400, "invalid_json", f"The body must be a JSON object, got {type(data).__name__}."
            )
        )
    return data


class _Refused(Exception):
    def __init__(self, response: web.Response):
        self.response = response


#: What answers without a token: the liveness probe, and the dashboard's shell (no data in it).
_OPEN = {("GET", ""), ("HEAD", ""), ("GET", "healthz"), ("HEAD", "healthz")}


class _Actor:
    """Who makes an admin write: the token's holder, what the client claims, its address."""

    def __init__(self, holder: str, request):
        self.holder = holder
        claimed = request.headers.get("X-Strangler-Actor")
        self.claimed = claimed[:200] if claimed else None
        self.client = request.remote

    def fields(self) -> dict:
        return {"actor": self.holder, "claimed_actor": self.claimed, "client": self.client}


def _authorize(gateway: Gateway, request, method: str, parts: list[str]) -> str | None:
    """Return the holder of the request's admin token (None for an open endpoint), or refuse."""
    if (method, "/".join(parts)) in _OPEN:
        return None
    holder = gateway.admin_holder(request.authorization)
    if holder is None:
        detail = (
            "The admin API needs 'Authorization: Bearer <token>': STRANGLER_ADMIN_TOKEN, else "
            "the file admin-token in the proxy's STRANGLER_VAR_DIR."
            if gateway.admin_tokens
            else "This proxy has no admin token configured: every admin call is refused."
        )
        response = _error(401, "not_authenticated", detail)
        response.headers["WWW-Authenticate"] = 'Bearer realm="strangler"'
        raise _Refused(response)
    if method not in {"GET", "HEAD"}:
        kind = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if kind != "application/json":
            raise _Refused(
                _error(
                    415,
                    "unsupported_media_type",
                    f"Admin writes take Content-Type: application/json, got {kind or 'none'!r}.",
                    {"Content-Type": "must be application/json"},
                )
            )
    return holder


async def handle(gateway: Gateway, request: web.BaseRequest, path: str) -> web.StreamResponse:
    """Serve one admin request."""
    parts = [p for p in path[len(PREFIX) :].split("/") if p]
    method = request.method
    try:
        holder = _authorize(gateway, request, method, parts)
        actor = _Actor(holder, request) if holder is not None else None
        if method not in {"GET", "HEAD"}:
            gateway.table_sync()  # other workers' changes first: this one builds on them
        return await _dispatch(gateway, request, method, parts, actor)
    except _Refused as refused:
        return refused.response


async def _dispatch(
    gateway: Gateway, request: web.BaseRequest, method: str, parts: list[str], actor: _Actor | None
) -> web.StreamResponse:
    head = parts[0] if parts else ""
    if not parts and method == "GET":
        page = (
            resources.files("strangler_proxy")
            .joinpath("dashboard.html")
            .read_text(encoding="utf-8")
        )
        return web.Response(
            text=page, content_type="text/html", headers={"X-Strangler-Upstream": "proxy"}
        )
    if head == "healthz" and method == "GET":
        return _json({"status": "ok", "table_version": gateway.table.version, "pid": os.getpid()})
    if head == "metrics" and method == "GET":
        metrics, breakers = gateway.metrics_view()  # every worker's, with --workers
        resp = web.Response(text=metrics.render(breakers), content_type="text/plain")
        resp.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
        return resp
    if head == "routes":
        return await _routes(gateway, request, method, parts[1:], actor)
    if head == "reload" and method == "POST":
        try:
            gateway.table_reload(**actor.fields())
        except RouteTableError as exc:
            return _error(400, "invalid_route_table", str(exc), {"routes": exc.problems})
        return _json(gateway.table.as_dict())
    if head == "changes" and method == "GET":
        return _json({"changes": list(gateway.changes)})
    if head == "registry":
        return await _registry(gateway, request, method, parts[1:])
    if head == "diffs" and method == "GET":
        return _diffs(gateway, request, parts[1:])
    if head == "recordings":
        return _recordings(gateway, request, method)
    if head == "noise" and method == "GET":
        return _json({route: sorted(paths) for route, paths in gateway.shadow.noise.items()})
    return _error(404, "not_found", f"No admin endpoint {method} {request.path}.")


async def _routes(gateway: Gateway, request, method: str, rest: list[str], actor: _Actor):
    table = gateway.table
    if not rest:
        if method == "GET":
            return _json(table.as_dict())
        if method == "PUT":
            data = await _body(request)
            try:
                new = table_from_dict(data, monolith_url=gateway.config.monolith_url)
            except RouteTableError as exc:
                return _error(400, "invalid_route_table", str(exc), {"routes": exc.problems})
            gateway.table_swap(new=new, reason="replace table", **actor.fields())
            return _json(gateway.table.as_dict())
        return _error(405, "method_not_allowed", f"{method} is not allowed on routes.")
    name = rest[0]
    route = table.route(name)
    if route is None:
        return _error(
            404, "not_found", f"No route named {name!r}.", {"route": f"unknown route {name!r}"}
        )
    if method == "GET":
        return _json(route.as_dict())
    if method in {"PATCH", "POST"}:
        changes = await _body(request)
        if "name" in changes and changes["name"] != name:
            return _error(
                400, "invalid_route_table", "A route cannot be renamed.", {"name": "cannot change"}
            )
        try:
            new = table.with_route(name, changes)
        except RouteTableError as exc:
            return _error(400, "invalid_route_table", str(exc), {"routes": exc.problems})
        gateway.table_swap(
            new=new, reason=f"set {name} {json.dumps(changes, sort_keys=True)}", **actor.fields()
        )
        return _json(gateway.table.route(name).as_dict())
    return _error(405, "method_not_allowed", f"{method} is not allowed on a route.")


async def _registry(gateway: Gateway, request, method: str, rest: list[str]) -> web.Response:
    registry = gateway.registry
    if method == "GET":
        if rest:
            return _json(
                {"service": rest[0], "instances": await registry.instances(service=rest[0])}
            )
        pools = {
            name: [i.as_dict() for i in pool.instances] for name, pool in gateway.pools.items()
        }
        return _json(
            {"backend": registry.backend, "registered": await registry.snapshot(), "pools": pools}
        )
    data = await _body(request)
    service, url = data.get("service"), data.get("url")
    fields = {}
    if not isinstance(service, str) or not service:
        fields["service"] = "required: the service name"
    if not isinstance(url, str) or not url:
        fields["url"] = "required: the instance's http:// URL"
    ttl = data.get("ttl", 10)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        fields["ttl"] = f"must be a number of seconds, got {ttl!r}"
    if fields:
        return _error(400, "invalid", "The registration is incomplete.", fields)
    try:
        if method == "POST":
            await registry.register(service=service, url=url, ttl=float(ttl))
        elif method == "DELETE":
            await registry.deregister(service=service, url=url)
        else:
            return _error(405, "method_not_allowed", f"{method} is not allowed on the registry.")
    except ValueError as exc:
        return _error(400, "invalid", str(exc), {"url": str(exc)})
    return _json({"service": service, "instances": await registry.instances(service=service)})


def _diffs(gateway: Gateway, request, rest: list[str]) -> web.Response:
    store = gateway.shadow.store
    if not rest:
        metrics, _ = gateway.metrics_view()  # rates over every worker; stored diffs: this one's
        route = request.query.get("route")
        diffs = store.list(route)
        routes = sorted({r for r, _ in metrics.shadow})
        rates = {
            r: {
                "compared": metrics.shadow.get((r, "same"), 0) + metrics.shadow.get((r, "diff"), 0),
                "diffs": metrics.shadow.get((r, "diff"), 0),
                "errors": metrics.shadow.get((r, "error"), 0),
                "skipped": metrics.shadow.get((r, "skipped"), 0),
                "diff_rate": metrics.diff_rate(r),
            }
            for r in routes
            if route is None or r == route
        }
        summary = [
            {
                "id": d.id,
                "route": d.route,
                "at": d.at,
                "method": d.method,
                "target": d.target,
                "paths": d.paths,
            }
            for d in diffs
        ]
        return _json({"routes": rates, "diffs": summary})
    try:
        diff_id = int(rest[0])
    except ValueError:
        return _error(
            400,
            "invalid",
            f"Diff id must be an integer, got {rest[0]!r}.",
            {"id": "not an integer"},
        )
    diff = store.get(diff_id)
    if diff is None:
        return _error(404, "not_found", f"No diff {diff_id} (only the latest per route are kept).")
    if len(rest) > 1 and rest[1] == "curl":
        return _json(diff.curl())
    return _json(diff.as_dict())


def _recordings(gateway: Gateway, request, method: str) -> web.Response:
    recorder = gateway.recorder
    if method == "GET":
        route = request.query.get("route") or None
        if (
            route is not None
            and gateway.table.route(route) is None
            and route not in recorder.recorded
        ):
            return _error(
                404,
                "not_found",
                f"No route named {route!r}.",
                {"route": f"unknown route {route!r}"},
            )
        resp = web.Response(text=recorder.jsonl(route), content_type="application/x-ndjson")
        resp.headers["X-Strangler-Upstream"] = "proxy"
        resp.headers["X-Strangler-Recorded"] = str(
            sum(1 for name, _ in recorder.lines if route is None or name == route)
        )
        return resp
    if method == "DELETE":
        return _json({"cleared": recorder.clear()})
    return _error(405, "method_not_allowed", f"{method} is not allowed on recordings.")
