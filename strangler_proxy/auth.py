"""Authentication at the edge: validate a client's Bearer token once, then vouch for the user.

Tokens are opaque (knox), so the proxy asks the half that owns identity who a token belongs to
(``GET /api/users/me/`` with the token) and caches the answer: a known user for
``auth_cache_ttl`` seconds, an unknown token for a fifth of that. Concurrent requests with the
same new token share one lookup. A token every owner refuses yields no identity: the request
still goes upstream, which answers 401 itself.

The owners are the route table's (``RouteTable.identity_owners``): the monolith alone, or, from
step 2 on, both users halves in the order the users route's mode gives, asked in turn until one
knows the token. Both halves hold every token's digest (replicated by ``user.token_*`` events),
so the second is asked only for a token made on it a moment ago. Because a half learns the
other's revocations a moment late too, two rules keep every revocation:

* a token the proxy saw revoked (a logout it forwarded, or one another proxy or worker
  announced) is refused for good without asking anyone: a revoked token never comes back;
* for ``REVOKED_USER_SETTLE_S`` after a user's tokens were revoked (``user:<id>``: a password
  change, a deactivation, a logout on a half), a token of that user needs **every** owner to
  vouch; an owner that does not know it yet is asked again until ``REPLICATION_WAIT_S``, since
  a token made on the other half reaches it within the events' lag while a revoked one never
  comes back.

A logout the proxy forwarded (and the monolith accepted) drops the token at once, and a
password change drops every token of its user: ``revoke`` here, and through ``revocation.py``
in every other worker and proxy instance. A lookup that was in flight when its token (or its
user) was revoked does not put it back.

Revocation messages, the same in every carrier (this process, the workers' shared ring, the
Redis channel, ``service_kit.revocations``): ``<64 hex>``, the SHA-256 of one token, or
``user:<id>``, every token of user ``<id>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Sequence

import aiohttp

from service_kit.identity import Identity

ME_PATH = "/api/users/me/"
#: After a user's tokens were revoked somewhere, how long every owner must vouch for theirs.
REVOKED_USER_SETTLE_S = 10.0
#: How long an owner that does not know a token yet is given to learn it from the other half.
REPLICATION_WAIT_S = 2.0
_REVOKED_KEPT = 10_000
_TOKEN_KEY = re.compile(r"^[0-9a-f]{64}$")
_USER = re.compile(r"^user:([0-9]{1,20})$")


def user_message(user_id: str) -> str:
    """Return the revocation message that drops every token of `user_id`."""
    return f"user:{user_id}"


def revocation_valid(message: str) -> bool:
    """Return whether `message` is a revocation message (a token key or ``user:<id>``)."""
    return bool(_TOKEN_KEY.match(message) or _USER.match(message))


def token_key(authorization: str) -> str | None:
    """Return the cache key of a ``Bearer <token>`` header (its SHA-256), or None for no token."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return hashlib.sha256(token.strip().encode()).hexdigest()


class EdgeAuth:
    """Resolve Bearer tokens to identities through the monolith, with a TTL cache."""

    def __init__(self, *, ttl: float, max_entries: int = 10_000, shared=None):
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        self._pending: dict[str, asyncio.Future] = {}
        # user id -> the keys of their cached tokens, so a password change drops them all.
        self._by_user: dict[str, set[str]] = {}
        # key (or user id) -> when it was revoked: a lookup that started before must not cache
        # the token again.
        self._revoked: dict[str, float] = {}
        self._revoked_users: dict[str, float] = {}
        # Revocations other worker processes made (sharing.SharedRevocations), read on each
        # cache hit from shared memory: no system call, and no window after a logout's answer.
        self.shared = shared
        self.lookups = 0
        self.revocations = 0

    def revoke(self, message: str) -> None:
        """Apply a revocation message: ``<64 hex>`` drops one token, ``user:<id>`` a user's."""
        found = _USER.match(message)
        if found:
            self.drop_user(found.group(1))
        elif _TOKEN_KEY.match(message):
            self.drop(message)

    def drop(self, key: str) -> None:
        """Forget the token with cache key `key` (a logout somewhere revoked it)."""
        cached = self._cache.pop(key, None)
        if cached is not None and cached[1] is not None:
            self._by_user.get(cached[1].user_id, set()).discard(key)
        if len(self._revoked) >= _REVOKED_KEPT:
            self._revoked.clear()
        self._revoked[key] = time.monotonic()
        self.revocations += 1

    def drop_user(self, user_id: str) -> None:
        """Forget every cached token of `user_id` (their password changed somewhere)."""
        for key in self._by_user.pop(user_id, ()):
            self._cache.pop(key, None)
        if len(self._revoked_users) >= _REVOKED_KEPT:
            self._revoked_users.clear()
        self._revoked_users[user_id] = time.monotonic()
        self.revocations += 1

    def clear(self) -> None:
        """Forget every token (revocations may have been missed, e.g. while Redis was away)."""
        self._cache.clear()
        self._by_user.clear()

    def peek(self, authorization: str) -> tuple[bool, Identity | None]:
        """Return ``(True, identity)`` if the cache knows `authorization`, else ``(False, None)``.

        Lets the fast path serve a known token without awaiting anything.
        """
        return self.peek_key(token_key(authorization))

    def peek_key(self, key: str | None) -> tuple[bool, Identity | None]:
        """`peek` for a token's cache key (``token_key``; None: no Bearer token, no identity)."""
        if key is None:
            return True, None
        if self.shared is not None:
            self.shared.apply(self)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return True, cached[1]
        return False, None

    async def identify(
        self, *, authorization: str, session: aiohttp.ClientSession, owner_urls: Sequence[str]
    ) -> Identity | None:
        """Return the identity behind `authorization` (``Bearer <token>``), or None.

        `owner_urls` are the base URLs of the halves that own identity, in the order to ask.
        """
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        if key in self._revoked:
            return None  # revoked through a proxy: never valid again, whoever still knows it
        if self.shared is not None:
            self.shared.apply(self)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            identity = await self._ask(authorization, session, owner_urls)
            if self._revoked.get(key, -1.0) >= now:
                identity = None  # logged out while we asked: the answer is already stale
            elif identity is not None and self._revoked_users.get(identity.user_id, -1.0) >= now:
                # The user's tokens were revoked while we asked: this answer may predate it. Not
                # cached either way (the token may be a new one): the next request asks again.
                future.set_result(None)
                return None
            ttl = self.ttl if identity is not None else self.ttl / 5
            if len(self._cache) >= self.max_entries:
                # Crude but bounded: a burst of new tokens costs lookups only.
                self._cache.clear()
                self._by_user.clear()
            self._cache[key] = (time.monotonic() + ttl, identity)
            if identity is not None:
                self._by_user.setdefault(identity.user_id, set()).add(key)
            future.set_result(identity)
            return identity
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._pending[key]

    async def _ask(
        self, authorization: str, session: aiohttp.ClientSession, urls: Sequence[str]
    ) -> Identity | None:
        """Ask the owners in turn; for a user revoked a moment ago, require every one of them."""
        identity = None
        for url in urls:
            identity = await self._lookup(authorization, session, url)
            if identity is not None:
                break
        if identity is None or len(urls) < 2:
            return identity
        revoked_at = self._revoked_users.get(identity.user_id)
        if revoked_at is None or time.monotonic() - revoked_at > REVOKED_USER_SETTLE_S:
            return identity
        deadline = time.monotonic() + REPLICATION_WAIT_S
        for url in urls:
            while await self._lookup(authorization, session, url) is None:
                if time.monotonic() >= deadline:
                    return None  # one half still refuses it: revoked there, not news
                await asyncio.sleep(0.1)
        return identity

    async def _lookup(self, authorization: str, session: aiohttp.ClientSession, base_url: str):
        self.lookups += 1
        timeout = aiohttp.ClientTimeout(total=5)
        try:
            async with session.get(
                base_url + ME_PATH,
                headers={"Authorization": authorization, "Accept": "application/json"},
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                if resp.status != 200:
                    return None
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("id") is None:
            return None
        return Identity(
            user_id=str(data["id"]),
            email=str(data.get("email") or ""),
            is_staff=bool(data.get("is_staff", False)),
        )
