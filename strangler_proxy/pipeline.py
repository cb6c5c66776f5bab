"""The request pipeline: choose the route, check the caller, then forward (or answer itself).

For each request the front server hands over (``server.RequestHandler``):

1. ``/_strangler/...`` goes to the admin API mounted on top (``admin``: the pipeline knows it
   only as a callable that answers a request);
2. the fast path (fastpath.py) takes what needs nothing unusual; every other request is
   ``serve``d here, in request order:
3. ``X-Request-ID`` passed through when valid, else made (headers.RequestIds);
4. the path checked (paths.py: 400 ``path_refused``) and matched against the table in force,
   read once per request (404 ``no_route``);
5. a Bearer token resolved to an identity at the edge (auth.py), cached;
6. the login rule and the route's rate limit (429 ``rate_limited`` with ``Retry-After``);
7. the overview path answered by the aggregation (aggregate.py);
8. a share of the route's requests drawn for recording (recording.py);
9. forwarded (forwarding.py), which retries, falls back, mirrors shadowed routes and relays.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

from .aggregate import overview
from .answers import Answer, answer_bytes
from .auth import EdgeAuth
from .auth_events import AuthEvents
from .errors import PathRefused, UpstreamFailed
from .fastpath import FastPath
from .forwarding import Forwarder
from .headers import RequestIds
from .interfaces import TableSource
from .metrics import Metrics
from .paths import path_for_routing
from .ratelimit import retry_after
from .recording import BodyCapture
from .request import Request
from .routes import MONOLITH
from .server import HttpConnection
from .signing import IdentitySigner

ADMIN_PREFIX = "/_strangler"
#: The admin API as the pipeline sees it: a request and its raw path in, an answer out.
AdminApp = Callable[[Request, str], Awaitable[Answer]]


class Pipeline:
    """Serve requests: the front server's ``RequestHandler``."""

    def __init__(
        self, *, tables: TableSource, auth: EdgeAuth, events: AuthEvents, limiter,
        forwarder: Forwarder, fast: FastPath, signer: IdentitySigner, metrics: Metrics,
        request_ids: RequestIds, admin: AdminApp, aggregate_path: str, record_body_limit: int,
    ):  # fmt: skip
        self.tables, self.auth, self.events, self.limiter = tables, auth, events, limiter
        self.forwarder, self.fast, self.signer, self.metrics = forwarder, fast, signer, metrics
        self.request_ids, self.admin = request_ids, admin
        self.aggregate_path, self.record_body_limit = aggregate_path, record_body_limit
        # RequestHandler.fast_serve: the fast path's own, without a call in between.
        self.fast_serve = fast.fast_serve

    async def serve(self, conn: HttpConnection, req: Request) -> None:
        """Serve one client request on `conn` (the server calls it in request order)."""
        started = time.perf_counter()
        raw_path = req.path
        if raw_path.startswith(ADMIN_PREFIX):
            if req.body is not None and req.expect_continue:
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            answer = await self.admin(req, raw_path)
            conn.write(
                answer_bytes(answer, keep_alive=req.keep_alive, head_only=req.method == "HEAD")
            )
            return
        rid = self.request_ids.for_request(req.request_id)
        refuse = self.forwarder.refuse
        try:
            path = path_for_routing(raw_path)
        except PathRefused as exc:
            return refuse(conn, req, exc.status, exc.code, exc.detail, rid, None, started)
        table = self.tables.table  # this request's table, whatever happens meanwhile
        method = req.method
        found = table.match(method, path, req)
        if found is None:
            detail = f"No route serves {method} {raw_path}."
            return refuse(conn, req, 404, "no_route", detail, rid, None, started)
        route = found[0]
        identity = None
        if req.authorization is not None:
            identity = await self.auth.identify(
                authorization=req.authorization.decode("latin-1"),
                session=self.forwarder.session,
                owner_urls=self.forwarder.pools.identity_owners(table),
            )  # fmt: skip
        if self.events.is_login(method, path):
            # Guessing passwords: every attempt from an address takes a token, a 2xx gives it
            # back (auth_events.py), so only failures count. The table's "login" group tunes it.
            wait = await self.events.login_wait(remote=req.remote, table=table)
            if wait > 0:
                self.metrics.rate_limited[route.name] += 1
                detail = "Too many failed logins from this address; retry later."
                return refuse(
                    conn, req, 429, "rate_limited", detail, rid, route, started,
                    extra=[("Retry-After", retry_after(wait))],
                )  # fmt: skip
        if route.rate_limit is not None:
            caller = f"user:{identity.user_id}" if identity else f"addr:{req.remote}"
            wait = await self.limiter.take(
                key=f"{route.rate_limit}:{caller}", limit=table.rate_limits[route.rate_limit]
            )
            if wait > 0:
                self.metrics.rate_limited[route.name] += 1
                detail = f"Too many requests for {route.rate_limit!r}; retry later."
                return refuse(
                    conn, req, 429, "rate_limited", detail, rid, route, started,
                    extra=[("Retry-After", retry_after(wait))],
                )  # fmt: skip
        if path == self.aggregate_path and method == "GET":
            answer = await overview(
                self.forwarder, self.signer, req, table=table, rid=rid, identity=identity
            )
            conn.write(answer_bytes(answer, keep_alive=req.keep_alive))
            return self.forwarder.log.finish(req, answer.status, rid, route, "aggregate", started)
        target = MONOLITH if route.mode == "monolith" else route.target(identity, req.remote)
        headers = self.forwarder.headers_for(req, table, target, rid, identity, path)
        record = req.sampled
        if record is None:
            record = bool(route.record) and random.random() < route.record
        if record and req.body is not None:
            req.body.capture = BodyCapture(self.record_body_limit)
        try:
            await self.forwarder.proxy(
                conn, req, route, target, req.target, headers, rid, started, record=record
            )
        except UpstreamFailed as exc:
            refuse(conn, req, exc.status, exc.code, exc.detail, rid, route, started)
