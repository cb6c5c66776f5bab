"""The signed identity the proxy vouches for, and how a half checks it: one module for both sides.

The proxy resolves a client's ``Authorization: Bearer <token>`` and sends the half it routes to

    X-Strangler-Identity: <a JWT, HS256>

header ``{"alg": "HS256", "kid": <key id>, "typ": "JWT"}``, claims

| claim | what |
|---|---|
| ``sub``, ``email``, ``staff`` | the user: id (a string), email, staff flag |
| ``aud`` | the service the request is sent to (``monolith``, ``payments``): its audience name |
| ``htm``, ``htu`` | the request's method and path (decoded, no query), bound as DPoP does |
| ``iat``, ``exp`` | issued at, expires at: at most ``MAX_TTL`` (30) seconds apart |

So a header copied from one request is refused by another service, for another method or on
another path, and within 30 s anyway. ``kid`` names the key that signed: the secret can rotate
without downtime (``identity_keys_parse``; docs/security.md has the procedure).

Checking (:func:`identity_verify`) is PyJWT's: signature, algorithm, audience and required
claims; the method, path and lifetime rules are checked here. Signing (:func:`identity_sign`)
writes the same compact JWS by hand: the proxy signs one per authenticated request on its fast
path, where PyJWT's encoder cost about three times as much (docs/security.md, "Signed
identity"); the tests check every signed header with PyJWT. No Django here: the proxy imports it.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string

HEADER = "X-Strangler-Identity"
#: The longest a signed identity lives, whatever the proxy is configured with.
MAX_TTL = 30
#: The key id of a secret given without one (``STRANGLER_IDENTITY_SECRET=<secret>``).
DEFAULT_KID = "default"
#: Seconds a half's clock may run behind the proxy's (both usually read one host's clock).
CLOCK_SKEW = 5
#: The shortest secret accepted: an HS256 key is at least as long as the hash (RFC 7518, 3.2).
MIN_SECRET_BYTES = 32
_KID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_REQUIRED = ["sub", "aud", "htm", "htu", "iat", "exp"]


class IdentityError(ValueError):
    """An identity header is missing, malformed, forged, expired or meant for another request."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated user as the proxy saw them."""

    user_id: str
    email: str = ""
    is_staff: bool = False


@dataclass(frozen=True)
class IdentityKeys:
    """The identity keys of one process: the first signs, every one verifies (by ``kid``)."""

    keys: dict[str, bytes]
    signing_kid: str
    _header_b64: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        header = {"alg": "HS256", "kid": self.signing_kid, "typ": "JWT"}
        object.__setattr__(self, "_header_b64", _b64(_compact(header).encode()))

    def __repr__(self) -> str:  # never print a secret
        return f"IdentityKeys(kids={list(self.keys)}, signing_kid={self.signing_kid!r})"


def identity_keys_parse(raw: str) -> IdentityKeys:
    """Return the keys in `raw`: ``kid:secret[,kid:secret...]`` (the first signs) or one secret.

    A bare secret has the key id ``default``. Raise IdentityError naming what is wrong (never
    the secret).
    """
    entries = [entry.strip() for entry in (raw or "").split(",")]
    if not raw or not raw.strip() or not all(entries):
        raise IdentityError(
            "STRANGLER_IDENTITY_SECRET must be a secret or 'kid:secret' entries separated by "
            "commas, with no empty entry."
        )
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, 1):
        kid, colon, secret = entry.partition(":")
        if not colon:
            kid, secret = DEFAULT_KID, entry
        if not _KID.match(kid):
            raise IdentityError(
                f"STRANGLER_IDENTITY_SECRET entry {position}: the key id must be 1-32 letters, "
                f"digits or ._-, got {kid!r}."
            )
        if not secret:
            raise IdentityError(f"STRANGLER_IDENTITY_SECRET entry {position} ({kid}) is empty.")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise IdentityError(
                f"STRANGLER_IDENTITY_SECRET entry {position} ({kid}) is {len(secret.encode())} "
                f"bytes; an HS256 key needs at least {MIN_SECRET_BYTES} (RFC 7518, 3.2)."
            )
        if kid in keys:
            raise IdentityError(f"STRANGLER_IDENTITY_SECRET names the key id {kid!r} twice.")
        keys[kid] = secret.encode()
    return IdentityKeys(keys=keys, signing_kid=next(iter(keys)))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def identity_sign(
    *, identity: Identity, keys: IdentityKeys, audience: str, method: str, path: str,
    ttl: int = MAX_TTL, now: float | None = None,
) -> str:  # fmt: skip
    """Return the header value vouching for `identity` on `method` `path` to `audience`.

    The claims are written out directly (the same compact JSON ``json.dumps`` would make, every
    string escaped by its C encoder) and signed with the one-shot ``hmac.digest``: this runs
    once per authenticated request on the proxy's fast path.
    """
    issued = int(time.time() if now is None else now)
    claims = (
        f'{{"sub":{_json_string(identity.user_id)},"email":{_json_string(identity.email)},'
        f'"staff":{"true" if identity.is_staff else "false"},"aud":{_json_string(audience)},'
        f'"htm":{_json_string(method)},"htu":{_json_string(path)},"iat":{issued},'
        f'"exp":{issued + min(ttl, MAX_TTL)}}}'
    )
    signing = keys._header_b64 + b"." + _b64(claims.encode("ascii"))
    signature = _b64(hmac.digest(keys.keys[keys.signing_kid], signing, "sha256"))
    return (signing + b"." + signature).decode("ascii")


def identity_verify(
    *, header: str | None, keys: IdentityKeys, audience: str, method: str, path: str,
    now: float | None = None,
) -> Identity:  # fmt: skip
    """Return the identity in `header`, or raise IdentityError if it is not genuine, fresh and
    meant for this service, method and path."""
    import jwt  # only the halves check identities: the proxy, which signs, never loads PyJWT

    if not header:
        raise IdentityError(f"{HEADER} header is missing")
    try:
        kid = jwt.get_unverified_header(header).get("kid")
    except jwt.PyJWTError as exc:
        raise IdentityError(f"{HEADER} header is not a signed token ({exc})") from exc
    key = keys.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise IdentityError(f"{HEADER} header is signed with an unknown key id {kid!r}")
    try:
        claims = jwt.decode(
            header, key, algorithms=["HS256"], audience=audience,
            # Time is checked below, against `now` and the 30 s ceiling.
            options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False},
        )  # fmt: skip
    except jwt.InvalidAudienceError as exc:
        raise IdentityError(
            f"{HEADER} header is meant for another service, not {audience!r}"
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise IdentityError(f"{HEADER} header has a bad signature") from exc
    except jwt.PyJWTError as exc:
        raise IdentityError(f"{HEADER} header is invalid: {exc}") from exc
    issued, expires = claims["iat"], claims["exp"]
    if not isinstance(issued, int) or not isinstance(expires, int) or expires - issued > MAX_TTL:
        raise IdentityError(f"{HEADER} header lives longer than {MAX_TTL} s")
    current = time.time() if now is None else now
    if expires < current:
        raise IdentityError(f"{HEADER} expired at {expires}")
    if issued > current + CLOCK_SKEW:
        raise IdentityError(f"{HEADER} header was issued in the future ({issued})")
    if claims["htm"] != method:
        raise IdentityError(f"{HEADER} header is meant for {claims['htm']!r}, not {method!r}")
    if claims["htu"] != path:
        raise IdentityError(f"{HEADER} header is meant for another path, not {path!r}")
    return Identity(
        user_id=str(claims["sub"]),
        email=str(claims.get("email") or ""),
        is_staff=bool(claims.get("staff", False)),
    )
