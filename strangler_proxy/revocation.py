"""Token revocations across proxy instances: Redis pub/sub, so a logout anywhere counts everywhere.

The instance that forwarded a successful logout publishes the token's cache key (its SHA-256,
never the token) on one channel before the client has its answer; every instance subscribes and
drops the key from its auth cache. Pub/sub costs nothing per request: the fast path keeps reading
its in-process cache. An instance that (re)subscribes forgets every cached token, since it may
have missed revocations while it was not listening; while the subscription is down, a cached
token stays trusted for at most the cache TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from .auth import EdgeAuth

log = logging.getLogger("strangler_proxy")
_KEY = re.compile(r"^[0-9a-f]{64}$")
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

    async def publish(self, key: str) -> None:
        """Tell every instance that the token with cache key `key` is revoked."""
        try:
            await asyncio.wait_for(self.client.publish(self.channel, key), _PUBLISH_TIMEOUT)
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
                    key = data.decode("ascii", "replace") if isinstance(data, bytes) else ""
                    if _KEY.match(key):
                        self.auth.drop(key)
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
