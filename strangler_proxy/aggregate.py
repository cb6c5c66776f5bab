"""The user overview: profile, recent orders and payments in one response, fetched in parallel.

Each part goes to whichever half serves its path under the route table in force (canary routes
stay sticky per user). A part that fails (connect error, timeout, 5xx, non-JSON) is ``null`` and
named in ``errors``, and the response says ``"partial": true``; a 401 from the profile part is
returned as the answer, since nothing else can succeed for that caller.

Each part carries an identity signed for its own sub-request: the service that serves it, GET,
and the part's path (never the overview's own).
"""

from __future__ import annotations

import asyncio
import json

from service_kit.identity import HEADER as IDENTITY_HEADER

from .answers import Answer
from .headers import REQUEST_ID, UPSTREAM
from .interfaces import Upstreams
from .signing import IdentitySigner

PARTS = {
    "profile": "/api/users/me/",
    "orders": "/api/orders/",
    "payments": "/api/payments/",
}


async def overview(
    upstreams: Upstreams, signer: IdentitySigner, request, *, table, rid: str, identity
) -> Answer:
    """Return the caller's overview, degraded to a partial answer when a part fails."""
    headers = {"Accept": "application/json", REQUEST_ID: rid}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]

    async def part(name: str, path: str):
        found = table.match("GET", path, request.headers)
        if found is None:
            raise LookupError(f"no route serves GET {path}")
        route = found[0]
        service = route.target(identity, request.remote)
        sent = headers
        signed = None if identity is None else signer.sign(identity, service, "GET", path)
        if signed is not None:
            sent = headers | {IDENTITY_HEADER: signed}
        (status, _, body), _ = await upstreams.fetch(
            service=service, method="GET", target=path, headers=sent, route=route
        )
        return service, status, body

    names = list(PARTS)
    results = await asyncio.gather(*(part(n, PARTS[n]) for n in names), return_exceptions=True)
    data: dict = {"partial": False, "errors": {}, "served_by": {}}
    for name, result in zip(names, results, strict=True):
        data[name] = None
        if isinstance(result, BaseException):
            data["errors"][name] = (
                getattr(result, "detail", None) or f"{result.__class__.__name__}: {result}"
            )
            continue
        service, status, body = result
        data["served_by"][name] = service
        if name == "profile" and status in {401, 403}:
            return Answer(status=status, body=body, headers=[(UPSTREAM, service)])
        if status >= 400:
            data["errors"][name] = f"{service} answered {status}"
            continue
        try:
            data[name] = json.loads(body)
        except ValueError:
            data["errors"][name] = f"{service} answered with non-JSON"
    data["partial"] = bool(data["errors"])
    return Answer(
        status=200, body=json.dumps(data).encode(),
        headers=[(UPSTREAM, "aggregate"), (REQUEST_ID, rid)],
    )  # fmt: skip
