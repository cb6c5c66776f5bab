"""Token buckets per route group and per user (or client address), shared through Redis.

A group in the table (``[rate_limits.writes] rate = 5, burst = 10``) holds one bucket per caller:
``rate`` tokens per second refill it up to ``burst``; a request takes one token or is refused
with 429 and ``Retry-After`` (whole seconds until a token is back). With ``REDIS_URL`` the
buckets live in Redis (one Lua script, atomic, Redis's own clock) so every proxy instance shares
them; without it, in this process.
"""

from __future__ import annotations

import math
import time

from .routes import RateLimit

_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class MemoryBuckets:
    """Token buckets in this process."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, *, key: str, limit: RateLimit) -> float:
        """Take a token; return 0 if allowed, else seconds until one is available."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(limit.burst), now))
        tokens = min(limit.burst, tokens + (now - stamp) * limit.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / limit.rate

    async def close(self) -> None:
        self._buckets.clear()


class RedisBuckets:
    """Token buckets in Redis, shared by every proxy instance."""

    def __init__(self, url: str, *, prefix: str = "strangler:rl"):
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self._script = self.client.register_script(_LUA)

    async def take(self, *, key: str, limit: RateLimit) -> float:
        allowed, wait = await self._script(
            keys=[f"{self.prefix}:{key}"], args=[limit.rate, limit.burst]
        )
        return 0.0 if int(allowed) else float(wait)

    async def close(self) -> None:
        await self.client.aclose()


def retry_after(wait: float) -> str:
    """Return the Retry-After value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))
