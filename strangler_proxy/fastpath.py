"""The fast path: a request served on protocol callbacks alone, no task, future or timer.

It takes GET/OPTIONS without a body, no token or one the auth cache knows, a route in
``monolith``, ``extracted`` or ``canary`` mode without a rate limit (and, when the route records,
a request not drawn for the sample), an instance whose breaker is closed and an idle pooled
connection to it. The upstream request head is joined from header lines prepared while parsing;
an answer under 64 KiB with a Content-Length leaves in one write. Anything unusual (5xx, a large
or chunked body, a broken connection, the route's timeout: swept every 50 ms, so up to 50 ms
late) hands the request to the general path (forwarding.py) where it stands: it retries, falls
back and streams exactly as for any request.

Routing decisions are remembered for the table in force under (method, raw path), unless a
route matches on headers; at most 4,096 entries of paths up to 256 characters. A new table
starts with none, so a switch needs no invalidation.
"""

from __future__ import annotations

import random
import time

from .accesslog import AccessLog
from .auth import EdgeAuth, token_key
from .errors import UpstreamFailed
from .fastclient import FAST_METHODS, FastPool, FastResponse, LinesHeaders
from .forwarding import SMALL_BODY, Forward, Forwarder, proxy_lines, status_line, upstream_line
from .headers import RequestIds
from .interfaces import Mirror, TableSource
from .metrics import Metrics
from .paths import PathRefused, path_for_routing
from .request import Request
from .routes import MONOLITH, Route, RouteTable
from .server import HttpConnection
from .signing import IdentitySigner, signed_path
from .upstreams import Instance, NoInstance


class FastPath:
    """Serve the requests that need nothing unusual, on callbacks."""

    def __init__(
        self, *, tables: TableSource, auth: EdgeAuth, forwarder: Forwarder, pool: FastPool,
        signer: IdentitySigner, log: AccessLog, metrics: Metrics, request_ids: RequestIds,
        aggregate_path: str, mirror: Mirror,
    ):  # fmt: skip
        self.tables, self.auth, self.forwarder, self.pool = tables, auth, forwarder, pool
        self.pools = forwarder.pools
        self.signer, self.log, self.metrics, self.request_ids = signer, log, metrics, request_ids
        self.aggregate_path, self.mirror = aggregate_path, mirror
        self._deposit = forwarder.budget.deposit
        self.exchanges: set[_Exchange] = set()
        self.served = 0  # requests the fast path took (tests and the benchmark read it)
        # The routing decisions for the table in force (see _fast_decide).
        self._decided_for: RouteTable | None = None
        self._decided: dict[tuple[str, str], Route | bool] = {}

    def expire(self) -> None:
        """Time out exchanges whose upstream is later than their route allows."""
        if self.exchanges:
            now = time.perf_counter()
            for exchange in list(self.exchanges):
                if now - exchange.started > exchange.route.timeout:
                    exchange.expire()

    def fast_serve(self, conn: HttpConnection, req: Request) -> bool:
        """Start serving `req` without a task if it is on the lean path; return whether it did.

        The lean path: GET/OPTIONS without a body, no token or one the auth cache knows, a
        route in ``monolith``, ``extracted`` or ``canary`` mode without a rate limit, and an
        instance whose breaker is closed. With an idle pooled connection to it, the exchange
        runs on protocol callbacks alone (no task, no future, no timer); without one, or when
        anything in the answer is unusual (5xx, a large or chunked body, a broken connection, a
        timeout), the general path (forwarding.py) takes over where it stands and retries,
        falls back and streams exactly as for any request.
        """
        method = req.method
        if method not in FAST_METHODS:
            return False
        identity = None
        authorization = req.authorization
        if authorization is not None:
            # A keep-alive connection sends the same token again and again: its cache key is
            # kept with the connection (and goes with it), not hashed per request.
            memo = conn.memo
            if memo is not None and memo[0] == authorization:
                key = memo[1]
            else:
                key = token_key(authorization.decode("latin-1"))
                conn.memo = (authorization, key)
            known, identity = self.auth.peek_key(key)
            if not known:
                return False  # a token not yet vouched for: the general path asks the monolith
        table = self.tables.table
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
        target = MONOLITH if mode == "monolith" else route.target(identity, remote)
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
        rid = self.request_ids.for_request(req.request_id)
        up = self.pool.take_idle(instance.url)
        if up is None:
            # No idle connection yet: the general path connects, to the instance chosen here.
            headers = self.forwarder.headers_for(req, table, target, rid, identity)
            conn.run_handed_over(req, self.forwarder.proxy_handed_over(
                conn, req, route, target, headers, rid, started, None, pinned=instance
            ))  # fmt: skip
            return True
        rid_b = rid.encode()
        # The bytes of _forward's block, joined in one go without a Forward (the general path
        # builds one from the request if it takes over).
        preserve = req.host is not None and table.services[target].preserve_host
        ours = proxy_lines(req, conn.remote_b, preserve, rid_b)
        vouch = (
            b"" if identity is None
            else self.signer.line(identity, target, method, signed_path(raw_path))
        )  # fmt: skip
        head = b"".join(
            (method.encode(), b" ", req.raw_target, b" HTTP/1.1\r\n",
             b"" if preserve else instance.host_line, *req.forward_lines(), ours, vouch, b"\r\n")
        )  # fmt: skip
        instance.outstanding += 1
        self._deposit()  # the retry budget
        self.served += 1
        exchange = _Exchange(
            self, conn, req, route, target, table, identity, rid, rid_b, started, instance, up
        )
        if route.mode == "shadow":
            exchange.tail = (ours, vouch, preserve)  # the mirror's headers are made of them
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
                if route.rate_limit is None and path != self.aggregate_path:
                    decided = route
        if not table.matches_headers and len(raw_path) <= 256:
            cache = self._decided
            if len(cache) >= 4096:
                cache.clear()
            cache[(method, raw_path)] = decided
        return decided


class _Exchange:
    """One request on the fast path, driven by the upstream connection's parser callbacks."""

    __slots__ = (
        "conn", "fast", "identity", "instance", "req", "rid", "rid_b", "route", "started",
        "table", "tail", "target", "up",
    )  # fmt: skip

    def __init__(
        self, fast: FastPath, conn: HttpConnection, req: Request, route: Route, target: str,
        table: RouteTable, identity, rid: str, rid_b: bytes, started: float, instance: Instance,
        up,
    ):  # fmt: skip
        self.fast, self.conn, self.req, self.route = fast, conn, req, route
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
            or (length is not None and length > SMALL_BODY)
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
        self.fast.forwarder.judge(self.instance, self.target, self.route, self.up.status)
        return self.instance, FastResponse(
            self.fast.pool, self.instance.url, self.up, self.route.timeout
        )

    def _failed(self, kind: str, exc: BaseException) -> UpstreamFailed:
        fast, instance, route, target = self.fast, self.instance, self.route, self.target
        instance.outstanding -= 1
        instance.breaker.record(False, time.monotonic())
        fast.metrics.errors[(route.name, target, kind)] += 1
        self.up.closed = True
        self.up.transport.close()
        if kind == "timeout":
            detail = f"{target} did not answer within {route.timeout}s."
            return UpstreamFailed(code="upstream_timeout", detail=detail, status=504)
        detail = f"{target} at {instance.url} failed: {exc.__class__.__name__}."
        return UpstreamFailed(code="upstream_unavailable", detail=detail)

    def _hand_over(self, first) -> None:
        fast = self.fast
        self.up.listener = None
        fast.exchanges.discard(self)
        self.conn.exchange = None
        forwarder = fast.forwarder
        headers = forwarder.headers_for(self.req, self.table, self.target, self.rid, self.identity)
        self.conn.run_handed_over(
            self.req,
            forwarder.proxy_handed_over(
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
        fast, up, req, conn = self.fast, self.up, self.req, self.conn
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
            (status_line(status, up.reason), *up.lines, upstream_line(self.target),
             b"X-Request-ID: ", self.rid_b, end, body)
        )  # fmt: skip
        fast.exchanges.discard(self)
        instance.outstanding -= 1
        fast.pool.give_back(instance.url, up)
        conn.exchange = None
        if conn.closed:
            fast.metrics.errors[(self.route.name, self.target, "client_gone")] += 1
            fast.log.finish(req, status, self.rid, self.route, self.target, self.started,
                            None, "client_gone")  # fmt: skip
            return
        conn.transport.write(answer)
        shadow = None
        if self.route.mode == "shadow" and status < 500:
            shadow = self._mirror(status, up.lines, body)
        fast.log.finish(req, status, self.rid, self.route, self.target, self.started, None, shadow)
        conn.exchange_done(req)

    def _mirror(self, status: int, lines: list[bytes], body: bytes) -> str:
        """Hand the answer the client just got to the shadow mirror; return its outcome."""
        req, route = self.req, self.route
        ours, vouch, preserve = self.tail
        identity = self.identity
        headers = Forward(
            req.forward_lines(), [ours, vouch], preserve, self.fast.signer, identity, req.method,
            None if identity is None else signed_path(req.path),
        )  # fmt: skip
        return self.fast.mirror.submit(
            route=route, method=req.method, target=req.target, headers=headers,
            primary=(status, LinesHeaders(lines), body),
        )  # fmt: skip
