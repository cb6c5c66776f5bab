"""Sign the identity a request carries to the half that serves it (service_kit.identity's format).

An identity is signed for one service (``aud``), one method and one decoded path, and lives
``STRANGLER_IDENTITY_TTL`` seconds: a fallback to the monolith, a shadow mirror to the candidate
and each part of the overview get their own. Without keys nothing is signed.
"""

from __future__ import annotations

from urllib.parse import unquote

from service_kit.identity import HEADER, Identity, IdentityKeys
from service_kit.identity import IdentitySigner as _KeySigner

_PREFIX = HEADER.encode() + b": "


def signed_path(raw_path: str) -> str:
    """Return the decoded path an identity is signed for (as the half's framework decodes it).

    Only called for paths the router accepted (paths.py), whose escapes are valid UTF-8.
    """
    return raw_path if "%" not in raw_path else unquote(raw_path)


class IdentitySigner:
    """Sign identities with this process's keys (the first key signs)."""

    def __init__(self, keys: IdentityKeys | None, *, ttl: int):
        self._signer = None if keys is None else _KeySigner(keys, ttl=ttl)

    def sign(self, identity: Identity, audience: str, method: str, path: str) -> str | None:
        """Return the identity header value for one request to `audience` (None: no keys)."""
        if self._signer is None:
            return None
        return self._signer.sign(identity, audience, method, path)

    def line(self, identity: Identity | None, audience: str, method: str, path: str) -> bytes:
        """Return the header line vouching for `identity`, or b"" (no one to vouch for, no key)."""
        signer = self._signer
        if identity is None or signer is None:
            return b""
        return _PREFIX + signer.sign(identity, audience, method, path).encode() + b"\r\n"
