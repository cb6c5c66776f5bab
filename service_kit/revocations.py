"""Tell every proxy instance to forget a user's cached tokens: ``revocation_publish``.

The proxy caches token -> identity (``STRANGLER_AUTH_CACHE_TTL``). A half that revokes tokens
(a password change, an admin disabling a user) calls :func:`revocation_publish` after its
transaction commits, so no proxy vouches for a revoked token for longer than it takes a
pub/sub message to arrive.

The message contract, shared with ``strangler_proxy.revocation``: one Redis pub/sub channel,
``settings.STRANGLER_AUTH_REVOKE_CHANNEL`` (default ``strangler:auth:revoked``), carrying either

* ``<64 lowercase hex>``: the SHA-256 of one token (the proxy publishes these on logout), or
* ``user:<id>``: every token of user ``<id>`` (an integer), whatever the token.

Without ``settings.REDIS_URL`` there is no channel and this does nothing: then a proxy forgets
a revocation it forwarded itself at once, and any other within its cache TTL (docs/security.md).
"""

from __future__ import annotations

import logging

from django.conf import settings

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "strangler:auth:revoked"
#: Seconds to connect to and publish on Redis; a revocation never holds a request for longer.
_TIMEOUT = 1.0


def revocation_channel() -> str:
    """Return the pub/sub channel the proxies follow for token revocations."""
    return getattr(settings, "STRANGLER_AUTH_REVOKE_CHANNEL", "") or DEFAULT_CHANNEL


def revocation_publish(*, user_id: int) -> None:
    """Tell every proxy to forget the cached tokens of user `user_id` (call after commit).

    Publishes ``user:<user_id>`` on :func:`revocation_channel` at ``settings.REDIS_URL``; does
    nothing when Redis is not configured. A Redis failure is logged, never raised: the
    revocation itself has committed, and proxies forget the token within their cache TTL.
    """
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise ValueError(f"A user id is a positive integer, got {user_id!r}.")
    url = getattr(settings, "REDIS_URL", "") or ""
    if not url:
        return
    import redis

    channel = revocation_channel()
    client = redis.Redis.from_url(url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT)
    try:
        client.publish(channel, f"user:{user_id}")
    except redis.RedisError as exc:
        log.warning(
            "publishing the revocation of user %s's tokens on %s failed (%s): proxies forget "
            "them within their cache TTL",
            user_id,
            channel,
            exc,
        )
    finally:
        client.close()
