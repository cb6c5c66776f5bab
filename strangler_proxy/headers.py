"""Which request and response headers cross the proxy, and which the proxy sets.

Host rule: the upstream receives its own address as ``Host`` and the client's ``Host`` in
``X-Forwarded-Host``; a service with ``preserve_host = true`` receives the client's ``Host``
unchanged instead. ``X-Forwarded-For`` gets the client address appended; ``X-Forwarded-Proto``
says the scheme the client used. Identity headers (``X-Strangler-Identity*``) sent by a client
are always dropped: only the proxy signs identity.

The rules are applied where the bytes are parsed, so the hot path copies nothing twice: request
headers in ``server.HttpConnection.on_header`` and ``gateway.Gateway._forward``, response headers
in ``fastclient._Connection.on_header`` (and ``gateway.Gateway._relay`` for aiohttp's answers).
"""

from __future__ import annotations

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
