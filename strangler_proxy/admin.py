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
| GET  /_strangler/dashboard | the dashboard's figures in one read (admin_data.dashboard_figures) |

The request is the front server's (``server.Request``): ``method``, ``path``, ``headers``,
``query``, ``remote``, ``authorization``, ``read()``. Everything it reads or changes comes
through ``admin_data.AdminSources``; it answers ``answers.Answer`` objects.

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

import hmac
import json
import os
from importlib import resources

from .admin_data import AdminSources, dashboard_figures, diffs_recent, shadow_figures
from .answers import Answer, error_answer, json_answer
from .errors import BodyTimeout, RouteTableError
from .headers import ACTOR, UPSTREAM
from .routes import table_from_dict

PREFIX = "/_strangler"


class AdminTokens:
    """The admin tokens of one proxy, each with the holder the change log records."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self._tokens = tuple((holder, token.encode()) for holder, token in tokens)
        self.configured = bool(self._tokens)

    def holder(self, authorization: bytes | None) -> str | None:
        """Return who holds the token in `authorization` (``Bearer <token>``), or None.

        Every token is compared in constant time, whichever matches.
        """
        if authorization is None or not self._tokens:
            return None
        scheme, _, given = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        given = given.strip()
        holder = None
        for name, token in self._tokens:
            if hmac.compare_digest(given, token) and holder is None:
                holder = name
        return holder


class _Refused(Exception):
    def __init__(self, answer: Answer):
        self.answer = answer


async def _body(request) -> dict:
    try:
        data = json.loads(await request.read() or b"{}")
    except (ValueError, ConnectionError, BodyTimeout) as exc:
        raise _Refused(error_answer(400, "invalid_json", f"The body is not JSON: {exc}.")) from None
    if not isinstance(data, dict):
        detail = f"The body must be a JSON object, got {type(data).__name__}."
        raise _Refused(error_answer(400, "invalid_json", detail))
    return data


#: What answers without a token: the liveness probe, and the dashboard's shell (no data in it).
_OPEN = {("GET", ""), ("HEAD", ""), ("GET", "healthz"), ("HEAD", "healthz")}


class _Actor:
    """Who makes an admin write: the token's holder, what the client claims, its address."""

    def __init__(self, holder: str, request):
        self.holder = holder
        claimed = request.headers.get(ACTOR)
        self.claimed = claimed[:200] if claimed else None
        self.client = request.remote

    def fields(self) -> dict:
        return {"actor": self.holder, "claimed_actor": self.claimed, "client": self.client}


def _table_refused(exc: RouteTableError) -> Answer:
    return error_answer(400, "invalid_route_table", str(exc), {"routes": exc.problems})


class AdminApi:
    """Serve admin requests from `sources`; the pipeline mounts it under ``/_strangler``."""

    def __init__(self, sources: AdminSources):
        self.sources = sources

    async def __call__(self, request, path: str) -> Answer:
        """Serve one admin request."""
        parts = [p for p in path[len(PREFIX) :].split("/") if p]
        method = request.method
        try:
            holder = self._authorize(request, method, parts)
            actor = _Actor(holder, request) if holder is not None else None
            if method not in {"GET", "HEAD"}:
                self.sources.tables.sync()  # other workers' changes first: this builds on them
            return await self._dispatch(request, method, parts, actor)
        except _Refused as refused:
            return refused.answer

    def _authorize(self, request, method: str, parts: list[str]) -> str | None:
        """Return the holder of the request's admin token (None: an open endpoint), or refuse."""
        if (method, "/".join(parts)) in _OPEN:
            return None
        tokens = self.sources.tokens
        holder = tokens.holder(request.authorization)
        if holder is None:
            detail = (
                "The admin API needs 'Authorization: Bearer <token>': STRANGLER_ADMIN_TOKEN, "
                "else the file admin-token in the proxy's STRANGLER_VAR_DIR."
                if tokens.configured
                else "This proxy has no admin token configured: every admin call is refused."
            )
            raise _Refused(
                error_answer(
                    401, "not_authenticated", detail,
                    headers=[("WWW-Authenticate", 'Bearer realm="strangler"')],
                )
            )  # fmt: skip
        if method not in {"GET", "HEAD"}:
            kind = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
            if kind != "application/json":
                raise _Refused(
                    error_answer(
                        415, "unsupported_media_type",
                        f"Admin writes take Content-Type: application/json, got "
                        f"{kind or 'none'!r}.",
                        {"Content-Type": ["must be application/json"]},
                    )
                )  # fmt: skip
        return holder

    async def _dispatch(self, request, method: str, parts: list[str], actor) -> Answer:
        sources = self.sources
        head = parts[0] if parts else ""
        if not parts and method in {"GET", "HEAD"}:
            page = resources.files("strangler_proxy").joinpath("dashboard.html")
            return Answer(
                status=200, body=page.read_bytes(), content_type="text/html; charset=utf-8",
                headers=[(UPSTREAM, "proxy")],
            )  # fmt: skip
        if head == "healthz" and method in {"GET", "HEAD"}:
            table = sources.tables.table
            return json_answer({"status": "ok", "table_version": table.version, "pid": os.getpid()})
        if head == "metrics" and method == "GET":
            metrics, breakers = sources.figures()  # every worker's, with --workers
            return Answer(
                status=200, body=metrics.render(breakers).encode(),
                content_type="text/plain; version=0.0.4; charset=utf-8",
                headers=[(UPSTREAM, "proxy")],
            )  # fmt: skip
        if head == "routes":
            return await self._routes(request, method, parts[1:], actor)
        if head == "reload" and method == "POST":
            try:
                sources.tables.reload(**actor.fields())
            except RouteTableError as exc:
                return _table_refused(exc)
            return json_answer(sources.tables.table.as_dict())
        if head == "changes" and method == "GET":
            return json_answer({"changes": list(sources.tables.changes)})
        if head == "registry":
            return await self._registry(request, method, parts[1:])
        if head == "diffs" and method == "GET":
            return self._diffs(request, parts[1:])
        if head == "recordings":
            return self._recordings(request, method)
        if head == "noise" and method == "GET":
            return json_answer(
                {route: sorted(paths) for route, paths in sources.shadow.noise.items()}
            )
        if head == "dashboard" and method == "GET":
            return json_answer(dashboard_figures(sources))
        return error_answer(404, "not_found", f"No admin endpoint {method} {request.path}.")

    async def _routes(self, request, method: str, rest: list[str], actor) -> Answer:
        tables = self.sources.tables
        table = tables.table
        if not rest:
            if method == "GET":
                return json_answer(table.as_dict())
            if method == "PUT":
                data = await _body(request)
                try:
                    new = table_from_dict(data, monolith_url=self.sources.monolith_url)
                except RouteTableError as exc:
                    return _table_refused(exc)
                tables.swap(new=new, reason="replace table", **actor.fields())
                return json_answer(tables.table.as_dict())
            return error_answer(405, "method_not_allowed", f"{method} is not allowed on routes.")
        name = rest[0]
        route = table.route(name)
        if route is None:
            return error_answer(
                404, "not_found", f"No route named {name!r}.", {"route": [f"unknown: {name!r}"]}
            )
        if method == "GET":
            return json_answer(route.as_dict())
        if method in {"PATCH", "POST"}:
            changes = await _body(request)
            if "name" in changes and changes["name"] != name:
                return error_answer(
                    400, "invalid_route_table", "A route cannot be renamed.",
                    {"name": ["cannot change"]},
                )  # fmt: skip
            try:
                new = table.with_route(name, changes)
            except RouteTableError as exc:
                return _table_refused(exc)
            reason = f"set {name} {json.dumps(changes, sort_keys=True)}"
            tables.swap(new=new, reason=reason, **actor.fields())
            return json_answer(tables.table.route(name).as_dict())
        return error_answer(405, "method_not_allowed", f"{method} is not allowed on a route.")

    async def _registry(self, request, method: str, rest: list[str]) -> Answer:
        registry = self.sources.registry
        if method == "GET":
            if rest:
                instances = await registry.instances(service=rest[0])
                return json_answer({"service": rest[0], "instances": instances})
            return json_answer(
                {"backend": registry.backend, "registered": await registry.snapshot(),
                 "pools": self.sources.instances()}
            )  # fmt: skip
        data = await _body(request)
        service, url = data.get("service"), data.get("url")
        fields: dict[str, list[str]] = {}
        if not isinstance(service, str) or not service:
            fields["service"] = ["required: the service name"]
        if not isinstance(url, str) or not url:
            fields["url"] = ["required: the instance's http:// URL"]
        ttl = data.get("ttl", 10)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            fields["ttl"] = [f"must be a number of seconds, got {ttl!r}"]
        if fields:
            return error_answer(400, "invalid", "The registration is incomplete.", fields)
        try:
            if method == "POST":
                await registry.register(service=service, url=url, ttl=float(ttl))
            elif method == "DELETE":
                await registry.deregister(service=service, url=url)
            else:
                detail = f"{method} is not allowed on the registry."
                return error_answer(405, "method_not_allowed", detail)
        except ValueError as exc:
            return error_answer(400, "invalid", str(exc), {"url": [str(exc)]})
        return json_answer(
            {"service": service, "instances": await registry.instances(service=service)}
        )

    def _diffs(self, request, rest: list[str]) -> Answer:
        shadow = self.sources.shadow
        if not rest:
            metrics, _ = self.sources.figures()  # rates over every worker; diffs: this one's
            route = request.query.get("route")
            return json_answer(
                {"routes": shadow_figures(metrics, route),
                 "diffs": diffs_recent(shadow, route, newest_first=False)}
            )  # fmt: skip
        try:
            diff_id = int(rest[0])
        except ValueError:
            return error_answer(
                400, "invalid", f"Diff id must be an integer, got {rest[0]!r}.",
                {"id": ["not an integer"]},
            )  # fmt: skip
        diff = shadow.store.get(diff_id)
        if diff is None:
            detail = f"No diff {diff_id} (only the latest per route are kept)."
            return error_answer(404, "not_found", detail)
        if len(rest) > 1 and rest[1] == "curl":
            return json_answer(diff.curl())
        return json_answer(diff.as_dict())

    def _recordings(self, request, method: str) -> Answer:
        recorder = self.sources.recorder
        if method == "GET":
            route = request.query.get("route") or None
            if (
                route is not None
                and self.sources.tables.table.route(route) is None
                and route not in recorder.recorded
            ):
                return error_answer(
                    404, "not_found", f"No route named {route!r}.",
                    {"route": [f"unknown: {route!r}"]},
                )  # fmt: skip
            count = sum(1 for name, _ in recorder.lines if route is None or name == route)
            return Answer(
                status=200, body=recorder.jsonl(route).encode(),
                content_type="application/x-ndjson; charset=utf-8",
                headers=[(UPSTREAM, "proxy"), ("X-Strangler-Recorded", str(count))],
            )  # fmt: skip
        if method == "DELETE":
            return json_answer({"cleared": recorder.clear()})
        return error_answer(405, "method_not_allowed", f"{method} is not allowed on recordings.")
