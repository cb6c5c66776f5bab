"""Every error the proxy raises on purpose, and the one JSON body its own answers carry.

The tree (each error the proxy answers itself knows its status and code)::

    ProxyError
    ├── Refused                  the proxy answers the request itself (status, code, detail)
    │   ├── PathRefused          400 path_refused: a path that could leave the route table
    │   ├── HeadRefused          400 bad_request, 408, 414, 431: the front server's limits
    │   └── UpstreamFailed       502/503 upstream_unavailable, 504 upstream_timeout,
    │                            408 request_timeout (the client's body, not the upstream)
    ├── RouteTableError          a table (file, admin API, reload) is invalid: every problem
    ├── ModeError                a route mode that is not one of the modes (modes.py)
    ├── ConfigError              a setting in the environment cannot be read
    └── BodyTimeout              a client sent no body bytes within the idle timeout

The body is the halves' contract (service_kit/errors.py)::

    {"error": "<code>", "detail": "<sentence>", "fields": {"<field>": ["<why>", ...]}}

with ``fields`` only when the error names a field. ``error_body`` writes it, ``error_head`` the
whole answer as bytes; nothing else in the proxy spells either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus

from .headers import UPSTREAM


def reason(status: int) -> str:
    """Return the reason phrase of `status` (``Error`` for one HTTP does not name)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProxyError(Exception):
    """Base of every error the proxy raises on purpose."""


class Refused(ProxyError):
    """The proxy answers a request itself, with `status` and the JSON error body."""

    status = 400
    code = "bad_request"

    def __init__(
        self, detail: str, *, status: int | None = None, code: str | None = None,
        fields: Mapping[str, Iterable[str]] | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ):  # fmt: skip
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.fields = fields
        self.headers = tuple(headers)


class PathRefused(Refused, ValueError):
    """The request path is ambiguous or tries to leave the route table."""

    status, code = 400, "path_refused"


class HeadRefused(Refused):
    """A request head the front server will not read on: too large, too slow or not HTTP."""


class UpstreamFailed(Refused):
    """No upstream answer to relay: it could not be reached, timed out or broke off."""

    status, code = 502, "upstream_unavailable"


class RouteTableError(ProxyError, ValueError):
    """A route table is invalid; `problems` lists each one, naming the route and the fault."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid route table: " + "; ".join(problems))


class ModeError(ProxyError, ValueError):
    """A value is not a route mode (monolith, shadow, canary:P, extracted)."""


class ConfigError(ProxyError, RuntimeError):
    """A setting in the environment cannot be read."""


class BodyTimeout(ProxyError):
    """The client sent no body bytes within the idle timeout."""


def error_body(code: str, detail: str, fields: Mapping[str, Iterable[str]] | None = None) -> bytes:
    """Return the JSON error body: ``fields`` only when a field is named, each with a list."""
    body: dict = {"error": code, "detail": detail}
    if fields:
        body["fields"] = {
            name: [reasons] if isinstance(reasons, str) else list(reasons)
            for name, reasons in fields.items()
        }
    return json.dumps(body).encode()


def error_head(
    status: int, code: str, detail: str, request_id: str = "", *, close: bool = False,
    headers: Iterable[tuple[str, str]] = (), fields: Mapping[str, Iterable[str]] | None = None,
) -> bytes:  # fmt: skip
    """Return a whole proxy-made JSON error answer as bytes."""
    body = error_body(code, detail, fields)
    lines = [
        f"HTTP/1.1 {status} {reason(status)}\r\n",
        "Content-Type: application/json; charset=utf-8\r\n",
        f"Content-Length: {len(body)}\r\n",
        f"{UPSTREAM}: proxy\r\n",
    ]
    if request_id:
        lines.append(f"X-Request-ID: {request_id}\r\n")
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    if close:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body
