"""A lean HTTP/1.1 client for the hot path: pooled keep-alive connections parsed by httptools.

* Supports: GET and OPTIONS without a request body (the bulk of proxied traffic); everything else
  (bodies, HEAD, uploads) goes through aiohttp's client, which handles every corner of HTTP.
* Keep-alive: a connection returns to its instance's idle pool when the answer was read to the end
  and both sides allow keep-alive; otherwise it is closed.
* A request that fails on a *reused* connection before any answer byte (the upstream closed it
  while idle) is sent once more on a fresh connection; the methods served here are safe.
* Timeouts: `connect_timeout` to open a connection, `read_timeout` to the answer's headers and
  between body chunks (``TimeoutError``). Back-pressure: reading pauses while more than 256 KiB of
  body waits for the client.

It exists because the generic client costs more CPU per request than everything else the proxy
does (see docs/proxy.md, "Performance").
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .headers import RESPONSE_DROP

FAST_METHODS = frozenset({"GET", "OPTIONS"})
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


# What on_header does with a response header. Names repeat from one answer to the next, so each
# spelling of a name passed as is gets its line prefix (b"Name: ") remembered, and every other
# spelling its kind (at most 1,024 names of each sort, of at most 64 bytes).
_KEEP, _LENGTH, _CONNECTION, _DROP = 0, 1, 2, 3
_PASSED: dict[bytes, bytes] = {}
_OTHER: dict[bytes, int] = {}  # the kind of every other spelling seen
_NAMES_MAX = 1024
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"Keep-Alive", b"Close"})


def _header_kind(name: bytes) -> int:
    lower = name.lower()
    if lower == b"connection":
        kind = _CONNECTION
    elif lower in RESPONSE_DROP:
        kind = _DROP
    elif lower == b"content-length":
        kind = _LENGTH
    else:
        if len(_PASSED) < _NAMES_MAX and len(name) <= 64:
            _PASSED[name] = name + b": "
        return _KEEP
    if len(_OTHER) < _NAMES_MAX and len(name) <= 64:
        _OTHER[name] = kind
    return kind


class LinesHeaders:
    """An answer's headers as kept while parsed (``b"Name: value\\r\\n"`` lines), read as a
    mapping of lowercased names only when asked: most shadow comparisons never look."""

    __slots__ = ("_lines", "_map")

    def __init__(self, lines: list[bytes]):
        self._lines, self._map = lines, None

    def _mapping(self) -> dict[str, str]:
        if self._map is None:
            pairs = (line[:-2].decode("latin-1").partition(": ") for line in self._lines)
            self._map = {name.lower(): value for name, _, value in pairs}
        return self._map

    def get(self, name: str, default=None):
        return self._mapping().get(name, default)

    def items(self):
        return self._mapping().items()


class UpstreamProtocolError(ConnectionError):
    """The upstream's answer was not valid HTTP/1.1, or the connection ended mid-answer."""


class _Connection(asyncio.Protocol):
    """One upstream connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False
        # One parser for the connection's life: only connections whose answers ended cleanly are
        # reused, so the parser is at a message boundary whenever a request is sent.
        self.parser = httptools.HttpResponseParser(self)
        # Told of the answer's head, end or failure instead of a waiter (the fast path's
        # exchanges, shadow mirrors): upstream_head(), upstream_done(), upstream_failed().
        self.listener = None
        self.idle = False  # in the pool: any byte arriving now is garbage, and ends it
        # Body state: empty whenever a request starts (a pooled connection was emptied when it
        # went back, see FastPool.give_back and FastResponse.release).
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget the previous answer's head (the hot path runs this once per request)."""
        if self.chunks:  # never, unless the last answer went back to the pool unread
            self.chunks.clear()
            self.buffered = 0
        self.status = 0
        self.reason = b""
        self.connection: bytes | None = None  # the Connection header, kept for the slow path
        self.headers_done = self.done = self.keep_alive = self.got_bytes = False
        self.odd_connection = False  # Connection names headers to drop: filter the slow way
        self.error: BaseException | None = None
        self.length: int | None = None
        self.lines: list[bytes] = []  # b"Name: value\r\n" of each header the client may see

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.idle:
            self.closed = True
            self.transport.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.closed = True  # never back to the pool, even before connection_lost
            self._fail(UpstreamProtocolError(f"invalid answer from upstream: {exc}"))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.done:
            self._fail(UpstreamProtocolError("upstream closed the connection mid-answer"))

    # -- httptools callbacks
    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        prefix = _PASSED.get(name)
        if prefix is not None:  # most headers: passed to the client as they are
            self.lines.append(prefix + value + b"\r\n")
            return
        kind = _OTHER.get(name)
        if kind is None:
            kind = _header_kind(name)
        if kind == _KEEP:
            self.lines.append(name + b": " + value + b"\r\n")
        elif kind == _LENGTH:
            self.lines.append(name + b": " + value + b"\r\n")
            try:
                self.length = int(value)
            except ValueError:
                self.length = None
        elif kind == _CONNECTION:
            self.connection = value
            if value in _PLAIN_CONNECTION:
                return
            for token in value.split(b","):
                if token.strip().lower() not in (b"keep-alive", b"close", b""):
                    self.odd_connection = True

    def on_headers_complete(self) -> None:
        if self.idle or (self.done and self.status >= 200):
            # A second answer to one request, in the packet that ended the first (data_received
            # catches one that comes later): stop parsing before its body lands in `chunks`;
            # the connection is out of step and closes (data_received).
            raise UpstreamProtocolError("the upstream sent an answer nobody asked for")
        parser = self.parser
        self.status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()
        self.headers_done = True
        listener = self.listener
        if listener is not None:
            listener.upstream_head()
        else:
            self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        if self.listener is None:  # a listener only cares about the head and the end
            self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        listener = self.listener
        if listener is not None:
            listener.upstream_done()
        else:
            self._wake()

    # -- internals
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if self.listener is not None:
            self.listener.upstream_failed()
            return
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def wait(self, timeout: float) -> None:
        """Wait for the next parser event, at most `timeout` seconds."""
        if self.error is not None:
            raise self.error
        self.waiter = waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, self._timed_out, waiter, timeout)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def _timed_out(self, waiter: asyncio.Future, timeout: float) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError(f"upstream sent nothing for {timeout}s"))
            self.transport.close()


class FastResponse:
    """An upstream answer with the parts of aiohttp's ClientResponse the general path uses."""

    def __init__(self, pool: FastPool, key: str, conn: _Connection, read_timeout: float):
        self._pool, self._key, self._conn, self._timeout = pool, key, conn, read_timeout
        self.status = conn.status
        self.reason = conn.reason.decode("latin-1")
        # What the client may see (hop-by-hop headers were set aside while parsing), plus the
        # Connection header, which may name more headers to drop.
        raw = [tuple(line[:-2].split(b": ", 1)) for line in conn.lines]
        if conn.connection is not None:
            raw.append((b"Connection", conn.connection))
        self.raw_headers = tuple(raw)
        self.content = self  # forwarding.py reads `resp.content.read()` / `.iter_any()`
        self._headers: CIMultiDictProxy | None = None
        self._released = False

    @property
    def headers(self) -> CIMultiDictProxy:
        if self._headers is None:
            self._headers = CIMultiDictProxy(
                CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers)
            )
        return self._headers

    @property
    def content_length(self) -> int | None:
        return self._conn.length

    async def _next(self) -> bytes:
        conn = self._conn
        while True:
            if conn.chunks:
                chunk = conn.chunks.popleft()
                conn.buffered -= len(chunk)
                if conn.paused and conn.buffered < _LOW_WATER:
                    conn.paused = False
                    conn.transport.resume_reading()
                return chunk
            if conn.done:
                return b""
            await conn.wait(self._timeout)

    async def read(self, limit: int = -1) -> bytes:
        """Return the whole body (or its first `limit` bytes and drop the connection)."""
        parts, size = [], 0
        while True:
            chunk = await self._next()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            size += len(chunk)
            if 0 <= limit < size:
                return b"".join(parts)[:limit]

    async def iter_any(self):
        while True:
            chunk = await self._next()
            if not chunk:
                return
            yield chunk

    def release(self) -> None:
        """Give the connection back to the pool if it can carry another request, else close it."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        if conn.done and conn.keep_alive and not conn.closed:
            # The whole answer has arrived (read or not, as for a 5xx that is retried): the
            # connection is at a message boundary and can carry the next request.
            conn.chunks.clear()
            conn.buffered = 0
            if conn.paused:
                conn.paused = False
                conn.transport.resume_reading()
            conn.idle = True
            self._pool._idle.setdefault(self._key, []).append(conn)
        else:
            conn.closed = True
            conn.transport.close()


class FastPool:
    """Idle keep-alive connections per upstream instance, and the request loop over them."""

    def __init__(self) -> None:
        self._idle: dict[str, list[_Connection]] = {}

    async def _connect(self, host: str, port: int, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: _Connection(loop), host, port), timeout
        )
        return conn

    async def request(
        self, *, url: str, host: str, method: str, target: str, headers, connect_timeout: float,
        read_timeout: float, host_line: bytes | None = None,
    ) -> FastResponse:  # fmt: skip
        """Send a body-less request to the instance at `url`; return once the headers arrived.

        `headers` is a mapping, or a ready block of ``Name: value\r\n`` lines (bytes); a block
        without its own Host line gets `host_line` (``Host: <instance>``).
        """
        if isinstance(headers, bytes):
            head = b"".join(
                (method.encode("ascii"), b" ", target.encode("latin-1"), b" HTTP/1.1\r\n",
                 host_line or b"", headers, b"\r\n")
            )  # fmt: skip
        else:
            lines = [f"{method} {target} HTTP/1.1\r\n"]
            if "Host" not in headers:
                lines.append(f"Host: {host}\r\n")
            lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
            lines.append("\r\n")
            head = "".join(lines).encode("latin-1")
        idle = self._idle.get(url)
        for _ in range(2):
            conn = None
            while idle:
                candidate = idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            reused = conn is not None
            if conn is None:
                hostname, _, port = host.rpartition(":")
                conn = await self._connect(hostname or host, int(port or 80), connect_timeout)
            conn._reset()
            conn.used = True
            conn.idle = False
            conn.transport.write(head)
            try:
                while not conn.headers_done:
                    await conn.wait(read_timeout)
            except UpstreamProtocolError:
                conn.transport.close()
                if reused and not conn.got_bytes:
                    continue  # the idle connection died under us: once more on a fresh one
                raise
            except BaseException:
                conn.transport.close()
                raise
            return FastResponse(self, url, conn, read_timeout)
        raise UpstreamProtocolError("upstream closed two connections before answering")

    def send(
        self, url: str, head: bytes, *, limit: int, read_timeout: float, done, started: float
    ) -> Collected | None:
        """Send `head` on an idle connection to `url` and collect the answer on callbacks
        (see Collected); return None, sending nothing, when no connection is idle."""
        up = self.take_idle(url)
        if up is None:
            return None
        sent = Collected(
            self, url, up, limit=limit, read_timeout=read_timeout, done=done, started=started
        )
        up.transport.write(head)
        return sent

    def take_idle(self, url: str) -> _Connection | None:
        """Return an idle connection to `url` ready for a request, or None."""
        idle = self._idle.get(url)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn._reset()
                conn.used = True
                conn.idle = False
                return conn
        return None

    def give_back(self, url: str, conn: _Connection) -> None:
        """Return a connection whose answer was read whole to the idle pool (or close it)."""
        conn.listener = None
        if conn.done and conn.keep_alive and not conn.closed:
            if conn.chunks:
                conn.chunks.clear()
                conn.buffered = 0
            if conn.paused:
                conn.paused = False
                conn.transport.resume_reading()
            conn.idle = True
            idle = self._idle.get(url)
            if idle is None:
                idle = self._idle[url] = []
            idle.append(conn)
        else:
            conn.closed = True
            conn.transport.close()

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()


class Collected:
    """A request sent on callbacks whose whole answer is collected (shadow mirrors).

    The connection's listener: an answer with a ``Content-Length`` of at most `limit` (or none
    to read: 204, 304) is read whole, the connection goes back to the pool, and ``done(status,
    lines, body)`` is called; any other answer is handed over as a ``FastResponse`` to read on
    (``done(status, None, response)``); a broken connection or ``fail`` (a timeout) calls
    ``done(None, None, error)``. Nothing waits: no task, no future, no timer.
    """

    __slots__ = ("done", "key", "limit", "pool", "read_timeout", "started", "up")

    def __init__(
        self, pool: FastPool, key: str, up: _Connection, *, limit: int, read_timeout: float,
        done, started: float,
    ):  # fmt: skip
        self.pool, self.key, self.up, self.limit = pool, key, up, limit
        self.read_timeout, self.done, self.started = read_timeout, done, started
        up.listener = self

    def upstream_head(self) -> None:
        up = self.up
        length = up.length
        if (
            up.status < 200
            or up.odd_connection
            or (length is None and up.status not in (204, 304))
            or (length is not None and length > self.limit)
        ):
            self._hand_over()

    def upstream_done(self) -> None:
        up = self.up
        chunks = up.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        status, lines = up.status, up.lines
        self.pool.give_back(self.key, up)
        self.done(status, lines, body)

    def upstream_failed(self) -> None:
        up = self.up
        if up.headers_done:
            return self._hand_over()
        self.fail(up.error or UpstreamProtocolError("upstream closed the connection"))

    def fail(self, error: BaseException) -> None:
        """Give up on the answer (the upstream broke off, or was too slow)."""
        up = self.up
        up.listener = None
        up.closed = True
        up.transport.close()
        self.done(None, None, error)

    def _hand_over(self) -> None:
        self.up.listener = None
        self.done(
            self.up.status, None, FastResponse(self.pool, self.key, self.up, self.read_timeout)
        )
