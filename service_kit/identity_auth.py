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


class SignedIdentityUserAuthentication(SignedIdentityAuthentication):
    """Trust the signed identity, and give the request the user's row of this half's table.

    For a half that holds users (the monolith, the users service): its views need a real user
    (foreign keys, the password check of a password change), so the identity the proxy vouched
    for is looked up by id. A user registered on the other half a moment ago may not have
    reached this one yet: the lookup waits for its `user.registered` event, polling outside any
    transaction for at most `STRANGLER_USER_REPLICA_WAIT_MS` (1500), then answers 503
    `user_not_replicated` (retry). An inactive user is refused like a bad token.

    Without the header: a request the proxy forwarded (X-Forwarded-For from a trusted peer,
    STRANGLER_TRUSTED_PROXIES) with a token is one the proxy vouched for no one with, refused
    401 "Invalid token." as the services refuse it (this half's copy of the token may not have
    heard of its revocation on the other half yet); a request sent here directly (the proxy
    asking who a token is, an operator, a test) steps aside for the half's own token check.
    """

    def authenticate(self, request: Request):
        # Not at the top: login_throttle loads DRF's settings, which load this module.
        from .login_throttle import forwarded_by_trusted_proxy

        if request.headers.get(HEADER) is None:
            if request.headers.get("Authorization") and forwarded_by_trusted_proxy(request.META):
                # The proxy forwarded a token it vouched for no one with (unknown, revoked):
                # refused as the services refuse it, whatever this half's copy still says.
                raise AuthenticationFailed("Invalid token.")
            return None  # a bare Bearer token sent here directly: checked by the next class
        found = super().authenticate(request)
        if found is None:
            return None
        caller, identity = found
        user = user_replica_wait(user_id=caller.pk)
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user, identity


def user_replica_wait(*, user_id: int):
    """Return this half's user `user_id`, waiting a moment for its event; raise 503 if absent."""
    import time

    from django.contrib.auth import get_user_model

    from .errors import UpstreamUnavailable

    model = get_user_model()
    wait_ms = int(getattr(settings, "STRANGLER_USER_REPLICA_WAIT_MS", 1500))
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        user = model.objects.filter(pk=user_id).first()
        if user is not None:
            return user
        if time.monotonic() >= deadline:
            raise UpstreamUnavailable(
                f"User {user_id} is not known to this half yet (their registration is still on "
                "its way from the other half); retry in a moment.",
                code="user_not_replicated",
            )
        time.sleep(0.05)
