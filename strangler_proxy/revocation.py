"""Token revocations across proxy instances: Redis pub/sub, so a logout anywhere counts everywhere.

The instance that forwarded a successful logout publishes the token's cache key (its SHA-256,
never the token) on one channel before the client has its answer; one that forwarded a password
change publishes ``user:<id>``, and so does a half that revoked a user's tokens itself
(``service_kit.revocations.revocation_publish``). Every instance subscribes and drops what the
message names from its auth cache. Pub/sub costs nothing per request: the fast path keeps reading
its in-process cache. An instance that (re)subscribes forgets every cached token, since it may
have missed revocations while it was not listening; while the subscription is down, a cached
token stays trusted for at most the cache TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .auth import EdgeAuth, revocation_valid

log = logging.getLogger("strangler_proxy")
_PUBLISH_TIMEOUT = 1.0


class RedisRevocations:
    """Publish and follow token revocations on a Redis channel."""

    def __init__(self, url: str, *, channel: str, auth: EdgeAuth):
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)
        self.channel = channel
        self.auth = auth
        self.ready = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self, *, wait: float = 2.0) -> None:
        """Subscribe in the background; wait up to `wait` s for the subscription to stand."""
        self._task = asyncio.create_task(self._follow())
        try:
            await asyncio.wait_for(self.ready.wait(), wait)
        except TimeoutError:
            log.warning("token revocations: not subscribed to %s yet", self.channel)

    async def publish(self, message: str) -> None:
        """Tell every instance a revocation: a token's cache key, or ``user:<id>``."""
        try:
            await asyncio.wait_for(self.client.publish(self.channel, message), _PUBLISH_TIMEOUT)
        except Exception:  # the logout itself succeeded: other instances catch up within the TTL
            log.exception("publishing a token revocation failed")

    async def _follow(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.auth.clear()  # revocations sent while we were not listening are lost
                self.ready.set()
                async for message in pubsub.listen():
                    data = message.get("data")
                    message = data.decode("ascii", "replace") if isinstance(data, bytes) else ""
                    if revocation_valid(message):
                        self.auth.revoke(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarted or unreachable: resubscribe, forget the cache
                log.warning("token revocations: subscription to %s lost", self.channel)
                self.ready.clear()
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task  # it logged its own failures
        await self.client.aclose()
