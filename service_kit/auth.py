"""Bearer-token authentication: clients send `Authorization: Bearer <token>`."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's opaque, revocable token, presented with the standard `Bearer` keyword."""

    keyword = "Bearer"
