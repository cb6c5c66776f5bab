"""Authenticate a request by the identity the proxy signed, for services that own no user table.

Clients reach an extracted service through `strangler_proxy`: the proxy resolves the client's
`Authorization: Bearer <token>` and forwards `X-Strangler-Identity`, a JWT signed with
`STRANGLER_IDENTITY_SECRET` for this service (`STRANGLER_IDENTITY_AUDIENCE`, default its
`STRANGLER_SERVICE_NAME`), this method and this path, for at most 30 s (service_kit/identity.py).
This class trusts that header and nothing else:

* a valid, fresh signature for this request -> the request's user is an `IdentityUser`
* a forged, malformed or expired header, or one signed for another service, method or path
                                            -> 401 authentication_failed, naming why
* no header, but an Authorization header   -> 401 authentication_failed "Invalid token." (the proxy
                                              vouched for no one: the token is unknown, exactly
                                              what the monolith answers for a bad token)
* neither header                           -> anonymous: 401 not_authenticated from the permission
* no secret configured                     -> every identity is refused (fail closed)

The 401 carries `WWW-Authenticate: Bearer`, as the monolith's token authentication does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from .identity import HEADER, IdentityError, IdentityKeys, identity_keys_parse, identity_verify


@lru_cache(maxsize=8)
def _keys(raw: str) -> IdentityKeys:
    return identity_keys_parse(raw)


def identity_audience() -> str:
    """Return the name this service answers to in a signed identity's audience."""
    return getattr(settings, "STRANGLER_IDENTITY_AUDIENCE", "") or getattr(
        settings, "STRANGLER_SERVICE_NAME", ""
    )


@dataclass(frozen=True)
class IdentityUser:
    """The caller as the proxy vouched for them: an id, an email, a staff flag; no database row."""

    pk: int
    email: str = ""
    is_staff: bool = False

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def id(self) -> int:
        return self.pk

    def __str__(self) -> str:
        return self.email or f"user {self.pk}"


class SignedIdentityAuthentication(BaseAuthentication):
    """Trust only a valid signed `X-Strangler-Identity` header (see the module docstring)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[IdentityUser, object] | None:
        header = request.headers.get(HEADER)
        if header is None:
            if request.headers.get("Authorization"):
                raise AuthenticationFailed("Invalid token.")
            return None
        secret = getattr(settings, "STRANGLER_IDENTITY_SECRET", "") or ""
        if not secret:
            raise AuthenticationFailed(
                f"This service has no STRANGLER_IDENTITY_SECRET, so it cannot check {HEADER}."
            )
        try:
            identity = identity_verify(
                header=header, keys=_keys(secret), audience=identity_audience(),
                method=request.method, path=request.path,
            )  # fmt: skip
        except IdentityError as exc:
            raise AuthenticationFailed(f"{exc}.") from exc
        try:
            user_id = int(identity.user_id)
        except ValueError:
            raise AuthenticationFailed(
                f"{HEADER} names user {identity.user_id!r}; a user id is an integer."
            ) from None
        if user_id < 1:
            raise AuthenticationFailed(f"{HEADER} names user {user_id}; ids start at 1.")
        user = IdentityUser(pk=user_id, email=identity.email, is_staff=identity.is_staff)
        return user, identity

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
