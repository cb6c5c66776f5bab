"""What the edge does around the requests that change who is logged in.

* **Login** (``STRANGLER_AUTH_LOGIN``, default ``POST /api/auth/token/``): every attempt from a
  client address takes a token of the ``login`` group (ratelimit.py) before it is forwarded; a
  2xx answer gives it back, so only failures count.
* **Logout** (``STRANGLER_AUTH_LOGOUT``): a 2xx answer revokes the caller's token, before the
  client has the answer: here, in the other workers (sharing.SharedRevocations) and in the
  other instances (revocation.RedisRevocations).
* **Password change** (``STRANGLER_AUTH_PASSWORD_CHANGE``): a 2xx answer forgets every cached
  token of the caller's user, the same three ways.

Nothing here runs for other requests: ``methods`` holds the methods worth a look.
"""

from __future__ import annotations

from .auth import EdgeAuth, token_key, user_message
from .paths import path_for_routing
from .ratelimit import LOGIN_GROUP, login_limit


class AuthEvents:
    """Login throttling and revocations, everywhere a token may be cached."""

    def __init__(
        self, *, auth: EdgeAuth, limiter, shared=None, channel=None,
        login: tuple[str, str] | None, logout: tuple[str, str] | None,
        password_change: tuple[str, str] | None,
    ):  # fmt: skip
        self.auth, self.limiter, self.shared, self.channel = auth, limiter, shared, channel
        self.login, self.logout, self.password_change = login, logout, password_change
        self.methods = frozenset(rule[0] for rule in (login, logout, password_change) if rule)

    def is_login(self, method: str, path: str) -> bool:
        """Return whether `method` `path` (decoded) is the login the edge throttles."""
        return self.login is not None and method == self.login[0] and path == self.login[1]

    async def login_wait(self, *, remote: str, table) -> float:
        """Take a login attempt of `remote`; return 0, or the seconds until one is allowed."""
        return await self.limiter.take(key=f"{LOGIN_GROUP}:addr:{remote}", limit=login_limit(table))

    async def answered(self, req, status: int, identity, table) -> None:
        """Act on a 2xx answer to `req` (a server.Request) before the client has it."""
        method = req.method
        if self.logout is not None and method == self.logout[0] and req.path == self.logout[1]:
            if req.authorization is not None:
                # Its next request, on any instance, is refused.
                key = token_key(req.authorization.decode("latin-1"))
                if key is not None:
                    await self.revoke(key)
            return
        if (
            self.password_change is not None
            and method == self.password_change[0]
            and req.path == self.password_change[1]
        ):
            if identity is not None:
                # A password change revokes the user's tokens at the monolith; any profile
                # change makes what is cached about the user stale: forget it everywhere.
                await self.revoke(user_message(identity.user_id))
            return
        if (
            self.login is not None
            and method == self.login[0]
            and path_for_routing(req.path) == self.login[1]
        ):
            # A successful login gives its attempt back: only failures are limited.
            await self.limiter.take(
                key=f"{LOGIN_GROUP}:addr:{req.remote}", limit=login_limit(table), cost=-1
            )

    async def revoke(self, message: str) -> None:
        """Apply a revocation message (a token's key or ``user:<id>``) everywhere it is cached."""
        self.auth.revoke(message)
        if self.shared is not None:
            self.shared.publish(message)
        if self.channel is not None:
            await self.channel.publish(message)
