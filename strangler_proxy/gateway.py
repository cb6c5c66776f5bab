"""The gateway: match a request to a route, pick the half that serves it, and stream the answer.

One event loop per process; clients talk to ``server.HttpConnection`` (httptools), never to
aiohttp's server. Two paths serve a request:

* the fast path (``fast_serve``): GET/OPTIONS without a body, no token or a cached one, a route
  in ``monolith``, ``extracted`` or ``canary`` mode without a rate limit, and an idle pooled
  connection to the chosen instance. It runs on protocol callbacks alone (no task, future or
  timer per request): the request head is joined from header lines prepared while parsing, and
  an answer under 64 KiB with a Content-Length leaves in one write. Anything else in the answer
  (5xx, a large or chunked body, an error, the route's timeout) hands the request to the
  general path where it stands.
* the general path (``serve``, one task per burst of requests on a connection): the admin API,
  the aggregate, shadow, rate limits, new tokens, bodies (streamed through aiohttp's client),
  HEAD, retries, fallback and streamed answers.

Guarantees per request: ``X-Request-ID`` passed through (when sane) or created, and
``X-Strangler-Upstream`` naming the half that answered (``proxy`` when the proxy itself answered).
Safe methods without a body are retried (``retries``, within a budget of 20% of requests) and, on
an ``extracted`` or canary-candidate route with ``fallback = true``, served by the monolith when
the candidate cannot connect, times out or answers 5xx (``X-Strangler-Fallback`` says so).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import os
import random
import sys
import time
import zlib
from collections import deque
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from service_kit.identity import HEADER as IDENTITY_HEADER
from service_kit.identity import Identity, identity_sign

from . import admin
from .auth import EdgeAuth, token_key, user_message
from .config import ADMIN_HOLDER, ProxyConfig
from .discovery import registry_from_url
from .errors import BodyTimeout, UpstreamFailed, error_head
from .fastclient import FAST_METHODS, FastPool, FastResponse
from .headers import FALLBACK, REQUEST_ID, RESPONSE_DROP, UPSTREAM, request_id_valid
from .metrics import Metrics
from .paths import PathRefused, path_for_routing
from .ratelimit import LOGIN_GROUP, MemoryBuckets, RedisBuckets, login_limit, retry_after
from .recording import BodyCapture, Recorder
from .redaction import Redactor
from .revocation import RedisRevocations
from .routes import (
    MONOLITH,
    SAFE_METHODS,
    Route,
    RouteTable,
    RouteTableError,
    step0_table,
    table_from_file,
)
from .server import HttpConnection, Request
from .shadow import ShadowRunner
from .sharing import (
    METRICS_SECONDS,
    shared_metrics_from_config,
    shared_revocations_from_config,
    shared_table_from_config,
)
from .upstreams import Instance, NoInstance, ServicePool

log = logging.getLogger("strangler_proxy")


class RetryBudget:
    """Allow retries up to `ratio` of requests (plus a small floor), so retries cannot storm."""

    def __init__(self, ratio: float = 0.2, floor: float = 10.0):
        self.ratio, self.floor, self.tokens = ratio, floor, floor
        self.cap = floor * 10

    def deposit(self) -> None:
        tokens = self.tokens + self.ratio
        self.tokens = tokens if tokens < self.cap else self.cap

    def withdraw(self) -> bool:
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Gateway:
    """Route table, upstream pools, and the request handler; one instance per process."""

    def __init__(
        self, *, config: ProxyConfig, table: RouteTable | None = None, registry=None, limiter=None
    ):
        self.config = config
        self.table = table or self._initial_table()
        self.metrics = Metrics()
        self.pools: dict[str, ServicePool] = {}
        self._install_pools(self.table)
        self.changes: deque[dict[str, Any]] = deque(maxlen=500)
        self.registry = registry if registry is not None else registry_from_url(config.redis_url)
        self.limiter = limiter or (
            RedisBuckets(config.redis_url) if config.redis_url else MemoryBuckets()
        )
        self.revocations = shared_revocations_from_config(config)
        self.auth = EdgeAuth(ttl=config.auth_cache_ttl, shared=self.revocations)
        self.revoke_channel = (
            RedisRevocations(config.redis_url, channel=config.revoke_channel, auth=self.auth)
            if config.redis_url
            else None
        )
        self._login = config.login
        self._logout_method, self._logout_path = config.logout or ("", "")
        self._profile_method, self._profile_path = config.password_change or ("", "")
        self.identity_keys = config.identity_keys()
        # Every admin token, with the holder the change log records; none: every admin call 401.
        self.admin_tokens: tuple[tuple[str, bytes], ...] = tuple(
            (holder, token.encode())
            for holder, token in (
                *([(ADMIN_HOLDER, config.admin_token)] if config.admin_token else []),
                *config.admin_holders,
            )
        )
        # The one deny-list of what is never stored (recordings, diffs, their replays).
        self.redactor = Redactor(headers=config.redact_headers, fields=config.redact_fields)
        self.recorder = Recorder(
            size=config.record_buffer, body_limit=config.record_body_limit,
            directory=config.record_dir,
        )  # fmt: skip
        self.shadow = ShadowRunner(self, concurrency=config.shadow_concurrency)
        self.retry_budget = RetryBudget()
        self.session: aiohttp.ClientSession | None = None
        self.fast = FastPool()
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}
        self._background: list[asyncio.Task] = []
        self._server: asyncio.AbstractServer | None = None
        self.connections: set[HttpConnection] = set()
        self.exchanges: set[_Exchange] = set()
        self.fast_served = 0  # requests the fast path took (tests and the benchmark read it)
        self._rid_prefix = os.urandom(8).hex()
        self._rid_counter = itertools.count(1)
        self.shared = shared_table_from_config(config)
        self.shared_metrics = shared_metrics_from_config(config)
        self.started_at = time.time()
        self._access = config.access_log
        self._log_lines: list[str] = []  # one write per batch, not per request
        # The fast path's routing decisions for the table in force (see _fast_decide).
        self._decided_for: RouteTable | None = None
        self._decided: dict[tuple[str, str], Route | bool] = {}
        self._log_tick = -1  # the millisecond _log_ts shows
        self._log_ts = ""

    # ----------------------------------------------------------------- table management
    def _initial_table(self) -> RouteTable:
        if self.config.routes_file:
            return table_from_file(self.config.routes_file, monolith_url=self.config.monolith_url)
        return step0_table(self.config.monolith_url)

    def _install_pools(self, table: RouteTable) -> None:
        known: dict[str, Instance] = {
            i.url: i for pool in self.pools.values() for i in pool.instances
        }
        pools = {}
        for name, service in table.services.items():
            pool = self.pools.get(name)
            if pool is None or pool.service != service:
                old_discovered = [i for i in pool.instances if not i.static] if pool else []
                pool = ServicePool(service, known)
                pool.instances += old_discovered if service.discovery else []
            pools[name] = pool
        self.pools = pools

    def table_swap(
        self, *, new: RouteTable, actor: str, reason: str, claimed_actor: str | None = None,
        client: str | None = None,
    ) -> RouteTable:  # fmt: skip
        """Install `new` atomically and record who changed what; return the old table.

        `actor` is the holder of the admin token that authorised the change; `claimed_actor`
        what the client said of itself (``X-Strangler-Actor``: recorded, never trusted). With
        worker processes the new table and the change log are published for every worker.
        """
        old = self.table
        new = RouteTable(
            services=new.services,
            routes=new.routes,
            rate_limits=new.rate_limits,
            version=old.version + 1,
        )
        self._install_pools(new)
        self.table = new  # one reference: requests in flight keep the table they started with
        before = {r.name: r.as_dict() for r in old.routes}
        after = {r.name: r.as_dict() for r in new.routes}
        changed = {
            name: {"from": before.get(name), "to": after.get(name)}
            for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)
        }
        self.changes.append(
            {
                "at": time.time(),
                "who": actor,
                "claimed_actor": claimed_actor,
                "client": client,
                "reason": reason,
                "from_version": old.version,
                "to_version": new.version,
                "routes": changed,
            }
        )
        log.info(
            "route table v%s -> v%s by %s (%s): %s",
            old.version,
            new.version,
            actor,
            reason,
            sorted(changed),
        )
        if self.shared is not None:
            self.shared.publish(table_data=new.as_dict(), changes=list(self.changes))
        return old

    def table_adopt(self, table: RouteTable, changes: list[dict[str, Any]]) -> None:
        """Install a table another worker published (its version and change log included)."""
        self._install_pools(table)
        self.table = table
        self.changes = deque(changes, maxlen=500)
        log.info("route table v%s adopted from another worker", table.version)

    def table_sync(self) -> None:
        """Adopt the newest table the workers share, before changing it (no-op alone)."""
        if self.shared is not None:
            self.shared.sync(self)

    def table_reload(
        self, *, actor: str, claimed_actor: str | None = None, client: str | None = None
    ) -> RouteTable:
        """Re-read the route file and swap it in; if invalid, raise and keep the old table."""
        if not self.config.routes_file:
            raise RouteTableError(
                ["table: the proxy was started without a route file (STRANGLER_ROUTES)"]
            )
        new = table_from_file(self.config.routes_file, monolith_url=self.config.monolith_url)
        self.table_swap(
            new=new, actor=actor, reason=f"reload {self.config.routes_file}",
            claimed_actor=claimed_actor, client=client,
        )  # fmt: skip
        return self.table

    def admin_holder(self, authorization: bytes | None) -> str | None:
        """Return who holds the admin token in `authorization` (``Bearer <token>``), or None.

        Every token is compared in constant time, whichever matches.
        """
        if authorization is None or not self.admin_tokens:
            return None
        scheme, _, given = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        given = given.strip()
        holder = None
        for name, token in self.admin_tokens:
            if hmac.compare_digest(given, token) and holder is None:
                holder = name
        return holder

    def redactor_for(self, route: Route) -> Redactor:
        """Return the deny-list of `route`: the proxy's, plus what the route adds."""
        return self.redactor.extended(headers=route.redact_headers, fields=route.redact_fields)

    # ----------------------------------------------------------------- lifecycle
    async def start(
        self, *, host: str | None = None, port: int | None = None, reuse_port: bool = False
    ) -> int:
        """Open the upstream pools and listen; return the bound port."""
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self, loop),
            host or self.config.host,
            self.config.port if port is None else port,
            reuse_port=reuse_port or None,
            backlog=1024,
        )
        self._background.append(asyncio.create_task(self._maintain()))
        self._background.append(asyncio.create_task(self._sweep()))
        self._background.append(asyncio.create_task(self._expire()))
        if self.shared is not None:
            self.shared.sync(self)  # a worker started late adopts the table in force
            self._background.append(asyncio.create_task(self._follow_shared()))
        if self.shared_metrics is not None:
            self._background.append(asyncio.create_task(self._publish_metrics()))
        if self.revoke_channel is not None:
            await self.revoke_channel.start()
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        self.flush_log()
        if self._server is not None:
            self._server.close()
        await self.shadow.drain(timeout=1.0)
        if self.shared_metrics is not None:
            self._publish_own_metrics()  # the last figures, shadow comparisons included
        for conn in list(self.connections):
            if conn.runner is not None:
                conn.runner.cancel()
            if conn.transport is not None:
                conn.transport.close()
        if self.session is not None:
            await self.session.close()
        self.fast.close()
        self.flush_log()
        await self.registry.close()
        await self.limiter.close()
        if self.revoke_channel is not None:
            await self.revoke_channel.close()
        if self.revocations is not None:
            self.revocations.close()

    async def auth_revoke(self, authorization: bytes) -> None:
        """Drop a logged-out token here, in the other workers and in the other instances."""
        key = token_key(authorization.decode("latin-1"))
        if key is not None:
            await self._revoke(key)

    async def auth_revoke_user(self, user_id: str) -> None:
        """Forget every cached token of `user_id` here, in the other workers and instances."""
        await self._revoke(user_message(user_id))

    async def _revoke(self, message: str) -> None:
        """Apply a revocation message (a token's key or ``user:<id>``) everywhere it is cached."""
        self.auth.revoke(message)
        if self.revocations is not None:
            self.revocations.publish(message)
        if self.revoke_channel is not None:
            await self.revoke_channel.publish(message)

    async def _sweep(self) -> None:
        """Once a second: close idle keep-alive connections and heads that arrive too slowly."""
        loop = asyncio.get_running_loop()
        config = self.config
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for conn in list(self.connections):
                conn.sweep(
                    now, keepalive=config.keepalive_timeout, head_timeout=config.head_timeout
                )

    async def _expire(self) -> None:
        """Every 50 ms: time out fast-path exchanges whose upstream is later than the route allows.

        One sweep instead of a timer per request: a timeout fires up to 50 ms late.
        """
        while True:
            await asyncio.sleep(0.05)
            self.flush_log()
            if self.exchanges:
                now = time.perf_counter()
                for exchange in list(self.exchanges):
                    if now - exchange.started > exchange.route.timeout:
                        exchange.expire()

    async def _follow_shared(self) -> None:
        """Adopt route-table changes other workers made, as soon as they are seen."""
        while True:
            try:
                await self.shared.wait_change(self)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken shared store must not stop this worker serving
                log.exception("reading the shared route table failed")
                await asyncio.sleep(1.0)

    def _metrics_snapshot(self) -> dict[str, Any]:
        data = self.metrics.snapshot()
        data["breakers"] = self._breakers()
        return data

    def _breakers(self) -> dict[str, str]:
        return {i.url: i.breaker.state for pool in self.pools.values() for i in pool.instances}

    def metrics_view(self) -> tuple[Metrics, dict[str, str]]:
        """Return the metrics and breaker states to report: this worker's, or with --workers,
        the sum over every worker and each instance's worst breaker state.

        This worker publishes its own figures first: a worker's file then never holds less than
        any scrape already reported for it, so totals never drop from one scrape to the next,
        whichever worker answers. A file that is malformed is skipped whole; breaker states
        from a file not refreshed for 3 s (a worker that is gone) are ignored.
        """
        breakers = self._breakers()
        if self.shared_metrics is None:
            return self.metrics, breakers
        self._publish_own_metrics()
        others = []
        rank = {"closed": 0, "half_open": 1, "open": 2}
        for data, age in self.shared_metrics.others():
            try:
                others.append(Metrics.from_snapshot(data))
            except ValueError as exc:
                log.warning("skipping another worker's metrics: %s", exc)
                continue
            theirs = data.get("breakers")
            if age > 3 * METRICS_SECONDS or not isinstance(theirs, dict):
                continue
            for url, state in theirs.items():
                if (
                    isinstance(state, str)
                    and state in rank
                    and (url not in breakers or rank[state] > rank.get(breakers[url], 0))
                ):
                    breakers[url] = state
        return Metrics.merged(self.metrics, others), breakers

    def _publish_own_metrics(self) -> None:
        try:
            self.shared_metrics.publish(self._metrics_snapshot())
        except Exception:  # a full disk must not stop this worker serving or answering
            log.exception("publishing this worker's metrics failed")

    async def _publish_metrics(self) -> None:
        """Every second: write this worker's metrics for the other workers' scrapes."""
        while True:
            await asyncio.sleep(METRICS_SECONDS)
            self._publish_own_metrics()

    async def _maintain(self) -> None:
        """Refresh registry instances every second and health-check instances when due."""
        last_check: dict[str, float] = {}
        while True:
            try:
                now = time.monotonic()
                for name, pool in list(self.pools.items()):
                    if pool.service.discovery:
                        pool.set_discovered(await self.registry.instances(service=name))
                    if (
                        pool.service.health_path
                        and now - last_check.get(name, 0) >= pool.service.health_interval
                    ):
                        last_check[name] = now
                        await asyncio.gather(*(self._health(pool, i) for i in pool.instances))
            except asyncio.CancelledError:
                raise
            except Exception:  # the maintenance loop must outlive a Redis hiccup
                log.exception("registry refresh or health check failed")
            await asyncio.sleep(1.0)

    async def _health(self, pool: ServicePool, instance: Instance) -> None:
        try:
            async with self.session.get(
                instance.url + pool.service.health_path,
                timeout=aiohttp.ClientTimeout(total=2),
                allow_redirects=False,
            ) as resp:
                instance.healthy = resp.status < 500
        except (TimeoutError, aiohttp.ClientError, OSError):
            instance.healthy = False

    # ----------------------------------------------------------------- request handling
    def _timeout(self, route: Route) -> aiohttp.ClientTimeout:
        key = (route.connect_timeout, route.timeout)
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, sock_connect=route.connect_timeout, sock_read=route.timeout
            )
        return timeout

    def error(
        self, status: int, code: str, detail: str, request_id: str = "", headers: dict | None = None
    ) -> web.Response:
        """Return the proxy's own JSON error response (admin and aggregation use it)."""
        body = json.dumps({"error": code, "detail": detail, "fields": {}})
        resp = web.Response(
            status=status, text=body, content_type="application/json", headers=headers
        )
        resp.headers[UPSTREAM] = "proxy"
        if request_id:
            resp.headers[REQUEST_ID] = request_id
        return resp

    def _refuse(
        self, conn: HttpConnection, req: Request, status: int, code: str, detail: str, rid: str,
        route: Route | None, started: float, extra: list | None = None,
    ) -> None:  # fmt: skip
        if status == 408:
            req.keep_alive = False  # the rest of the body may still trickle in: do not wait for it
        conn.write(
            error_head(status, code, detail, rid, close=not req.keep_alive, headers=extra or ())
        )
        self._finish(req, status, rid, route, "proxy", started)

    def _send_web(self, conn: HttpConnection, req: Request, resp: web.Response) -> None:
        """Write an aiohttp Response built by the admin API or the aggregation."""
        body = resp.body or b""
        if not isinstance(body, bytes):
            body = bytes(body._value) if hasattr(body, "_value") else b""
        lines = [f"HTTP/1.1 {resp.status} {resp.reason}\r\n"]
        for name, value in resp.headers.items():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n")
        if not req.keep_alive:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        conn.write(head if req.method == "HEAD" else head + body)

    async def serve(self, conn: HttpConnection, req: Request) -> None:
        """Serve one client request on `conn` (the server calls it in request order)."""
        started = time.perf_counter()
        raw_path = req.path
        if raw_path.startswith("/_strangler"):
            if req.body is not None and req.expect_continue:
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._send_web(conn, req, await admin.handle(self, req, raw_path))
            return
        rid = req.request_id
        if rid is not None:
            rid = rid.decode("latin-1")
            if not request_id_valid(rid):
                rid = None
        if rid is None:
            rid = self._new_request_id()
        try:
            path = path_for_routing(raw_path)
        except PathRefused as exc:
            return self._refuse(conn, req, 400, "path_refused", str(exc), rid, None, started)
        table = self.table  # this request's table, whatever happens to self.table meanwhile
        method = req.method
        found = table.match(method, path, req)
        if found is None:
            detail = f"No route serves {method} {raw_path}."
            return self._refuse(conn, req, 404, "no_route", detail, rid, None, started)
        route = found[0]
        identity = None
        if req.authorization is not None:
            identity = await self.auth.identify(
                authorization=req.authorization.decode("latin-1"), session=self.session,
                monolith_url=self._monolith_url(),
            )  # fmt: skip
        login = self._login is not None and method == self._login[0] and path == self._login[1]
        if login:
            # Guessing passwords: every attempt from an address takes a token, a 2xx gives it
            # back (_relay), so only failures count. The table's "login" group tunes it.
            wait = await self.limiter.take(
                key=f"{LOGIN_GROUP}:addr:{req.remote}", limit=login_limit(table)
            )
            if wait > 0:
                self.metrics.rate_limited[route.name] += 1
                detail = "Too many failed logins from this address; retry later."
                return self._refuse(
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
                return self._refuse(
                    conn, req, 429, "rate_limited", detail, rid, route, started,
                    extra=[("Retry-After", retry_after(wait))],
                )  # fmt: skip
        if self.config.aggregate_path == path and method == "GET":
            from .aggregate import overview

            resp = await overview(self, req, table=table, rid=rid, identity=identity)
            self._send_web(conn, req, resp)
            return self._finish(req, resp.status, rid, route, "aggregate", started)
        mode = route.mode
        target = MONOLITH if mode == "monolith" else self.choose_target(route, identity, req.remote)
        headers = self._forward(req, table, target, rid, identity, path)
        record = req.sampled
        if record is None:
            record = bool(route.record) and random.random() < route.record
        if record and req.body is not None:
            req.body.capture = BodyCapture(self.config.record_body_limit)
        try:
            await self._proxy(
                conn, req, route, target, req.target, headers, rid, started, record=record
            )
        except UpstreamFailed as exc:
            self._refuse(conn, req, exc.status, exc.code, exc.detail, rid, route, started)

    def _forward(
        self, req: Request, table: RouteTable, target: str, rid: str, identity,
        path: str | None = None,
    ) -> Forward:  # fmt: skip
        """Return the headers `req` carries to `target`: the client's, less hop-by-hop, and ours.

        `path` is the decoded path the identity is signed for (derived from `req` if None).
        """
        preserve = req.host is not None and table.services[target].preserve_host
        if path is None and identity is not None:
            path = _signed_path(req.path)
        tail = [
            _proxy_lines(req, req.remote.encode(), preserve, rid.encode()),
            self.identity_line(identity, target, req.method, path),
        ]
        return Forward(req.forward_lines(), tail, preserve, self, identity, req.method, path)

    def identity_line(self, identity: Identity | None, audience: str, method: str, path) -> bytes:
        """Return the identity header line vouching for `identity` on `method` `path` to the
        service `audience`, or b"" if there is no one to vouch for (or no key)."""
        if identity is None or self.identity_keys is None:
            return b""
        return b"%s: %s\r\n" % (
            _IDENTITY_NAME,
            self.identity_sign(identity, audience, method, path).encode(),
        )

    def identity_sign(self, identity: Identity, audience: str, method: str, path: str) -> str:
        """Return the identity header value for one request to `audience`."""
        return identity_sign(
            identity=identity, keys=self.identity_keys, audience=audience, method=method,
            path=path, ttl=self.config.identity_ttl,
        )  # fmt: skip

    def _new_request_id(self) -> str:
        # A per-process random prefix and a counter: unique without a system call per request.
        return f"{self._rid_prefix}{next(self._rid_counter):016x}"

    # ----------------------------------------------------------------- the fast path
    def fast_serve(self, conn: HttpConnection, req: Request) -> bool:
        """Start serving `req` without a task if it is on the lean path; return whether it did.

        The lean path: GET/OPTIONS without a body, no token or one the auth cache knows, a
        route in ``monolith``, ``extracted`` or ``canary`` mode without a rate limit, and an
        instance whose breaker is closed. With an idle pooled connection to it, the exchange
        runs on protocol callbacks alone (no task, no future, no timer); without one, or when
        anything in the answer is unusual (5xx, a large or chunked body, a broken connection, a
        timeout), ``_proxy`` takes over where it stands and retries, falls back and streams
        exactly as for any request.
        """
        method = req.method
        if method not in FAST_METHODS:
            return False
        identity = None
        if req.authorization is not None:
            known, identity = self.auth.peek(req.authorization.decode("latin-1"))
            if not known:
                return False  # a token not yet vouched for: the general path asks the monolith
        table = self.table
        if table is not self._decided_for:
            self._decided_for, self._decided = table, {}
        raw_path = req.path
        decided = self._decided.get((method, raw_path))
        if decided is None:
            decided = self._fast_decide(table, method, raw_path, req)
        if decided is False:
            return False
        route = decided
        if route.record:
            # A recorded exchange takes the general path; the route's other requests stay here.
            req.sampled = random.random() < route.record
            if req.sampled:
                return False
        remote = req.remote
        mode = route.mode
        target = MONOLITH if mode == "monolith" else self.choose_target(route, identity, remote)
        pool = self.pools[target]
        instances = pool.instances
        if len(instances) == 1:
            instance = instances[0]
            if instance.breaker.state != "closed":
                return False  # the general path's pick() decides, and sends any half-open probe
        else:
            try:
                instance = pool.pick()
            except NoInstance:
                return False
            if instance.breaker.state != "closed":
                instance.breaker.probing = False  # pick() claimed the probe: the general path's
                return False
        started = time.perf_counter()
        rid = req.request_id
        if rid is not None:
            rid = rid.decode("latin-1")
            if not request_id_valid(rid):
                rid = None
        if rid is None:
            rid = self._new_request_id()
        up = self.fast.take_idle(instance.url)
        if up is None:
            # No idle connection yet: the general path connects, to the instance chosen here.
            headers = self._forward(req, table, target, rid, identity)
            conn.run_handed_over(req, self.proxy_handed_over(
                conn, req, route, target, headers, rid, started, None, pinned=instance
            ))  # fmt: skip
            return True
        rid_b = rid.encode()
        # The bytes of _forward's block, joined in one go without a Forward (the general path
        # builds one from the request if it takes over).
        preserve = req.host is not None and table.services[target].preserve_host
        head = b"".join(
            (method.encode(), b" ", req.raw_target, b" HTTP/1.1\r\n",
             b"" if preserve else instance.host_line, *req.forward_lines(),
             _proxy_lines(req, conn.remote_b, preserve, rid_b),
             b"" if identity is None else
             self.identity_line(identity, target, method, _signed_path(raw_path)),
             b"\r\n")
        )  # fmt: skip
        instance.outstanding += 1
        self.retry_budget.deposit()
        self.fast_served += 1
        exchange = _Exchange(
            self, conn, req, route, target, table, identity, rid, rid_b, started, instance, up
        )
        conn.exchange = exchange
        up.listener = exchange
        self.exchanges.add(exchange)
        up.transport.write(head)
        return True

    def _fast_decide(self, table: RouteTable, method: str, raw_path: str, req: Request):
        """Return the route the fast path serves `raw_path` with, or False; remember it.

        Remembered for the table in force under (method, raw path), unless a route matches on
        headers or the path is over 256 characters; at most 4,096 entries (then it starts
        over). A path seen again skips decoding and matching.
        """
        decided = False
        if not raw_path.startswith("/_strangler"):
            try:
                path = path_for_routing(raw_path)
            except PathRefused:
                path = None
            found = None if path is None else table.match(method, path, req)
            if found is not None:
                route = found[0]
                if (
                    route.rate_limit is None
                    and route.mode != "shadow"
                    and path != self.config.aggregate_path
                ):
                    decided = route
        if not table.matches_headers and len(raw_path) <= 256:
            cache = self._decided
            if len(cache) >= 4096:
                cache.clear()
            cache[(method, raw_path)] = decided
        return decided

    @staticmethod
    def choose_target(route: Route, identity, remote: str | None) -> str:
        """Return the service that serves `route` for this caller (canary: sticky per user)."""
        mode = route.mode
        if mode == "monolith" or mode == "shadow":
            return MONOLITH
        if mode == "extracted":
            return route.service
        # Hash on the service, not the route, so a user's whole journey stays on one side.
        sticky = identity.user_id if identity else (remote or "")
        bucket = zlib.crc32(f"{route.service}:{sticky}".encode()) % 10000
        return route.service if bucket < route.canary_percent * 100 else MONOLITH

    def _monolith_url(self) -> str:
        pool = self.pools.get(MONOLITH)
        return pool.pick().url if pool and pool.instances else self.config.monolith_url

    async def _attempt(
        self, pool: ServicePool, method: str, target: str, headers, body, route: Route,
        pinned: Instance | None = None,
    ):  # fmt: skip
        """Send one request to one instance (`pinned`, else the pool's pick); return or raise."""
        try:
            instance = pinned or pool.pick()
        except NoInstance as exc:
            raise UpstreamFailed(code="upstream_unavailable", detail=str(exc), status=503) from None
        instance.outstanding += 1
        try:
            if body is None and method in FAST_METHODS:
                if type(headers) is Forward:
                    block = headers.block()
                    host_line = None if headers.preserve_host else instance.host_line
                else:
                    block, host_line = headers, None
                resp = await self.fast.request(
                    url=instance.url, host=instance.host, method=method, target=target,
                    headers=block, host_line=host_line, connect_timeout=route.connect_timeout,
                    read_timeout=route.timeout,
                )  # fmt: skip
            else:
                if type(headers) is Forward:
                    headers = headers.copy()
                resp = await self.session.request(
                    method, URL(instance.url + target, encoded=True), headers=headers,
                    data=None if body is None else body.chunks_iter(self.config.body_idle_timeout),
                    allow_redirects=False, timeout=self._timeout(route), compress=None,
                )  # fmt: skip
        except TimeoutError:
            instance.outstanding -= 1
            instance.breaker.record(False, time.monotonic())
            self.metrics.errors[(route.name, pool.name, "timeout")] += 1
            raise UpstreamFailed(
                code="upstream_timeout",
                detail=f"{pool.name} did not answer within {route.timeout}s.",
                status=504,
            ) from None
        except (aiohttp.ClientError, OSError, BodyTimeout) as exc:
            instance.outstanding -= 1
            if body is not None and body.timed_out:
                raise UpstreamFailed(
                    code="request_timeout",
                    detail="The request body arrived too slowly.",
                    status=408,
                ) from None
            if body is not None and body.error is not None:
                # The client went away mid-upload: not the upstream's failure, nobody to answer.
                raise ConnectionResetError("the client closed the connection") from None
            instance.breaker.record(False, time.monotonic())
            self.metrics.errors[(route.name, pool.name, "connect")] += 1
            raise UpstreamFailed(
                code="upstream_unavailable",
                detail=f"{pool.name} at {instance.url} failed: {exc.__class__.__name__}.",
            ) from None
        self._judge(instance, pool.name, route, resp.status)
        return instance, resp

    def _judge(self, instance: Instance, service: str, route: Route, status: int) -> None:
        """Feed an answer's status to the instance's breaker and the error metrics."""
        if status >= 500:
            instance.breaker.record(False, time.monotonic())
            self.metrics.errors[(route.name, service, "5xx")] += 1
        elif instance.breaker.state != "closed" or instance.breaker.failures:
            instance.breaker.record(True, time.monotonic())

    async def proxy_handed_over(
        self, conn: HttpConnection, req: Request, route: Route, target: str, headers: Forward,
        rid: str, started: float, first, pinned: Instance | None = None,
    ) -> None:  # fmt: skip
        """Finish a request the fast path handed over, from the outcome it had reached."""
        try:
            await self._proxy(
                conn, req, route, target, req.target, headers, rid, started, first, pinned
            )
        except UpstreamFailed as exc:
            self._refuse(conn, req, exc.status, exc.code, exc.detail, rid, route, started)

    async def _proxy(
        self, conn: HttpConnection, req: Request, route: Route, target: str,
        upstream_target: str, headers: Forward, rid: str, started: float, first=None,
        pinned: Instance | None = None, record: bool = False,
    ) -> None:  # fmt: skip
        """Send the request (retries, fallback) and relay the answer.

        `first`: the fast path's outcome of the first attempt, ``(instance, response)`` or an
        ``UpstreamFailed``, when it handed the request over; None to start from scratch.
        `pinned`: the instance the first attempt goes to (the fast path already chose it).
        """
        method = req.method
        body = req.body
        if body is not None and body.done and not body.chunks:
            body = None  # an empty chunked body: nothing to stream
        if body is not None and req.expect_continue:
            # The proxy answers Expect itself (and does not forward it): the client may now send
            # the body, which streams on to the upstream as it arrives.
            conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        retryable = body is None and method in SAFE_METHODS
        if first is None:
            self.retry_budget.deposit()  # else the fast path did
        fallback_from = None
        retries = 0
        while True:
            pool = self.pools[target]
            can_fallback = (
                retryable and route.fallback and target != MONOLITH and fallback_from is None
            )
            can_retry = retryable and retries < route.retries
            try:
                if first is not None:
                    outcome, first = first, None
                    if isinstance(outcome, UpstreamFailed):
                        raise outcome
                    instance, resp = outcome
                else:
                    pin, pinned = pinned, None  # the first attempt only
                    instance, resp = await self._attempt(
                        pool, method, upstream_target, headers, body, route, pin
                    )
            except UpstreamFailed as exc:
                if exc.status == 408:
                    raise
                if can_retry and self.retry_budget.withdraw():
                    retries += 1
                    self.metrics.retries[route.name] += 1
                    continue
                if can_fallback:
                    fallback_from = f"{target}: {exc.code}"
                    self.metrics.fallbacks[(route.name, target)] += 1
                    target, retries = MONOLITH, 0
                    headers = _retarget(headers, target)
                    continue
                raise
            if resp.status >= 500 and can_retry and self.retry_budget.withdraw():
                resp.release()
                instance.outstanding -= 1
                retries += 1
                self.metrics.retries[route.name] += 1
                continue
            if resp.status >= 500 and can_fallback:
                resp.release()
                instance.outstanding -= 1
                fallback_from = f"{target}: {resp.status}"
                self.metrics.fallbacks[(route.name, target)] += 1
                target, retries = MONOLITH, 0
                headers = _retarget(headers, target)
                continue
            break
        try:
            await self._relay(
                conn, req, route, target, upstream_target, headers, resp, rid, started,
                fallback_from, record,
            )  # fmt: skip
        finally:
            instance.outstanding -= 1
            resp.release()

    async def _relay(
        self, conn: HttpConnection, req: Request, route: Route, target: str,
        upstream_target: str, headers, resp, rid: str, started: float, fallback_from,
        record: bool = False,
    ) -> None:  # fmt: skip
        """Stream the answer to the client, capturing it for a shadow compare or a recording."""
        status = resp.status
        lines = [_status_line(status, (resp.reason or "").encode("latin-1", "replace"))]
        drop = RESPONSE_DROP
        raw = resp.raw_headers
        for name, value in raw:
            if name.lower() == b"connection":
                if drop is RESPONSE_DROP:
                    drop = set(drop)
                drop.update(t.strip().lower() for t in value.split(b","))
        for name, value in raw:
            if name.lower() not in drop:
                lines.append(name + b": " + value + b"\r\n")
        lines.append(_upstream_line(target))
        lines.append(b"X-Request-ID: " + rid.encode() + b"\r\n")
        if fallback_from:
            lines.append(f"{FALLBACK}: {fallback_from}\r\n".encode("latin-1"))
        if (
            req.method == self._logout_method
            and 200 <= status < 300
            and req.authorization is not None
            and req.path == self._logout_path
        ):
            # Before the client has its answer: its next request, on any instance, is refused.
            await self.auth_revoke(req.authorization)
        elif 200 <= status < 300 and req.method == self._profile_method:
            identity = headers.identity if type(headers) is Forward else None
            if identity is not None and req.path == self._profile_path:
                # A password change revokes the user's tokens at the monolith; any profile
                # change makes what is cached about the user stale: forget it everywhere.
                await self.auth_revoke_user(identity.user_id)
        elif (
            200 <= status < 300
            and self._login is not None
            and req.method == self._login[0]
            and path_for_routing(req.path) == self._login[1]
        ):
            await self.limiter.take(
                key=f"{LOGIN_GROUP}:addr:{req.remote}", limit=login_limit(self.table), cost=-1
            )  # a successful login gives its attempt back: only failures are limited
        capture = route.mode == "shadow" and req.method in SAFE_METHODS
        captured: list[bytes] | None = [] if capture or record else None
        length = resp.content_length
        no_body = req.method == "HEAD" or status in (204, 304) or status < 200
        chunked = not no_body and length is None
        if chunked and req.version != "1.1":
            req.keep_alive = False  # an HTTP/1.0 client reads the body to the close
        if not req.keep_alive:
            lines.append(b"Connection: close\r\n")
        elif req.version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        shadow = None
        if no_body or (length is not None and length <= _SMALL_BODY):
            # Read first, then answer in one send; a broken body becomes a clean 502/504.
            body = b"" if no_body else await self._read_small(resp, route, target)
            lines.append(b"\r\n")
            lines.append(body)
            if captured is not None:
                captured.append(body)
            try:
                conn.write(b"".join(lines))
            except ConnectionResetError:
                self.metrics.errors[(route.name, target, "client_gone")] += 1
                return self._finish(req, status, rid, route, target, started, fallback_from,
                                    "client_gone")  # fmt: skip
        else:
            if chunked and req.version == "1.1":
                lines.append(b"Transfer-Encoding: chunked\r\n")
            lines.append(b"\r\n")
            framed = chunked and req.version == "1.1"
            size, limit = 0, self.config.shadow_body_limit
            try:
                conn.write(b"".join(lines))
                async for chunk in resp.content.iter_any():
                    if framed:
                        conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    else:
                        conn.write(chunk)
                    await conn.drain()
                    if captured is not None:
                        size += len(chunk)
                        captured = None if size > limit else [*captured, chunk]
                if framed:
                    conn.write(b"0\r\n\r\n")
            except ConnectionResetError:
                # The client went away mid-answer: nothing left to tell it; count it and move on.
                self.metrics.errors[(route.name, target, "client_gone")] += 1
                return self._finish(req, status, rid, route, target, started, fallback_from,
                                    "client_gone")  # fmt: skip
            except (TimeoutError, aiohttp.ClientError, OSError):
                # The head has left: the only way to say the body broke is to close the connection.
                self.metrics.errors[(route.name, target, "broken_body")] += 1
                req.keep_alive = False
                conn.transport.close()
                return self._finish(req, status, rid, route, target, started, fallback_from)
        if record:
            self._record(req, route, status, resp, captured)
        if capture:
            if captured is None:
                shadow = "too_large"
            else:
                primary = (
                    status,
                    {k.lower(): v for k, v in resp.headers.items()},
                    b"".join(captured),
                )
                shadow = self.shadow.submit(
                    route=route, method=req.method, target=upstream_target, headers=headers,
                    primary=primary,
                )  # fmt: skip
        self._finish(req, status, rid, route, target, started, fallback_from, shadow)

    def _record(self, req: Request, route: Route, status: int, resp, captured) -> None:
        """Keep the exchange just answered as a replayable line (recording.py)."""
        self.recorder.add(
            redactor=self.redactor_for(route), route=route.name, method=req.method,
            target=req.target,
            header_lines=req.forward_lines(),
            body=req.body.capture if req.body is not None else None, status=status,
            response_headers=resp.headers.items(),
            response_body=b"".join(captured) if captured is not None else None,
        )  # fmt: skip

    async def _read_small(self, resp, route: Route, target: str) -> bytes:
        try:
            return await resp.content.read()
        except TimeoutError:
            self.metrics.errors[(route.name, target, "timeout")] += 1
            raise UpstreamFailed(
                code="upstream_timeout", detail=f"{target} stalled mid-answer.", status=504
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            self.metrics.errors[(route.name, target, "broken_body")] += 1
            detail = f"{target} broke off its answer: {exc}."
            raise UpstreamFailed(code="upstream_unavailable", detail=detail) from None

    async def fetch(
        self, *, service: str, method: str, target: str, headers, route: Route
    ) -> tuple[tuple[int, dict, bytes], str]:
        """Send a buffered request to `service`; return ((status, headers, body), url)."""
        pool = self.pools[service]
        instance, resp = await self._attempt(pool, method, target, headers, None, route)
        try:
            body = await resp.content.read(self.config.shadow_body_limit + 1)
            return (
                resp.status,
                {k.lower(): v for k, v in resp.headers.items()},
                body,
            ), instance.url
        finally:
            instance.outstanding -= 1
            resp.release()

    def _finish(
        self, req: Request, status: int, rid: str, route: Route | None, upstream: str,
        started: float, fallback=None, shadow=None,
    ) -> None:  # fmt: skip
        elapsed = time.perf_counter() - started
        route_name = route.name if route is not None else "-"
        self.metrics.observe(route_name, upstream, status, elapsed)
        if self._access:
            now = time.time()
            tick = round(now * 1000)
            if tick != self._log_tick:  # the same "ts" for every line of a millisecond
                self._log_tick = tick
                self._log_ts = f"{tick // 1000}.{tick % 1000:03d}"
            # Every field but the path is from a validated alphabet (request ids, route and
            # service names, methods, addresses): only the path needs JSON escaping.
            line = (
                f'{{"ts": {self._log_ts}, "request_id": "{rid}", "method": "{req.method}", '
                f'"path": {_json_string(req.path)}, "route": "{route_name}", '
                f'"mode": "{route.mode if route else "-"}", "upstream": "{upstream}", '
                f'"status": {status}, "ms": {elapsed * 1000:.3f}, "client": "{req.remote}"'
            )
            if fallback:
                line += f', "fallback": {json.dumps(fallback)}'
            if shadow:
                line += f', "shadow": "{shadow}"'
            lines = self._log_lines
            lines.append(line + "}\n")
            if len(lines) >= 256:
                self.flush_log()

    def flush_log(self) -> None:
        """Write the buffered access-log lines (every 50 ms, or 256 lines, and on close)."""
        if self._log_lines:
            text = "".join(self._log_lines)
            self._log_lines.clear()
            sys.stdout.write(text)


_SMALL_BODY = 64 * 1024
_IDENTITY_NAME = IDENTITY_HEADER.encode()
_json_string = encode_basestring_ascii


def _signed_path(raw_path: str) -> str:
    """Return the decoded path an identity is signed for (as the half's framework decodes it).

    Only called for paths the router accepted (paths.py), whose escapes are valid UTF-8.
    """
    return raw_path if "%" not in raw_path else unquote(raw_path)


def _retarget(headers, service: str):
    """Return `headers` with the identity signed for `service` (a Forward; others as they are)."""
    return headers.retarget(service) if type(headers) is Forward else headers


_STATUS_LINES: dict[int, tuple[bytes, bytes]] = {}  # status: (reason, the line), the latest
_UPSTREAM_LINES: dict[str, bytes] = {}


def _status_line(status: int, reason: bytes) -> bytes:
    """Return ``HTTP/1.1 <status> <reason>\\r\\n``, remembered per status for its latest reason."""
    known = _STATUS_LINES.get(status)
    if known is not None and known[0] == reason:
        return known[1]
    line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
    if 100 <= status <= 999:
        _STATUS_LINES[status] = (reason, line)
    return line


def _upstream_line(target: str) -> bytes:
    line = _UPSTREAM_LINES.get(target)
    if line is None:
        line = _UPSTREAM_LINES[target] = f"{UPSTREAM}: {target}\r\n".encode("latin-1")
    return line


def _proxy_lines(req: Request, remote_b: bytes, preserve: bool, rid_b: bytes) -> bytes:
    """Return the header lines the proxy adds to a forwarded request: X-Forwarded-For, -Proto
    and -Host, the client's Host when the service keeps it (`preserve`), X-Request-ID."""
    host, xff = req.host, req.xff
    return b"".join(
        (b"X-Forwarded-For: ", xff + b", " if xff else b"", remote_b,
         b"\r\nX-Forwarded-Proto: http\r\n",
         b"" if host is None else b"X-Forwarded-Host: " + host + b"\r\n",
         b"Host: " + host + b"\r\n" if preserve else b"",
         b"X-Request-ID: ", rid_b, b"\r\n")
    )  # fmt: skip


class Forward:
    """The headers a request carries upstream: the client's kept lines plus the proxy's own.

    The hot path sends `block()` as is; slower paths (bodies through aiohttp, shadow mirrors)
    take a mutable `copy()`. The signed identity is for one service: `retarget` signs it anew
    for another (a fallback to the monolith, a shadow mirror to the candidate).
    """

    __slots__ = ("_block", "gateway", "identity", "lines", "method", "path", "preserve_host",
                 "tail")  # fmt: skip

    def __init__(
        self, lines: list[bytes], tail: list[bytes], preserve_host: bool, gateway=None,
        identity: Identity | None = None, method: str = "", path: str | None = None,
    ):  # fmt: skip
        self.lines, self.tail, self.preserve_host = lines, tail, preserve_host
        self.gateway, self.identity, self.method, self.path = gateway, identity, method, path
        self._block: bytes | None = None

    def retarget(self, service: str) -> Forward:
        """Return these headers with the identity signed for `service` instead."""
        if self.identity is None or self.gateway is None:
            return self
        line = self.gateway.identity_line(self.identity, service, self.method, self.path)
        return Forward(self.lines, [self.tail[0], line], self.preserve_host, self.gateway,
                       self.identity, self.method, self.path)  # fmt: skip

    def block(self) -> bytes:
        if self._block is None:
            self._block = b"".join(self.lines) + b"".join(self.tail)
        return self._block

    def copy(self) -> CIMultiDict:
        out = CIMultiDict()
        for line in self.block().split(b"\r\n"):
            if line:
                name, _, value = line.decode("latin-1").partition(":")
                out.add(name, value.strip())
        return out

    def items(self):
        return self.copy().items()


class _Exchange:
    """One request on the fast path, driven by the upstream connection's parser callbacks."""

    __slots__ = (
        "conn", "gateway", "identity", "instance", "req", "rid", "rid_b", "route", "started",
        "table", "target", "up",
    )  # fmt: skip

    def __init__(
        self, gateway: Gateway, conn: HttpConnection, req: Request, route: Route, target: str,
        table: RouteTable, identity, rid: str, rid_b: bytes, started: float, instance: Instance,
        up,
    ):  # fmt: skip
        self.gateway, self.conn, self.req, self.route = gateway, conn, req, route
        self.target, self.table, self.identity = target, table, identity
        self.rid, self.rid_b, self.started = rid, rid_b, started
        self.instance, self.up = instance, up

    # -- the upstream connection's listener (fastclient._Connection.listener)
    def upstream_head(self) -> None:
        """The head arrived: anything but a small, framed, non-5xx answer is handed over."""
        up = self.up
        status, length = up.status, up.length
        if (
            status >= 500
            or status < 200
            or up.odd_connection
            or (length is None and status not in (204, 304))
            or (length is not None and length > _SMALL_BODY)
        ):
            self._hand_over(self._response())

    def upstream_done(self) -> None:
        """The whole answer arrived: send it to the client in one write."""
        self._complete()

    def upstream_failed(self) -> None:
        """The upstream connection broke, or sent something that is not HTTP."""
        up = self.up
        if up.headers_done:
            return self._hand_over(self._response())
        if not up.got_bytes:
            # The idle connection died under us before answering: start afresh.
            self.instance.outstanding -= 1
            return self._hand_over(None)
        return self._hand_over(self._failed("connect", up.error))

    def _response(self):
        self.gateway._judge(self.instance, self.target, self.route, self.up.status)
        return self.instance, FastResponse(
            self.gateway.fast, self.instance.url, self.up, self.route.timeout
        )

    def _failed(self, kind: str, exc: BaseException) -> UpstreamFailed:
        gateway, instance, route, target = self.gateway, self.instance, self.route, self.target
        instance.outstanding -= 1
        instance.breaker.record(False, time.monotonic())
        gateway.metrics.errors[(route.name, target, kind)] += 1
        self.up.closed = True
        self.up.transport.close()
        if kind == "timeout":
            detail = f"{target} did not answer within {route.timeout}s."
            return UpstreamFailed(code="upstream_timeout", detail=detail, status=504)
        detail = f"{target} at {instance.url} failed: {exc.__class__.__name__}."
        return UpstreamFailed(code="upstream_unavailable", detail=detail)

    def _hand_over(self, first) -> None:
        gateway = self.gateway
        self.up.listener = None
        gateway.exchanges.discard(self)
        self.conn.exchange = None
        headers = gateway._forward(self.req, self.table, self.target, self.rid, self.identity)
        self.conn.run_handed_over(
            self.req,
            gateway.proxy_handed_over(
                self.conn, self.req, self.route, self.target, headers, self.rid, self.started,
                first,
            ),
        )  # fmt: skip

    def expire(self) -> None:
        """The route's timeout passed: time out before the answer's head, else hand over."""
        if self.up.headers_done:
            self._hand_over(self._response())
        else:
            self.up.listener = None
            self._hand_over(self._failed("timeout", TimeoutError()))

    def _complete(self) -> None:
        gateway, up, req, conn = self.gateway, self.up, self.req, self.conn
        chunks = up.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        status = up.status
        instance = self.instance
        if instance.breaker.failures:
            instance.breaker.record(True, time.monotonic())
        if not req.keep_alive:
            end = b"\r\nConnection: close\r\n\r\n"
        elif req.version == "1.0":
            end = b"\r\nConnection: keep-alive\r\n\r\n"
        else:
            end = b"\r\n\r\n"
        answer = b"".join(
            (_status_line(status, up.reason), *up.lines, _upstream_line(self.target),
             b"X-Request-ID: ", self.rid_b, end, body)
        )  # fmt: skip
        gateway.exchanges.discard(self)
        instance.outstanding -= 1
        gateway.fast.give_back(instance.url, up)
        conn.exchange = None
        if conn.closed:
            gateway.metrics.errors[(self.route.name, self.target, "client_gone")] += 1
            gateway._finish(req, status, self.rid, self.route, self.target, self.started,
                            None, "client_gone")  # fmt: skip
            return
        conn.transport.write(answer)
        gateway._finish(req, status, self.rid, self.route, self.target, self.started)
        conn.exchange_done(req)
