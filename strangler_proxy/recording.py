"""Record a sample of real exchanges, as the JSON Lines that `strangler compare --replay` reads.

A route with ``record = 0.1`` has that share of its requests recorded (switch it at run time
with ``PATCH /_strangler/routes/{name} {"record": 0.1}``). A sampled request takes the general
path; every other request of the route, and every request of a route with ``record = 0``, keeps
the fast path. Each recorded exchange is one line in the format of
``migrations_playbook/compare/replay.py`` (docs/compare.md, "Replay recorded traffic"):

    {"method": "GET", "path": "/api/payments/", "query": "status=paid",
     "headers": {"Authorization": "Bearer <redacted>", "Accept": "application/json"},
     "body": null, "route": "payments",
     "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": "..."}}

Lines are kept in a ring buffer (``STRANGLER_RECORD_BUFFER`` lines, the oldest dropped first),
served by ``GET /_strangler/recordings[?route=R]``, and appended to
``$STRANGLER_RECORD_DIR/<route>.jsonl`` when that is set.

Secrets are never recorded: the values of the deny-list's headers (Authorization keeps its
scheme: ``Bearer <redacted>``) and of its JSON keys anywhere in a body, request and answer alike
(redaction.py: a login's password and the token it answers with, card numbers...). Record files
are created 0600 in a directory only their owner can enter. An exchange whose request body is
over ``STRANGLER_RECORD_BODY_LIMIT`` bytes or is not UTF-8 cannot be replayed and is not
recorded (counted in ``skipped``); a response body over the limit is left out of ``response``
(it only serves to show drift).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .headers import RECORD_RESPONSE_SKIPPED, RECORD_SKIPPED
from .redaction import Redactor

log = logging.getLogger("strangler_proxy")


class BodyCapture:
    """The bytes of a request body as they stream upstream, up to a limit."""

    __slots__ = ("chunks", "limit", "overflow", "size")

    def __init__(self, limit: int):
        self.chunks: list[bytes] = []
        self.limit, self.size, self.overflow = limit, 0, False

    def add(self, chunk: bytes) -> None:
        if self.overflow:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self.overflow, self.chunks = True, []
        else:
            self.chunks.append(chunk)


class Recorder:
    """The recorded exchanges of this process: a ring buffer, optionally mirrored to files."""

    def __init__(self, *, size: int, body_limit: int, directory: str | None):
        self.lines: deque[tuple[str, str]] = deque(maxlen=max(1, size))
        self.body_limit = body_limit
        self.directory = Path(directory) if directory else None
        self._directory_ready = False
        self.recorded: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    def add(
        self, *, redactor: Redactor, route: str, method: str, target: str,
        header_lines: list[bytes],
        body: BodyCapture | None, status: int, response_headers: Iterable[tuple[str, str]],
        response_body: bytes | None,
    ) -> dict[str, Any] | None:  # fmt: skip
        """Record one exchange; return the line's data, or None if it cannot be replayed."""
        text = None
        if body is not None:
            try:
                text = b"".join(body.chunks).decode("utf-8") if not body.overflow else None
            except UnicodeDecodeError:
                text = None
            if text is None:
                self.skipped[route] += 1
                return None
        path, _, query = target.partition("?")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line[:-2].decode("latin-1").partition(":")
            if name.lower() in RECORD_SKIPPED:
                continue
            value = redactor.header(name, value.strip())
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        data: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "body": redactor.body(text) if text else None,
            "route": route,
        }
        answer: dict[str, Any] = {"status": status, "headers": {}}
        for name, value in response_headers:
            if name.lower() in RECORD_RESPONSE_SKIPPED:
                continue
            value = redactor.header(name, value)
            known = answer["headers"].get(name)
            answer["headers"][name] = f"{known}, {value}" if known is not None else value
        if response_body is not None and len(response_body) <= self.body_limit:
            answer["body"] = redactor.body(response_body.decode("utf-8", "replace"))
            data["response"] = answer
        line = json.dumps(data, ensure_ascii=False) + "\n"
        self.lines.append((route, line))
        self.recorded[route] += 1
        if self.directory is not None:
            self._append(route, line)
        return data

    def jsonl(self, route: str | None = None) -> str:
        """Return the buffered recordings (of one route, or all) as JSON Lines, oldest first."""
        return "".join(line for name, line in self.lines if route is None or name == route)

    def clear(self) -> int:
        """Forget the buffered recordings; return how many there were."""
        count = len(self.lines)
        self.lines.clear()
        return count

    def _append(self, route: str, line: str) -> None:
        try:
            if not self._directory_ready:
                # Recordings hold user data: only the proxy's user may list or read them.
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(self.directory, 0o700)
                self._directory_ready = True
            fd = os.open(
                self.directory / f"{route}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
            )
            try:
                os.write(fd, line.encode())  # one write: lines from several workers stay whole
            finally:
                os.close(fd)
        except OSError:
            log.exception("appending a recording to %s failed", self.directory)
