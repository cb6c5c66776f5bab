"""The service registry: instances register, heartbeat, and drop out when they stop.

An instance registers ``(service, url)`` with a TTL and re-registers (heartbeats) before it
runs out; an instance whose TTL passed is no longer returned. Two backends, one interface:

* :class:`MemoryRegistry`, in this process (the default);
* :class:`RedisRegistry` when ``REDIS_URL`` is set: a sorted set per service, scored by expiry
  time in milliseconds, so every proxy instance and the client helper see the same instances.
"""

from __future__ import annotations

import time

DEFAULT_TTL = 10.0


def _check(service: str, url: str, ttl: float) -> None:
    if not service or len(service) > 64:
        raise ValueError(f"service name {service!r} must be 1-64 characters")
    if not url.startswith("http://") or len(url) > 200:
        raise ValueError(f"instance url {url!r} must be an http:// URL")
    if not 0 < ttl <= 3600:
        raise ValueError(f"ttl {ttl!r} must be between 0 and 3600 seconds")


class MemoryRegistry:
    """Registered instances in this process."""

    backend = "memory"

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, float]] = {}

    async def register(self, *, service: str, url: str, ttl: float = DEFAULT_TTL) -> None:
        """Add or refresh `url` as an instance of `service` for `ttl` seconds."""
        url = url.rstrip("/")
        _check(service, url, ttl)
        self._entries.setdefault(service, {})[url] = time.time() + ttl

    async def deregister(self, *, service: str, url: str) -> None:
        self._entries.get(service, {}).pop(url.rstrip("/"), None)

    async def instances(self, *, service: str) -> list[str]:
        """Return the live instances of `service`, dropping expired ones."""
        now = time.time()
        entries = self._entries.get(service, {})
        for url in [u for u, exp in entries.items() if exp <= now]:
            del entries[url]
        return sorted(entries)

    async def snapshot(self) -> dict[str, list[str]]:
        return {name: await self.instances(service=name) for name in sorted(self._entries)}

    async def close(self) -> None:
        return None


class RedisRegistry:
    """Registered instances in Redis, shared across processes."""

    backend = "redis"

    def __init__(self, url: str, *, prefix: str = "strangler:registry"):
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    def _key(self, service: str) -> str:
        return f"{self.prefix}:svc:{service}"

    async def register(self, *, service: str, url: str, ttl: float = DEFAULT_TTL) -> None:
        url = url.rstrip("/")
        _check(service, url, ttl)
        expires = int((time.time() + ttl) * 1000)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(self._key(service), {url: expires})
            pipe.sadd(f"{self.prefix}:services", service)
            pipe.pexpire(self._key(service), int(ttl * 1000) + 60_000)
            await pipe.execute()

    async def deregister(self, *, service: str, url: str) -> None:
        await self.client.zrem(self._key(service), url.rstrip("/"))

    async def instances(self, *, service: str) -> list[str]:
        now = int(time.time() * 1000)
        key = self._key(service)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zrange(key, 0, -1)
            _, urls = await pipe.execute()
        return sorted(urls)

    async def snapshot(self) -> dict[str, list[str]]:
        names = sorted(await self.client.smembers(f"{self.prefix}:services"))
        return {name: await self.instances(service=name) for name in names}

    async def close(self) -> None:
        await self.client.aclose()


def registry_from_url(redis_url: str | None, *, prefix: str = "strangler:registry"):
    """Return the Redis registry when `redis_url` is set, else the in-process one."""
    return RedisRegistry(redis_url, prefix=prefix) if redis_url else MemoryRegistry()
