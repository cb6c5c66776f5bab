"""Bearer-token authentication: clients send `Authorization: Bearer <token>`.

Tokens are django-rest-knox's `AuthToken`: the database keeps only a SHA-512 digest of each
token (never the token), an expiry, and the user; every login makes a new one, so a user holds
one per device and logging out on one leaves the others alone. Only the half that owns the
users installs `knox`; the others trust the proxy's signed identity (`identity_auth.py`).

Lookups go straight to the digest (the table's primary key), so a request costs one indexed
read whatever the number of tokens; knox's own lookup also scans the user's other tokens on
every request to delete expired ones, which we leave to a periodic purge instead
(`monolith.users.services.token_purge_expired`).
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from rest_framework.exceptions import AuthenticationFailed


class BearerTokenAuthentication(TokenAuthentication):
    """A knox token, presented with the standard `Bearer` keyword; expired ones are refused."""

    keyword = "Bearer"

    def authenticate_header(self, request) -> str:
        return self.keyword

    def authenticate_credentials(self, token: bytes):
        try:
            key = token.decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        try:
            auth_token = (
                get_token_model().objects.select_related("user").get(digest=hash_token(key))
            )
        except get_token_model().DoesNotExist:
            raise AuthenticationFailed("Invalid token.") from None
        if auth_token.expiry is not None and auth_token.expiry <= timezone.now():
            raise AuthenticationFailed("The token has expired; log in again.")
        return self.validate_user(auth_token)


def bearer_token(request) -> str:
    """Return the token of the request's `Authorization: Bearer <token>` header, or raise 401.

    Logout revokes the token the request was made with, whoever vouched for the caller (this
    half's token check, or the proxy's signed identity).
    """
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != BearerTokenAuthentication.keyword.lower() or not token.strip():
        raise AuthenticationFailed(
            "Log out with the token to revoke: Authorization: Bearer <token>."
        )
    return token.strip()


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describe BearerTokenAuthentication in the OpenAPI document (`Authorization: Bearer`)."""

    target_class = "service_kit.auth.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=BearerTokenAuthentication.keyword
        )


class SignedIdentityScheme(OpenApiAuthenticationExtension):
    """Describe the identity the proxy signs (`X-Strangler-Identity`): clients send a Bearer
    token to the proxy, which checks it once and sends this header to the half."""

    target_class = "service_kit.identity_auth.SignedIdentityUserAuthentication"
    name = "signedIdentity"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Strangler-Identity"}
