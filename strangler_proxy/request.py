"""One client request as the front server parsed it, and its body as it streams in.

* ``Request``: the head as bytes, classified while parsed (headers.REQUEST_KINDS): each header
  that goes upstream kept as its ready-to-send line, hop-by-hop and identity headers set aside,
  Host, Authorization, X-Forwarded-For and X-Request-ID in their own slots. It offers the parts
  of an aiohttp request the admin API and route matching read (``headers``, ``query``,
  ``read()``).
* ``Trailers``: where a chunked request's trailers go: counted (at most ``MAX_TRAILERS``),
  then dropped, never a request header.
* ``BodyStream``: at most 256 KiB held before reading pauses (the connection's ``pause``); a
  reader waiting longer than the idle timeout for the next chunk gets ``BodyTimeout``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from .errors import BodyTimeout, HeadRefused

_BODY_HIGH = 256 * 1024
_BODY_LOW = 64 * 1024
MAX_TRAILERS = 128  # trailer lines of a chunked request


class BodyStream:
    """A request body arriving from the client, read chunk by chunk with back-pressure."""

    __slots__ = (
        "_conn", "buffered", "capture", "chunks", "done", "error", "paused", "timed_out", "waiter",
    )  # fmt: skip

    def __init__(self, conn):
        # `conn`: the connection it arrives on (server.HttpConnection): pause(1), resume(1),
        # loop.
        self._conn = conn
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.done = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future | None = None
        self.paused = False
        self.timed_out = False
        self.capture = None  # a recording.BodyCapture when this exchange is recorded

    def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        if self.buffered > _BODY_HIGH and not self.paused:
            self.paused = True
            self._conn.pause(1)
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read_chunk(self, idle: float) -> bytes:
        """Return the next chunk, b"" at the end; raise BodyTimeout after `idle` s of silence."""
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.paused and self.buffered < _BODY_LOW:
                    self.paused = False
                    self._conn.resume(1)
                if self.capture is not None:
                    self.capture.add(chunk)
                return chunk
            if self.done:
                return b""
            if self.error is not None:
                raise self.error
            self.waiter = waiter = self._conn.loop.create_future()
            try:
                await asyncio.wait_for(waiter, idle)
            except TimeoutError:
                self.timed_out = True
                raise BodyTimeout(f"no body bytes for {idle}s") from None
            finally:
                self.waiter = None

    def discard(self) -> None:
        """Drop what arrived and whatever still arrives (the answer has left without it)."""
        self.chunks.clear()
        self.buffered = 0
        if self.paused:
            self.paused = False
            self._conn.resume(1)

    async def chunks_iter(self, idle: float):
        while True:
            chunk = await self.read_chunk(idle)
            if not chunk:
                return
            yield chunk


class Request:
    """One parsed client request: its head as bytes, classified, and its body stream."""

    __slots__ = (
        "_headers", "authorization", "body", "connection_tokens", "expect_continue", "forward",
        "host", "keep_alive", "method", "path", "raw_target", "remote", "request_id",
        "sampled", "target", "version", "xff",
    )  # fmt: skip

    def __init__(self) -> None:
        self.forward: list[bytes] = []  # b"Name: value\r\n" of each header that goes upstream
        self.host: bytes | None = None
        self.authorization: bytes | None = None
        self.xff: bytes | None = None
        self.request_id: bytes | None = None
        self.expect_continue = False
        self.connection_tokens: list[bytes] | None = None
        self.body: BodyStream | None = None
        self._headers: CIMultiDictProxy | None = None
        self.method = "GET"
        self.target = ""
        self.path = ""  # the target up to its query string, not decoded
        self.raw_target = b""  # the request target as the client sent it
        self.version = "1.1"
        self.keep_alive = True
        self.remote = ""
        self.sampled: bool | None = None  # recorded? decided once, by the first path to look

    # -- the parts of aiohttp's request the admin API, auth and aggregation read
    @property
    def headers(self) -> CIMultiDictProxy:
        """The request's end-to-end headers and Host (hop-by-hop and identity ones set aside)."""
        if self._headers is None:
            out = CIMultiDict()
            if self.host is not None:
                out.add("Host", self.host.decode("latin-1"))
            for line in self.forward:
                name, _, value = line[:-2].decode("latin-1").partition(": ")
                out.add(name, value)
            if self.xff is not None:
                out.add("X-Forwarded-For", self.xff.decode("latin-1"))
            if self.request_id is not None:
                out.add("X-Request-ID", self.request_id.decode("latin-1"))
            self._headers = CIMultiDictProxy(out)
        return self._headers

    def get(self, name: str, default=None):
        """Return one header (route matching reads the request's headers through this)."""
        return self.headers.get(name, default)

    @property
    def query(self) -> MultiDictProxy:
        return MultiDictProxy(MultiDict(parse_qsl(self.target.partition("?")[2])))

    async def read(self, limit: int = 10 * 1024 * 1024, idle: float = 10.0) -> bytes:
        """Return the whole body (admin writes: small JSON)."""
        if self.body is None:
            return b""
        parts, size = [], 0
        async for chunk in self.body.chunks_iter(idle):
            size += len(chunk)
            if size > limit:
                raise ValueError(f"body over {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def forward_lines(self) -> list[bytes]:
        """Return the header lines to forward, dropping headers the Connection header names."""
        tokens = self.connection_tokens
        if not tokens:
            return self.forward
        extra = set(tokens)
        extra.discard(b"keep-alive")
        extra.discard(b"close")
        if not extra:
            return self.forward
        return [line for line in self.forward if line.split(b":", 1)[0].lower() not in extra]


class Trailers:
    """Where a chunked request's trailers go: counted against the limits, then dropped.

    From a request's first chunk on, the parser's header callbacks write into this instead of the
    request (``on_header`` is the same code for both), so nothing a trailer says reaches the
    request: not a header, not its host, token or body. Only ``body`` is the request's own.
    """

    __slots__ = ("body", "lines", "req")

    def __init__(self, req: Request):
        object.__setattr__(self, "req", req)
        object.__setattr__(self, "body", req.body)
        object.__setattr__(self, "lines", 0)

    @property
    def forward(self) -> Trailers:
        return self  # on_header appends a forwarded trailer line here: counted, dropped

    def append(self, _line: bytes) -> None:
        self._count()

    def __getattr__(self, _name: str) -> None:
        return None  # e.g. connection_tokens: a trailer starts from nothing

    def __setattr__(self, _name: str, _value) -> None:
        self._count()  # host, authorization, xff...: dropped

    def _count(self) -> None:
        lines = self.lines + 1
        if lines > MAX_TRAILERS:
            raise HeadRefused(
                status=431,
                code="header_too_large",
                detail=f"The request has over {MAX_TRAILERS} trailer lines.",
            )
        object.__setattr__(self, "lines", lines)
