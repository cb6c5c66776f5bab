"""The general path: send a request upstream (retries, budget, fallback) and relay the answer.

* Attempts: GET/OPTIONS without a body through the lean pooled client (fastclient.py), anything
  else through aiohttp's client, the body streamed as it arrives. Each instance's breaker hears
  every outcome; a connect error, a timeout and a 5xx count as failures.
* Retries: safe methods without a body, up to the route's ``retries``, within a budget of 20% of
  requests (plus a floor of 10), so retries cannot multiply an outage.
* Fallback: on an ``extracted`` or canary-candidate route with ``fallback = true``, a safe
  request the candidate cannot serve (connect error, timeout, 5xx) goes to the monolith, with
  an identity signed for it; ``X-Strangler-Fallback`` says so.
* Relay: hop-by-hop headers and those the proxy sets are dropped (headers.py); answers with a
  ``Content-Length`` up to 64 KiB are read whole and leave in one send, others stream (re-chunked
  for HTTP/1.1 clients, delimited by the close for HTTP/1.0 ones). A shadowed route's answer is
  captured and handed to the mirror; a recorded exchange to the recorder; a 2xx answer to a
  login, logout or password change to the auth events, before the client has it.

``Forwarder.fetch`` (a buffered request) is what the shadow mirror and the overview ask halves
with (interfaces.Upstreams).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from service_kit.identity import Identity

from .accesslog import AccessLog
from .auth_events import AuthEvents
from .errors import BodyTimeout, UpstreamFailed, error_head
from .fastclient import FAST_METHODS, FastPool
from .headers import FALLBACK, RESPONSE_DROP, UPSTREAM
from .interfaces import Mirror, TableSource
from .metrics import Metrics
from .recording import Recorder
from .redaction import Redactor
from .request import Request
from .routes import MONOLITH, SAFE_METHODS, Route, RouteTable
from .server import HttpConnection
from .signing import IdentitySigner, signed_path
from .upstreams import Instance, NoInstance, ServicePool, UpstreamPools

SMALL_BODY = 64 * 1024  # answers up to this size are read whole and leave in one send
_STATUS_LINES: dict[int, tuple[bytes, bytes]] = {}  # status: (reason, the line), the latest
_UPSTREAM_LINES: dict[str, bytes] = {}


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


def _retarget(headers, service: str):
    """Return `headers` with the identity signed for `service` (a Forward; others as they are)."""
    return headers.retarget(service) if type(headers) is Forward else headers


_STATUS_LINES: dict[int, tuple[bytes, bytes]] = {}  # status: (reason, the line), the latest
_UPSTREAM_LINES: dict[str, bytes] = {}


def status_line(status: int, reason: bytes) -> bytes:
    """Return ``HTTP/1.1 <status> <reason>\\r\\n``, remembered per status for its latest reason."""
    known = _STATUS_LINES.get(status)
    if known is not None and known[0] == reason:
        return known[1]
    line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
    if 100 <= status <= 999:
        _STATUS_LINES[status] = (reason, line)
    return line


def upstream_line(target: str) -> bytes:
    line = _UPSTREAM_LINES.get(target)
    if line is None:
        line = _UPSTREAM_LINES[target] = f"{UPSTREAM}: {target}\r\n".encode("latin-1")
    return line


def proxy_lines(req: Request, remote_b: bytes, preserve: bool, rid_b: bytes) -> bytes:
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

    __slots__ = ("_block", "identity", "lines", "method", "path", "preserve_host", "signer",
                 "tail")  # fmt: skip

    def __init__(
        self, lines: list[bytes], tail: list[bytes], preserve_host: bool,
        signer: IdentitySigner | None = None, identity: Identity | None = None,
        method: str = "", path: str | None = None,
    ):  # fmt: skip
        self.lines, self.tail, self.preserve_host = lines, tail, preserve_host
        self.signer, self.identity, self.method, self.path = signer, identity, method, path
        self._block: bytes | None = None

    def retarget(self, service: str) -> Forward:
        """Return these headers with the identity signed for `service` instead."""
        if self.identity is None or self.signer is None:
            return self
        line = self.signer.line(self.identity, service, self.method, self.path)
        return Forward(self.lines, [self.tail[0], line], self.preserve_host, self.signer,
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


class Forwarder:
    """Send requests upstream and relay the answers; one per process."""

    def __init__(
        self, *, pools: UpstreamPools, fast: FastPool, metrics: Metrics, log: AccessLog,
        signer: IdentitySigner, mirror: Mirror, recorder: Recorder,
        redactors: Callable[[Route], Redactor], events: AuthEvents, tables: TableSource,
        body_idle_timeout: float, capture_limit: int,
    ):  # fmt: skip
        self.pools, self.fast, self.metrics, self.log = pools, fast, metrics, log
        self.signer, self.mirror, self.recorder = signer, mirror, recorder
        self.redactors = redactors  # a route's deny-list, for recordings
        self.events, self.tables = events, tables
        self.body_idle_timeout, self.capture_limit = body_idle_timeout, capture_limit
        self.budget = RetryBudget()
        self.session: aiohttp.ClientSession | None = None  # opened by the gateway's start
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    def _timeout(self, route: Route) -> aiohttp.ClientTimeout:
        key = (route.connect_timeout, route.timeout)
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, sock_connect=route.connect_timeout, sock_read=route.timeout
            )
        return timeout

    def refuse(
        self, conn: HttpConnection, req: Request, status: int, code: str, detail: str, rid: str,
        route: Route | None, started: float, extra: list | None = None,
    ) -> None:  # fmt: skip
        """Answer `req` with the proxy's own JSON error (errors.py), and count and log it."""
        if status == 408:
            req.keep_alive = False  # the rest of the body may still trickle in: do not wait for it
        conn.write(
            error_head(status, code, detail, rid, close=not req.keep_alive, headers=extra or ())
        )
        self.log.finish(req, status, rid, route, "proxy", started)

    def headers_for(
        self, req: Request, table: RouteTable, target: str, rid: str, identity,
        path: str | None = None,
    ) -> Forward:  # fmt: skip
        """Return the headers `req` carries to `target`: the client's, less hop-by-hop, and ours.

        `path` is the decoded path the identity is signed for (derived from `req` if None).
        """
        preserve = req.host is not None and table.services[target].preserve_host
        if path is None and identity is not None:
            path = signed_path(req.path)
        tail = [
            proxy_lines(req, req.remote.encode(), preserve, rid.encode()),
            self.signer.line(identity, target, req.method, path),
        ]
        return Forward(req.forward_lines(), tail, preserve, self.signer, identity, req.method, path)

    async def attempt(
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
                    data=None if body is None else body.chunks_iter(self.body_idle_timeout),
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
        self.judge(instance, pool.name, route, resp.status)
        return instance, resp

    def judge(self, instance: Instance, service: str, route: Route, status: int) -> None:
        """Feed an answer's status to the instance's breaker and the error metrics."""
        if instance.judge(status):
            self.metrics.errors[(route.name, service, "5xx")] += 1

    async def proxy_handed_over(
        self, conn: HttpConnection, req: Request, route: Route, target: str, headers: Forward,
        rid: str, started: float, first, pinned: Instance | None = None,
    ) -> None:  # fmt: skip
        """Finish a request the fast path handed over, from the outcome it had reached."""
        try:
            await self.proxy(
                conn, req, route, target, req.target, headers, rid, started, first, pinned
            )
        except UpstreamFailed as exc:
            self.refuse(conn, req, exc.status, exc.code, exc.detail, rid, route, started)

    async def proxy(
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
            self.budget.deposit()  # else the fast path did
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
                    instance, resp = await self.attempt(
                        pool, method, upstream_target, headers, body, route, pin
                    )
            except UpstreamFailed as exc:
                if exc.status == 408:
                    raise
                if can_retry and self.budget.withdraw():
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
            if resp.status >= 500 and can_retry and self.budget.withdraw():
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
            await self.relay(
                conn, req, route, target, upstream_target, headers, resp, rid, started,
                fallback_from, record,
            )  # fmt: skip
        finally:
            instance.outstanding -= 1
            resp.release()

    async def relay(
        self, conn: HttpConnection, req: Request, route: Route, target: str,
        upstream_target: str, headers, resp, rid: str, started: float, fallback_from,
        record: bool = False,
    ) -> None:  # fmt: skip
        """Stream the answer to the client, capturing it for a shadow compare or a recording."""
        status = resp.status
        lines = [status_line(status, (resp.reason or "").encode("latin-1", "replace"))]
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
        lines.append(upstream_line(target))
        lines.append(b"X-Request-ID: " + rid.encode() + b"\r\n")
        if fallback_from:
            lines.append(f"{FALLBACK}: {fallback_from}\r\n".encode("latin-1"))
        if 200 <= status < 300 and req.method in self.events.methods:
            # Before the client has its answer (a logout revokes its token everywhere).
            identity = headers.identity if type(headers) is Forward else None
            await self.events.answered(req, status, identity, self.tables.table)
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
        if no_body or (length is not None and length <= SMALL_BODY):
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
                return self.log.finish(req, status, rid, route, target, started, fallback_from,
                                    "client_gone")  # fmt: skip
        else:
            if chunked and req.version == "1.1":
                lines.append(b"Transfer-Encoding: chunked\r\n")
            lines.append(b"\r\n")
            framed = chunked and req.version == "1.1"
            size, limit = 0, self.capture_limit
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
                return self.log.finish(req, status, rid, route, target, started, fallback_from,
                                    "client_gone")  # fmt: skip
            except (TimeoutError, aiohttp.ClientError, OSError):
                # The head has left: the only way to say the body broke is to close the connection.
                self.metrics.errors[(route.name, target, "broken_body")] += 1
                req.keep_alive = False
                conn.transport.close()
                return self.log.finish(req, status, rid, route, target, started, fallback_from)
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
                shadow = self.mirror.submit(
                    route=route, method=req.method, target=upstream_target, headers=headers,
                    primary=primary,
                )  # fmt: skip
        self.log.finish(req, status, rid, route, target, started, fallback_from, shadow)

    def _record(self, req: Request, route: Route, status: int, resp, captured) -> None:
        """Keep the exchange just answered as a replayable line (recording.py)."""
        self.recorder.add(
            redactor=self.redactors(route), route=route.name, method=req.method,
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
        instance, resp = await self.attempt(pool, method, target, headers, None, route)
        try:
            body = await resp.content.read(self.capture_limit + 1)
            return (
                resp.status,
                {k.lower(): v for k, v in resp.headers.items()},
                body,
            ), instance.url
        finally:
            instance.outstanding -= 1
            resp.release()
