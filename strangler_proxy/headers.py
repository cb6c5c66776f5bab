"""Which request and response headers cross the proxy, and which the proxy sets: the one owner.

* Hop-by-hop (RFC 9110 section 7.6.1, plus the pre-standard ``Proxy-Connection``), and every
  header the ``Connection`` header names: removed both ways.
* Identity (``X-Strangler-Identity*``): a client's are always dropped; only the proxy signs.
* Forwarded: ``X-Forwarded-For`` gets the client address appended; ``X-Forwarded-Proto`` says
  the client's scheme; the client's ``Host`` goes upstream as ``X-Forwarded-Host`` (a client's
  own ``X-Forwarded-Host`` and ``-Proto`` are dropped, never trusted). Host rule: the upstream
  receives its own address as ``Host``, unless the service has ``preserve_host = true``.
* ``Expect`` is answered by the proxy itself (100 Continue), never forwarded.
* Set by the proxy on answers: ``X-Strangler-Upstream``, ``X-Request-ID`` (passed through when
  valid, else made up: ``RequestIds``), ``X-Strangler-Fallback``; an upstream's own are dropped.

The sets are applied where the bytes are parsed, so the hot path copies nothing twice: request
headers by the front server (``REQUEST_KINDS``), answers by the upstream client and the relay
(``RESPONSE_DROP``); recordings skip ``RECORD_SKIPPED`` and ``RECORD_RESPONSE_SKIPPED``.
"""

from __future__ import annotations

import itertools
import os
import re

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "proxy-connection",
    }
)  # fmt: skip
IDENTITY_PREFIX = "x-strangler-identity"
FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"})

REQUEST_ID = "X-Request-ID"
UPSTREAM = "X-Strangler-Upstream"
FALLBACK = "X-Strangler-Fallback"
SHADOW = "X-Strangler-Shadow"  # on mirrored requests, so a candidate can tell
ACTOR = "X-Strangler-Actor"  # what an admin client says of itself (recorded, never trusted)
#: Answer headers only the proxy sets: an upstream's own never reach the client.
PROXY_SET = frozenset({UPSTREAM.lower(), REQUEST_ID.lower(), FALLBACK.lower()})

# The front server's reading of each request header (any other is forwarded as is): "hop" is
# set aside, "drop" never forwarded, the rest each have their own slot in the request.
REQUEST_KINDS: dict[bytes, str] = dict.fromkeys((n.encode() for n in HOP_BY_HOP), "hop") | {
    b"connection": "connection",
    b"transfer-encoding": "transfer-encoding",
    b"host": "host",
    b"x-forwarded-host": "drop",
    b"x-forwarded-proto": "drop",
    b"expect": "expect",
    b"x-forwarded-for": "xff",
    b"x-request-id": "rid",
    b"authorization": "authorization",
    b"content-length": "content-length",
}
IDENTITY_PREFIX_B = IDENTITY_PREFIX.encode()

#: Answer headers never passed to the client: hop-by-hop ones, and those the proxy sets.
RESPONSE_DROP = frozenset(name.encode() for name in HOP_BY_HOP | PROXY_SET)

#: Request headers a recording leaves out (per connection: a replay sets its own).
RECORD_SKIPPED = HOP_BY_HOP | FORWARDED | {"host", "content-length", "expect", "x-request-id"}
#: Answer headers a recording leaves out.
RECORD_RESPONSE_SKIPPED = HOP_BY_HOP | PROXY_SET | {"content-length", "date"}

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIds:
    """Each request's ``X-Request-ID``: the client's when valid (1-128 characters of
    ``[A-Za-z0-9._:-]``), else a new one.

    New ids are a per-process random prefix and a counter (32 hex digits): unique without a
    system call per request.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def for_request(self, given: bytes | None) -> str:
        """Return the id of a request that sent `given` (None: it sent none)."""
        if given is not None:
            rid = given.decode("latin-1")
            if _REQUEST_ID_OK.match(rid) is not None:
                return rid
        return f"{self._prefix}{next(self._counter):016x}"
