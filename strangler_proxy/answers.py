"""Answers the proxy makes itself (admin API, overview, errors), and their bytes on the wire.

An ``Answer`` is status, headers and a body; ``answer_bytes`` frames it for the front server
(``Content-Length``, keep-alive, no body for HEAD). Every one says ``X-Strangler-Upstream``:
``proxy`` unless the answer says otherwise (the overview says ``aggregate``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import error_body, reason
from .headers import UPSTREAM

JSON = "application/json; charset=utf-8"


@dataclass(slots=True)
class Answer:
    """An answer made by the proxy: status, headers (in order) and body."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_answer(data: Any, status: int = 200, *, upstream: str = "proxy") -> Answer:
    """Return `data` as an indented JSON answer."""
    body = json.dumps(data, indent=1, default=str).encode()
    return Answer(status=status, body=body, headers=[(UPSTREAM, upstream)])


def error_answer(
    status: int, code: str, detail: str, fields: Mapping[str, Iterable[str]] | None = None,
    *, headers: Iterable[tuple[str, str]] = (),
) -> Answer:  # fmt: skip
    """Return the proxy's JSON error answer (errors.error_body: ``fields`` only when named)."""
    return Answer(
        status=status, body=error_body(code, detail, fields),
        headers=[(UPSTREAM, "proxy"), *headers],
    )  # fmt: skip


def answer_bytes(answer: Answer, *, keep_alive: bool, head_only: bool = False) -> bytes:
    """Return `answer` framed as an HTTP/1.1 response."""
    lines = [f"HTTP/1.1 {answer.status} {reason(answer.status)}\r\n"]
    if answer.content_type:
        lines.append(f"Content-Type: {answer.content_type}\r\n")
    lines.extend(f"{name}: {value}\r\n" for name, value in answer.headers)
    lines.append(f"Content-Length: {len(answer.body)}\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode("latin-1")
    return head if head_only else head + answer.body
