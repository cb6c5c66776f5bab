"""Which request and response headers cross the proxy, and which the proxy sets.

Host rule: the upstream receives its own address as ``Host`` and the client's ``Host`` in
``X-Forwarded-Host``; a service with ``preserve_host = true`` receives the client's ``Host``
unchanged instead. ``X-Forwarded-For`` gets the client address appended; ``X-Forwarded-Proto``
says the scheme the client used. Identity headers (``X-Strangler-Identity*``) sent by a client
are always dropped: only the proxy signs identity.
"""

from __future__ import annotations

from multidict import CIMultiDict

# RFC 9110 section 7.6.1 connection-specific fields, plus the pre-standard Proxy-Connection.
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "proxy-connection",
    }
)  # fmt: skip
IDENTITY_PREFIX = "x-strangler-identity"
# Expect is answered by the proxy itself (100 Continue), so the upstream never waits on it.
_REQUEST_DROP = HOP_BY_HOP | {"host", "x-forwarded-host", "x-forwarded-proto", "expect"}
REQUEST_ID = "X-Request-ID"
UPSTREAM = "X-Strangler-Upstream"
FALLBACK = "X-Strangler-Fallback"


def _connection_tokens(raw_headers) -> set[str]:
    tokens: set[str] = set()
    for name, value in raw_headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.decode("latin-1").split(","))
    return tokens


def upstream_request_headers(
    raw_headers, *, client_host: str | None, client_addr: str | None, scheme: str,
    preserve_host: bool, request_id: str,
) -> CIMultiDict:  # fmt: skip
    """Return the headers to send upstream for a client request's `raw_headers`."""
    drop = _REQUEST_DROP
    extra = _connection_tokens(raw_headers)
    if extra:
        drop = drop | extra
    out = CIMultiDict()
    forwarded_for = None
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1")
        lower = name.lower()
        if lower in drop or lower.startswith(IDENTITY_PREFIX):
            continue
        if lower == "x-forwarded-for":
            forwarded_for = raw_value.decode("latin-1")
            continue
        if lower == "x-request-id":
            continue
        out.add(name, raw_value.decode("latin-1"))
    if client_addr:
        forwarded_for = f"{forwarded_for}, {client_addr}" if forwarded_for else client_addr
    if forwarded_for:
        out["X-Forwarded-For"] = forwarded_for
    out["X-Forwarded-Proto"] = scheme
    if client_host:
        out["X-Forwarded-Host"] = client_host
        if preserve_host:
            out["Host"] = client_host
    out[REQUEST_ID] = request_id
    return out


def client_response_headers(raw_headers) -> list[tuple[str, str]]:
    """Return the upstream response headers to pass to the client, repeats kept in order."""
    extra = _connection_tokens(raw_headers)
    drop = HOP_BY_HOP | extra if extra else HOP_BY_HOP
    out = []
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1")
        if name.lower() in drop:
            continue
        out.append((name, raw_value.decode("latin-1")))
    return out
