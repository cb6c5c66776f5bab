"""Signed identity headers: what the proxy vouches for, and how a service checks it.

The proxy forwards one header, ``X-Strangler-Identity: <payload>.<signature>``, where payload is
base64url JSON ``{"uid", "email", "staff", "exp"}`` and signature is base64url HMAC-SHA256 of the
payload with the shared secret. Services call :func:`identity_verify`; it refuses an unsigned,
forged or expired header. No dependency beyond the standard library, so any half can import it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

HEADER = "X-Strangler-Identity"


class IdentityError(ValueError):
    """An identity header is missing, malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated user as the proxy saw them."""

    user_id: str
    email: str = ""
    is_staff: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def identity_sign(
    *, identity: Identity, secret: str, ttl: int = 60, now: float | None = None
) -> str:
    """Return the header value vouching for `identity` for `ttl` seconds."""
    expires = int((time.time() if now is None else now) + ttl)
    payload = {
        "uid": identity.user_id,
        "email": identity.email,
        "staff": identity.is_staff,
        "exp": expires,
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def identity_verify(*, header: str | None, secret: str, now: float | None = None) -> Identity:
    """Return the identity in `header`, or raise IdentityError if it is not genuine and fresh."""
    if not header:
        raise IdentityError(f"{HEADER} header is missing")
    body, dot, signature = header.partition(".")
    if not dot or not body or not signature:
        raise IdentityError(f"{HEADER} header is not '<payload>.<signature>'")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        payload = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError) as exc:
        raise IdentityError(f"{HEADER} header is not valid base64url JSON") from exc
    if not hmac.compare_digest(expected, given):
        raise IdentityError(f"{HEADER} header has a bad signature")
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
        raise IdentityError(f"{HEADER} payload has no expiry")
    if payload["exp"] < (time.time() if now is None else now):
        raise IdentityError(f"{HEADER} expired at {payload['exp']}")
    return Identity(
        user_id=str(payload.get("uid", "")),
        email=str(payload.get("email", "")),
        is_staff=bool(payload.get("staff", False)),
    )
