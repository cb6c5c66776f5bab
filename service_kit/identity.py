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

The claims have one definition, ``CLAIMS`` and ``identity_claims`` below, which both sides use:
the signer writes exactly ``identity_claims`` (a test decodes every signature with PyJWT and
compares), the verifier requires ``REQUIRED`` and reads an identity back with
``identity_from_claims``.

Checking (:func:`identity_verify`) is PyJWT's: signature, algorithm, audience and required
claims; the method, path and lifetime rules are checked here. Signing (``IdentitySigner``,
:func:`identity_sign`) writes the same compact JWS by hand: the proxy signs one per
authenticated request on its fast path, where PyJWT's encoder cost about three times as much
(docs/security.md, "Signed identity"). It computes the HMAC key pads once per key and each
identity's own claims once per identity. No Django here: the proxy imports it.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

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
#: The claims, in the order they are signed: the user's own (``sub``, ``email``, ``staff``), then
#: the request's (``aud``, ``htm``, ``htu``) and the lifetime (``iat``, ``exp``).
CLAIMS = ("sub", "email", "staff", "aud", "htm", "htu", "iat", "exp")
_OWN, _PER_REQUEST = CLAIMS[:3], CLAIMS[3:]
#: What a verifier requires (``email`` and ``staff`` may be absent: an empty email, no staff).
REQUIRED = [name for name in CLAIMS if name not in {"email", "staff"}]
# The JSON the signer writes, made from CLAIMS (the values come in CLAIMS order).
_OWN_JSON = "{" + "".join(f'"{name}":%s,' for name in _OWN)
_REQUEST_JSON = ",".join(f'"{name}":%s' for name in _PER_REQUEST) + "}"
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class IdentityError(ValueError):
    """An identity header is missing, malformed, forged, expired or meant for another request."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated user as the proxy saw them."""

    user_id: str
    email: str = ""
    is_staff: bool = False
    # The user's own claims as signed JSON (the start of every claims object signed for them):
    # written once per identity, not once per request.
    own_claims: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        own = _OWN_JSON % (
            _json_string(self.user_id), _json_string(self.email),
            "true" if self.is_staff else "false",
        )  # fmt: skip
        object.__setattr__(self, "own_claims", own)


def identity_claims(
    *, identity: Identity, audience: str, method: str, path: str, issued: int, ttl: int = MAX_TTL
) -> dict[str, Any]:
    """Return the claims vouching for `identity` on one request: what each claim holds."""
    values = (
        identity.user_id, identity.email, identity.is_staff, audience, method, path, issued,
        issued + min(ttl, MAX_TTL),
    )  # fmt: skip
    return dict(zip(CLAIMS, values, strict=True))


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    """Return the identity that `claims` vouch for."""
    return Identity(
        user_id=str(claims["sub"]),
        email=str(claims.get("email") or ""),
        is_staff=bool(claims.get("staff", False)),
    )


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
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE)


def _compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


class IdentitySigner:
    """Sign identities with the first of `keys`, as fast as the proxy's fast path needs.

    The HMAC-SHA256 key pads are hashed once (each signature copies them), each identity's own
    claims are written once (``Identity.own_claims``), the rest of the claims are written
    directly (the compact JSON ``json.dumps`` would make, strings escaped by its C encoder).
    """

    def __init__(self, keys: IdentityKeys, *, ttl: int = MAX_TTL):
        key = keys.keys[keys.signing_kid]
        if len(key) > 64:  # longer than SHA-256's block: its hash is the key (RFC 2104)
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))
        self._head = keys._header_b64 + b"."
        self.lifetime = min(ttl, MAX_TTL)

    def sign(
        self, identity: Identity, audience: str, method: str, path: str, now: float | None = None
    ) -> str:
        """Return the header value vouching for `identity` on `method` `path` to `audience`."""
        issued = int(time.time() if now is None else now)
        claims = identity.own_claims + _REQUEST_JSON % (
            _json_string(audience), _json_string(method), _json_string(path), issued,
            issued + self.lifetime,
        )  # fmt: skip
        signing = self._head + _b64(claims.encode("ascii"))
        inner = self._inner.copy()
        inner.update(signing)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return (signing + b"." + _b64(outer.digest())).decode("ascii")


def identity_sign(
    *, identity: Identity, keys: IdentityKeys, audience: str, method: str, path: str,
    ttl: int = MAX_TTL, now: float | None = None,
) -> str:  # fmt: skip
    """Return the header value vouching for `identity` on `method` `path` to `audience`.

    One signature; a process signing many keeps an ``IdentitySigner``.
    """
    return IdentitySigner(keys, ttl=ttl).sign(identity, audience, method, path, now)


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
            options={"require": REQUIRED, "verify_exp": False, "verify_iat": False},
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
    return identity_from_claims(claims)
