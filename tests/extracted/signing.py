"""Sign requests as the proxy does, for the tests of the services that trust its identity.

A service has no users: a client is "signed in" by carrying the X-Strangler-Identity header the
proxy would sign for that service (the audience), each request's method and its path.
"""

from __future__ import annotations

from rest_framework.test import APIClient

from service_kit.identity import HEADER, Identity, identity_keys_parse, identity_sign

SECRET = "test-identity-secret-of-32-bytes-or-more"
_META = f"HTTP_{HEADER.upper().replace('-', '_')}"


def signed(
    user_id: int, *, audience: str, method: str = "GET", path: str = "/", staff: bool = False,
    ttl: int = 30, secret: str = SECRET, now: float | None = None,
) -> str:  # fmt: skip
    """Return an X-Strangler-Identity value for `user_id`, as the proxy would sign it."""
    identity = Identity(user_id=str(user_id), email=f"u{user_id}@example.com", is_staff=staff)
    return identity_sign(
        identity=identity, keys=identity_keys_parse(secret), audience=audience, method=method,
        path=path, ttl=ttl, now=now,
    )  # fmt: skip


class SignedClient(APIClient):
    """An API client that carries, on each request, an identity signed for that request."""

    def __init__(self, user_id: int, *, audience: str, staff: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.user_id = user_id
        self.audience = audience
        self.staff = staff

    def request(self, **request):
        request[_META] = signed(
            self.user_id, audience=self.audience, staff=self.staff,
            method=request["REQUEST_METHOD"], path=request["PATH_INFO"],
        )  # fmt: skip
        return super().request(**request)
