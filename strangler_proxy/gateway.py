"""The gateway: match a request to a route, pick the half that serves it, and stream the answer.

One event loop per process. The hot path (a `monolith` route, no token, no rate limit) does: one
path check, one table scan, one header copy, one pooled upstream request, and a streamed answer;
everything else (identity, rate limits, shadow mirrors, canary hashing) runs only on the routes
that use it.

Guarantees per request: ``X-Request-ID`` passed through (when sane) or created, and
``X-Strangler-Upstream`` naming the half that answered (``proxy`` when the proxy itself answered).
Safe methods without a body are retried (``retries``, within a budget of 20% of requests) and, on
an ``extracted`` or canary-candidate route with ``fallback = true``, served by the monolith when
the candidate cannot connect, times out or answers 5xx (``X-Strangler-Fallback`` says so).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
import zlib
from collections import deque
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from . import admin
from .auth import EdgeAuth
from .config import ProxyConfig
from .discovery import registry_from_url
from .fastclient import FAST_METHODS, FastPool
from .headers import (
    FALLBACK,
    REQUEST_ID,
    UPSTREAM,
    client_response_headers,
    upstream_request_headers,
)
from .identity import HEADER as IDENTITY_HEADER
from .identity import identity_sign
from .metrics import Metrics
from .paths import PathRefused, path_for_routing, split_target
from .ratelimit import MemoryBuckets, RedisBuckets, retry_after
from .routes import (
    MONOLITH,
    SAFE_METHODS,
    Route,
    RouteTable,
    RouteTableError,
    step0_table,
    table_from_file,
)
from .shadow import ShadowRunner
from .upstreams import Instance, NoInstance, ServicePool

log = logging.getLogger("strangler_proxy")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _UpstreamFailed(Exception):
    def __init__(self, kind: str, detail: str, status: int = 502):
        super().__init__(detail)
        self.kind, self.detail, self.status = kind, detail, status


class RetryBudget:
    """Allow retries up to `ratio` of requests (plus a small floor), so retries cannot storm."""

    def __init__(self, ratio: float = 0.2, floor: float = 10.0):
        self.ratio, self.floor, self.tokens = ratio, floor, floor

    def deposit(self) -> None:
        self.tokens = min(self.floor * 10, self.tokens + self.ratio)

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
        self.auth = EdgeAuth(ttl=config.auth_cache_ttl)
        self.shadow = ShadowRunner(self, concurrency=config.shadow_concurrency)
        self.retry_budget = RetryBudget()
        self.session: aiohttp.ClientSession | None = None
        self.fast = FastPool()
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}
        self._background: list[asyncio.Task] = []
        self._runner: web.ServerRunner | None = None
        self.started_at = time.time()
        self._access = config.access_log

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

    def table_swap(self, *, new: RouteTable, actor: str, reason: str) -> RouteTable:
        """Install `new` atomically and record who changed what; return the old table."""
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
        return old

    def table_reload(self, *, actor: str) -> RouteTable:
        """Re-read the route file and swap it in; if invalid, raise and keep the old table."""
        if not self.config.routes_file:
            raise RouteTableError(
                ["table: the proxy was started without a route file (STRANGLER_ROUTES)"]
            )
        new = table_from_file(self.config.routes_file, monolith_url=self.config.monolith_url)
        self.table_swap(new=new, actor=actor, reason=f"reload {self.config.routes_file}")
        return self.table

    # ----------------------------------------------------------------- lifecycle
    async def start(
        self, *, host: str | None = None, port: int | None = None, reuse_port: bool = False
    ) -> int:
        """Open the upstream pool and listen; return the bound port."""
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        # lingering_time: after answering early (408, 429...) read a client's unread body for at
        # most one second instead of aiohttp's ten, so a slowloris cannot hold the connection.
        server = web.Server(
            self.handle,
            access_log=None,
            max_field_size=16384,
            max_line_size=16384,
            lingering_time=1.0,
        )
        self._runner = web.ServerRunner(server, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, host or self.config.host, self.config.port if port is None else port,
            reuse_port=reuse_port, backlog=1024,
        )  # fmt: skip
        await site.start()
        self._background.append(asyncio.create_task(self._maintain()))
        return site._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await self.shadow.drain(timeout=1.0)
        if self._runner is not None:
            await self._runner.cleanup()
        if self.session is not None:
            await self.session.close()
        self.fast.close()
        await self.registry.close()
        await self.limiter.close()

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
        """Return the proxy's own JSON error response."""
        body = json.dumps({"error": code, "detail": detail, "fields": {}})
        resp = web.Response(
            status=status, text=body, content_type="application/json", headers=headers
        )
        resp.headers[UPSTREAM] = "proxy"
        if request_id:
            resp.headers[REQUEST_ID] = request_id
        return resp

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve one client request."""
        started = time.perf_counter()
        raw_path, query = split_target(request.raw_path)
        if raw_path.startswith("/_strangler"):
            return await admin.handle(self, request, raw_path)
        rid = request.headers.get(REQUEST_ID)
        if rid is None or not _REQUEST_ID_OK.match(rid):
            rid = os.urandom(16).hex()
        try:
            path = path_for_routing(raw_path)
        except PathRefused as exc:
            return self._finish(
                request, self.error(400, "path_refused", str(exc), rid), rid, None, "proxy", started
            )
        table = self.table  # this request's table, whatever happens to self.table meanwhile
        method = request.method
        found = table.match(method, path, request.headers)
        if found is None:
            resp = self.error(404, "no_route", f"No route serves {method} {raw_path}.", rid)
            return self._finish(request, resp, rid, None, "proxy", started)
        route = found[0]
        identity = None
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            identity = await self.auth.identify(
                authorization=authorization, session=self.session, monolith_url=self._monolith_url()
            )
        if route.rate_limit is not None:
            caller = f"user:{identity.user_id}" if identity else f"addr:{request.remote}"
            wait = await self.limiter.take(
                key=f"{route.rate_limit}:{caller}", limit=table.rate_limits[route.rate_limit]
            )
            if wait > 0:
                self.metrics.rate_limited[route.name] += 1
                detail = f"Too many requests for {route.rate_limit!r}; retry later."
                resp = self.error(429, "rate_limited", detail, rid,
                                  headers={"Retry-After": retry_after(wait)})  # fmt: skip
                return self._finish(request, resp, rid, route, "proxy", started)
        if self.config.aggregate_path == path and method == "GET":
            from .aggregate import overview

            resp = await overview(self, request, table=table, rid=rid, identity=identity)
            return self._finish(request, resp, rid, route, "aggregate", started)
        target = self.choose_target(route, identity, request.remote)
        headers = upstream_request_headers(
            request.raw_headers, client_host=request.host, client_addr=request.remote,
            scheme=request.scheme, request_id=rid,
            preserve_host=table.services[target].preserve_host,
        )  # fmt: skip
        if identity is not None and self.config.identity_secret:
            headers[IDENTITY_HEADER] = identity_sign(
                identity=identity, secret=self.config.identity_secret, ttl=self.config.identity_ttl
            )
        try:
            return await self._proxy(
                request, route, target, raw_path + query, headers, rid, started
            )
        except _UpstreamFailed as exc:
            resp = self.error(exc.status, exc.kind, exc.detail, rid)
            if exc.status == 408:
                resp.force_close()  # the rest of the body may still trickle in: do not wait for it
            return self._finish(request, resp, rid, route, target, started)

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
        self, pool: ServicePool, method: str, target: str, headers, body, route: Route
    ):
        """Send one request to one instance; return (instance, response) or raise."""
        try:
            instance = pool.pick()
        except NoInstance as exc:
            raise _UpstreamFailed("upstream_unavailable", str(exc), 503) from None
        instance.outstanding += 1
        try:
            if body is None and method in FAST_METHODS:
                resp = await self.fast.request(
                    url=instance.url, host=instance.host, method=method, target=target,
                    headers=headers, connect_timeout=route.connect_timeout,
                    read_timeout=route.timeout,
                )  # fmt: skip
            else:
                resp = await self.session.request(
                    method, URL(instance.url + target, encoded=True), headers=headers, data=body,
                    allow_redirects=False, timeout=self._timeout(route), compress=None,
                )  # fmt: skip
        except TimeoutError:
            instance.outstanding -= 1
            instance.breaker.record(False, time.monotonic())
            self.metrics.errors[(route.name, pool.name, "timeout")] += 1
            raise _UpstreamFailed(
                "upstream_timeout", f"{pool.name} did not answer within {route.timeout}s.", 504
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            instance.outstanding -= 1
            instance.breaker.record(False, time.monotonic())
            self.metrics.errors[(route.name, pool.name, "connect")] += 1
            raise _UpstreamFailed(
                "upstream_unavailable",
                f"{pool.name} at {instance.url} failed: {exc.__class__.__name__}.",
            ) from None
        if resp.status >= 500:
            instance.breaker.record(False, time.monotonic())
            self.metrics.errors[(route.name, pool.name, "5xx")] += 1
        elif instance.breaker.state != "closed" or instance.breaker.failures:
            instance.breaker.record(True, time.monotonic())
        return instance, resp

    async def _proxy(
        self,
        request,
        route: Route,
        target: str,
        upstream_target: str,
        headers,
        rid: str,
        started: float,
    ):
        method = request.method
        has_body = request.body_exists
        if has_body and request.headers.get("Expect", "").lower() == "100-continue":
            # The proxy answers Expect itself (and does not forward it): the client may now send
            # the body, which streams on to the upstream as it arrives.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
        body = _GuardedBody(request.content, self.config.body_idle_timeout) if has_body else None
        retryable = method in SAFE_METHODS and not has_body
        self.retry_budget.deposit()
        fallback_from = None
        retries = 0
        while True:
            pool = self.pools[target]
            can_fallback = (
                retryable and route.fallback and target != MONOLITH and fallback_from is None
            )
            can_retry = retryable and retries < route.retries
            try:
                instance, resp = await self._attempt(
                    pool, method, upstream_target, headers, body, route
                )
            except _UpstreamFailed as exc:
                if body is not None and body.timed_out:
                    raise _UpstreamFailed(
                        "request_timeout", "The request body arrived too slowly.", 408
                    ) from None
                if can_retry and self.retry_budget.withdraw():
                    retries += 1
                    self.metrics.retries[route.name] += 1
                    continue
                if can_fallback:
                    fallback_from = f"{target}: {exc.kind}"
                    self.metrics.fallbacks[(route.name, target)] += 1
                    target, retries = MONOLITH, 0
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
                continue
            break
        try:
            return await self._relay(
                request, route, target, upstream_target, headers, resp, rid, started, fallback_from
            )
        finally:
            instance.outstanding -= 1
            resp.release()

    async def _relay(
        self, request, route, target, upstream_target, headers, resp, rid, started, fallback_from
    ):
        """Stream the upstream answer to the client, capturing it if a shadow compare needs it."""
        out = _Relayed(status=resp.status, reason=resp.reason)
        out_headers = out.headers
        for name, value in client_response_headers(resp.raw_headers):
            out_headers.add(name, value)
        out_headers[UPSTREAM] = target
        out_headers[REQUEST_ID] = rid
        if fallback_from:
            out_headers[FALLBACK] = fallback_from
        capture = route.mode == "shadow" and request.method in SAFE_METHODS
        captured: list[bytes] | None = [] if capture else None
        length = resp.content_length
        try:
            if length is not None and length <= _SMALL_BODY:
                # Read first, then answer in one send; a broken body becomes a clean 502/504.
                body = await self._read_small(resp, route, target)
                await out.prepare(request)
                await out.write_eof(body)
                if captured is not None:
                    captured.append(body)
            else:
                await out.prepare(request)
                size, limit = 0, self.config.shadow_body_limit
                async for chunk in resp.content.iter_any():
                    await out.write(chunk)
                    if captured is not None:
                        size += len(chunk)
                        captured = None if size > limit else [*captured, chunk]
                await out.write_eof()
        except ConnectionResetError:
            # The client went away mid-answer: nothing left to tell it; count it and move on.
            self.metrics.errors[(route.name, target, "client_gone")] += 1
            return self._finish(
                request, out, rid, route, target, started, fallback_from, "client_gone"
            )
        shadow = None
        if capture:
            if captured is None:
                shadow = "too_large"
            else:
                primary = (
                    resp.status,
                    {k.lower(): v for k, v in resp.headers.items()},
                    b"".join(captured),
                )
                shadow = self.shadow.submit(
                    route=route,
                    method=request.method,
                    target=upstream_target,
                    headers=headers,
                    primary=primary,
                )
        return self._finish(request, out, rid, route, target, started, fallback_from, shadow)

    async def _read_small(self, resp, route: Route, target: str) -> bytes:
        try:
            return await resp.content.read()
        except TimeoutError:
            self.metrics.errors[(route.name, target, "timeout")] += 1
            raise _UpstreamFailed(
                "upstream_timeout", f"{target} stalled mid-answer.", 504
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            self.metrics.errors[(route.name, target, "broken_body")] += 1
            detail = f"{target} broke off its answer: {exc}."
            raise _UpstreamFailed("upstream_unavailable", detail) from None

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

    def _finish(self, request, resp, rid, route, upstream, started, fallback=None, shadow=None):
        elapsed = time.perf_counter() - started
        route_name = route.name if route is not None else "-"
        self.metrics.observe(route_name, upstream, resp.status, elapsed)
        if self._access:
            line = {
                "ts": round(time.time(), 3), "request_id": rid, "method": request.method,
                "path": request.path, "route": route_name, "mode": route.mode if route else "-",
                "upstream": upstream, "status": resp.status, "ms": round(elapsed * 1000, 3),
                "client": request.remote,
            }  # fmt: skip
            if fallback:
                line["fallback"] = fallback
            if shadow:
                line["shadow"] = shadow
            sys.stdout.write(json.dumps(line) + "\n")
        return resp


_SMALL_BODY = 64 * 1024


class _Relayed(web.StreamResponse):
    """A streamed response whose headers leave with the first body bytes (one send, not two)."""

    _send_headers_immediately = False


class _BodyTimeout(Exception):
    pass


class _GuardedBody:
    """The client's body as an async iterable that fails when a chunk takes over `idle` seconds.

    Guards against slowloris-style bodies: without it a client trickling bytes would hold an
    upstream connection for ever.
    """

    def __init__(self, content, idle: float):
        self.content, self.idle, self.timed_out = content, idle, False

    def __aiter__(self):
        return self._chunks()

    async def _chunks(self):
        while True:
            try:
                chunk = await asyncio.wait_for(self.content.readany(), self.idle)
            except TimeoutError:
                self.timed_out = True
                raise _BodyTimeout(f"no body bytes for {self.idle}s") from None
            if not chunk:
                return
            yield chunk
