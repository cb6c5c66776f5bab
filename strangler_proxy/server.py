"""The client-facing HTTP/1.1 server: an asyncio Protocol on httptools, one per connection.

It replaces aiohttp's server side on the request path, because that side cost more CPU per
request than everything else the proxy does (docs/proxy.md, "Performance"). It parses requests,
queues them in order (keep-alive and pipelining: answers leave in request order), streams request
bodies with back-pressure, and hands each request to its ``RequestHandler`` (the pipeline):
``fast_serve`` first, on the protocol's callbacks, else ``serve`` in one task per burst of
requests on a connection. It knows bytes, limits and order; nothing of routes.

* Request head: request line and each header at most 16 KiB (414 / 431), the whole head at most
  64 KiB (431); a head that does not arrive within ``head_timeout`` seconds gets 408; invalid
  HTTP, and a request target holding ``#`` (a fragment is never sent to a server, and a half
  would read the path differently), get 400; each closes the connection once the answers before
  it have left.
* Chunked trailers: each at most 16 KiB, at most 128 of them, and head and trailers together at
  most 64 KiB (431); they are counted, then dropped (``Trailers``): never a request header,
  whatever their name. A request without a chunked body pays nothing for this.
* Body: ``BodyStream`` holds at most 256 KiB before reading pauses; a reader waiting longer than
  the idle timeout for the next chunk gets ``BodyTimeout`` (slowloris). After an answer that left
  part of the body unread, the rest is read and dropped for at most ``linger`` seconds, then the
  connection closes.
* Idle keep-alive connections close after ``keepalive_timeout`` seconds.
* Request headers are classified once, while parsed: hop-by-hop and proxy-owned headers are set
  aside, every other header is kept as its ready-to-send line, so forwarding a request joins bytes
  instead of copying a dict.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Protocol

import httptools

from .errors import BodyTimeout, HeadRefused, error_head
from .headers import IDENTITY_PREFIX_B, REQUEST_KINDS
from .request import BodyStream, Request, Trailers

log = logging.getLogger("strangler_proxy")
MAX_LINE = 16 * 1024
MAX_HEAD = 64 * 1024
_HASH = ord("#")
_MAX_QUEUED = 32

# The kind of each header name as clients spell it ("forward", "identity" or a REQUEST_KINDS
# kind): names repeat from one request to the next, so each spelling is classified once (at most
# 1,024 names of at most 64 bytes: a client sending made-up names only fills it, never grows it).
_HEADER_KINDS: dict[bytes, str] = {}
_HEADER_KINDS_MAX = 1024


def _header_kind(name: bytes) -> str:
    lower = name.lower()
    kind = REQUEST_KINDS.get(lower)
    if kind is None:
        kind = "identity" if lower.startswith(IDENTITY_PREFIX_B) else "forward"
    if len(_HEADER_KINDS) < _HEADER_KINDS_MAX and len(name) <= 64:
        _HEADER_KINDS[name] = kind
    return kind


class RequestHandler(Protocol):
    """What serves the requests the front server parses (the pipeline, pipeline.py)."""

    def fast_serve(self, conn: HttpConnection, req: Request) -> bool:
        """Start answering `req` without a task, or return False: `serve` then has it."""

    def serve(self, conn: HttpConnection, req: Request) -> Awaitable[None]:
        """Answer `req`; called in request order, one request of a connection at a time."""


class HttpConnection(asyncio.Protocol):
    """One client connection: parse, queue in order, hand each request to the handler."""

    def __init__(self, server: FrontServer, loop: asyncio.AbstractEventLoop):
        self.server = server
        self.handler = server.handler
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Request] = deque()
        self.current: Request | None = None  # being parsed
        self.runner: asyncio.Task | None = None
        self.exchange = None  # a request on the handler's fast path (no task), if any
        self.memo = None  # what the handler keeps per connection (the pipeline: a token's key)
        self.remote = ""
        self.remote_b = b""  # the client's address as bytes, for X-Forwarded-For
        self.closed = False
        self.refused: HeadRefused | None = None
        self.deaf = False
        self.last: Request | None = None  # the latest request whose head was parsed
        self.in_head = False
        self.head_bytes = 0
        self.head_started = 0.0
        # After a chunk's header, until its data: the bytes of what may be the last chunk's
        # trailers, which count against MAX_HEAD with the head (see data_received).
        self.trailing = False
        self.trailer_bytes = 0
        self.idle_since = loop.time()
        self._url = b""
        self._method_b = b""
        self._method = ""
        self._paused = 0
        self._drain: asyncio.Future | None = None
        self._write_paused = False

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if peer else ""
        self.remote_b = self.remote.encode()
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.refused is not None or self.deaf:
            return
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:
                too_large = HeadRefused(
                    status=431, code="header_too_large", detail="The request head is too large."
                )
                self._refuse(too_large)
                return
        try:
            self.parser.feed_data(data)
            if self.in_head and not self.head_started:
                # A head split over packets: the head timeout counts from now. (A head that
                # arrives whole, the usual case, never reads the clock.)
                self.head_started = self.loop.time()
            if self.trailing:
                # A chunk header and no data since: these bytes went to the last chunk's
                # trailers (the parser holds a trailer whole before it calls on_header).
                self.trailer_bytes += len(data)
                if self.head_bytes + self.trailer_bytes > MAX_HEAD:
                    self._refuse(
                        HeadRefused(
                            status=431,
                            code="header_too_large",
                            detail="The request head and trailers are too large.",
                        )
                    )
                    return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, HeadRefused):
                self._refuse(cause)
            else:  # a bug must cost this connection, never the server
                log.error("parsing a request failed", exc_info=cause or exc)
                self.transport.close()
        except httptools.HttpParserUpgrade:
            # The request parsed; what follows is another protocol we do not speak: answer it,
            # then close, and read nothing more.
            self.deaf = True
            if self.last is not None:
                self.last.keep_alive = False
        except httptools.HttpParserError as exc:
            self._refuse(
                HeadRefused(status=400, code="bad_request", detail=f"Invalid HTTP request: {exc}.")
            )

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server.connections.discard(self)
        gone = ConnectionResetError("the client closed the connection")
        for req in self.queue:
            if req.body is not None and not req.body.done:
                req.body.fail(gone)
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(gone)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # ------------------------------------------------------------------ httptools callbacks
    def on_message_begin(self) -> None:
        self.current = Request()
        self._url = b""
        self.in_head = True
        self.head_bytes = 0
        self.head_started = 0.0  # set by data_received if the head does not arrive whole

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_LINE:
            raise HeadRefused(
                status=414,
                code="uri_too_long",
                detail=f"The request target is over {MAX_LINE} bytes.",
            )
        if _HASH in url:  # an int: bytes membership then skips building a TypeError
            raise HeadRefused(
                status=400,
                code="bad_request",
                detail="The request target holds '#': a fragment is never sent.",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.current
        if len(name) + len(value) > MAX_LINE:
            raise HeadRefused(
                status=431,
                code="header_too_large",
                detail=f"A request header is over {MAX_LINE} bytes.",
            )
        kind = _HEADER_KINDS.get(name)
        if kind is None:
            kind = _header_kind(name)
        if kind == "forward":
            req.forward.append(name + b": " + value + b"\r\n")
            return
        if kind == "identity":  # only the proxy signs identity
            return
        if kind == "host":
            req.host = value
        elif kind == "authorization":
            req.authorization = value
            req.forward.append(name + b": " + value + b"\r\n")
        elif kind == "content-length":
            req.forward.append(name + b": " + value + b"\r\n")
            if value.strip() not in (b"0", b""):
                req.body = req.body or BodyStream(self)
        elif kind == "transfer-encoding":
            req.body = req.body or BodyStream(self)
        elif kind == "xff":
            req.xff = value
        elif kind == "rid":
            req.request_id = value
        elif kind == "expect":
            req.expect_continue = value.strip().lower() == b"100-continue"
        elif kind == "connection":
            tokens = req.connection_tokens
            if tokens is None:
                tokens = req.connection_tokens = []
            tokens.extend(t.strip().lower() for t in value.split(b","))

    def on_headers_complete(self) -> None:
        req = self.current
        parser = self.parser
        method = parser.get_method()
        if method == self._method_b:  # the connection's previous method: reuse its str
            req.method = self._method
        else:
            req.method = self._method = method.decode("ascii", "replace")
            self._method_b = method
        req.version = parser.get_http_version()
        req.keep_alive = parser.should_keep_alive()
        req.raw_target = url = self._url
        req.target = target = url.decode("latin-1")
        cut = target.find("?")
        req.path = target if cut < 0 else target[:cut]
        req.remote = self.remote
        self.in_head = False
        self.last = req
        if (
            req.body is None
            and self.runner is None
            and self.exchange is None
            and not self.queue
            and self.handler.fast_serve(self, req)
        ):
            return
        self.queue.append(req)
        if len(self.queue) > _MAX_QUEUED:
            self.pause(2)
        if self.runner is None and self.exchange is None:
            self.runner = self.loop.create_task(self._run())

    def on_body(self, body: bytes) -> None:
        self.trailing = False
        stream = self.current.body
        if stream is not None:
            stream.feed(body)

    def on_chunk_header(self) -> None:
        self.trailing = True  # until data comes: the last chunk has none, only trailers
        current = self.current
        if type(current) is not Trailers:
            # From the first chunk on, header callbacks can only be trailers: they go to a sink.
            self.current = Trailers(current)
            self.trailer_bytes = 0

    def on_chunk_complete(self) -> None:
        self.trailing = False

    def on_message_complete(self) -> None:
        req = self.current
        if req is not None and req.body is not None:
            req.body.finish()
        self.current = None

    # ------------------------------------------------------------------ flow control
    def pause(self, reason: int) -> None:
        if not self._paused and not self.closed:
            self.transport.pause_reading()
        self._paused |= reason

    def resume(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and not self.closed:
                self.transport.resume_reading()

    async def drain(self) -> None:
        """Wait until the client has taken what was written (raise if it went away)."""
        if self.closed:
            raise ConnectionResetError("the client closed the connection")
        if not self._write_paused:
            return
        self._drain = self.loop.create_future()
        try:
            await self._drain
        finally:
            self._drain = None

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("the client closed the connection")
        self.transport.write(data)

    # ------------------------------------------------------------------ serving
    def _refuse(self, refused: HeadRefused) -> None:
        self.refused = refused
        self.in_head = False
        self.trailing = False
        self.pause(4)
        req = self.current
        if req is not None and req.body is not None and not req.body.done:
            # Refused mid-body (its trailers): its upload stops now; the refusal is its answer.
            req.body.fail(ConnectionResetError(refused.detail))
        if self.runner is None and self.exchange is None:
            self._send_refusal()  # else once the answers before it have left

    def _send_refusal(self) -> None:
        refused = self.refused
        if self.closed or refused is None:
            return
        head = error_head(refused.status, refused.code, refused.detail, close=True)
        self.transport.write(head)
        self.transport.close()

    def run_handed_over(self, req: Request, serving) -> None:
        """Finish `req` (not queued: the fast path had it) with the `serving` coroutine."""
        self.runner = self.loop.create_task(self._run((req, serving)))

    def exchange_done(self, req: Request) -> None:
        """The fast path answered `req`: close, or go on with the requests queued behind it."""
        if self.closed:
            return
        if not req.keep_alive:
            self.transport.close()
            return
        self.idle_since = self.loop.time()
        if self.queue:
            self.runner = self.loop.create_task(self._run())
        elif self.refused is not None:
            self._send_refusal()

    async def _run(self, pending=None) -> None:
        handler = self.handler
        queue = self.queue
        try:
            if pending is not None and not await self._serve_one(*pending, queued=False):
                return
            while queue and not self.closed:
                req = queue[0]
                if not await self._serve_one(req, handler.serve(self, req), queued=True):
                    return
            self.idle_since = self.loop.time()
            if self.refused is not None:
                self._send_refusal()
        finally:
            self.runner = None

    async def _serve_one(self, req: Request, serving, *, queued: bool) -> bool:
        """Await one request's serving; return whether the connection goes on."""
        try:
            await serving
        except ConnectionResetError:
            pass
        except Exception:  # a bug must cost this connection, never the server
            log.exception("serving %s %s failed", req.method, req.target[:200])
            if not self.closed:
                self.transport.close()
            return False
        if queued:
            self.queue.popleft()
            if self._paused & 2 and len(self.queue) <= _MAX_QUEUED:
                self.resume(2)
        if self.closed:
            return False
        if self.refused is not None and req.body is not None and req.body.error is not None:
            return True  # its trailers were refused: the refusal answers it (_run sends it)
        if not req.keep_alive:
            self.transport.close()
            return False
        body = req.body
        return body is None or body.done or await self._linger(body)

    async def _linger(self, body: BodyStream) -> bool:
        """Read and drop the rest of an unread body for a while; return whether to keep going."""
        deadline = self.loop.time() + self.server.linger
        try:
            while True:
                body.discard()
                remaining = deadline - self.loop.time()
                if remaining <= 0:
                    raise BodyTimeout("linger over")
                if not await body.read_chunk(remaining):
                    return True
        except (BodyTimeout, ConnectionResetError):
            if not self.closed:
                self.transport.close()
            return False

    def sweep(self, now: float, *, keepalive: float, head_timeout: float) -> None:
        """Close this connection if it idled or has been sending a request head for too long."""
        if self.closed or self.runner is not None or self.exchange is not None:
            return
        if self.in_head and now - self.head_started > head_timeout:
            self._refuse(
                HeadRefused(
                    status=408,
                    code="request_timeout",
                    detail="The request head arrived too slowly.",
                )
            )
        elif not self.in_head and not self.queue and now - self.idle_since > keepalive:
            self.transport.close()


class FrontServer:
    """Listen for clients and keep their connections: idle ones closed, slow heads refused.

    It knows requests as bytes and limits, never routes: what answers them is `handler`.
    """

    def __init__(
        self, handler: RequestHandler, *, keepalive_timeout: float, head_timeout: float,
        linger: float,
    ):  # fmt: skip
        self.handler = handler
        self.keepalive_timeout, self.head_timeout = keepalive_timeout, head_timeout
        self.linger = linger
        self.connections: set[HttpConnection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen on `host`:`port` (0: any free port); return the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self, loop), host, port, reuse_port=reuse_port or None,
            backlog=1024,
        )  # fmt: skip
        self._sweeper = loop.create_task(self._sweep())
        return self._server.sockets[0].getsockname()[1]

    def stop_listening(self) -> None:
        """Accept no new connection; the open ones go on."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()

    def close_connections(self) -> None:
        """Cancel what the open connections are serving, and close them."""
        for conn in list(self.connections):
            if conn.runner is not None:
                conn.runner.cancel()
            if conn.transport is not None:
                conn.transport.close()

    async def _sweep(self) -> None:
        """Once a second: close idle keep-alive connections and heads that arrive too slowly."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for conn in list(self.connections):
                conn.sweep(now, keepalive=self.keepalive_timeout, head_timeout=self.head_timeout)
