"""Token buckets per route group and per user (or client address), shared through Redis.

A group in the table (``[rate_limits.writes] rate = 5, burst = 10``) holds one bucket per caller:
``rate`` tokens per second refill it up to ``burst``; a request takes one token or is refused
with 429 and ``Retry-After`` (whole seconds until a token is back). With ``REDIS_URL`` the
buckets live in Redis (one Lua script, atomic, Redis's own clock) so every proxy instance shares
them; without it, in this process.

One rule needs no configuration: ``POST /api/auth/token/`` (``STRANGLER_AUTH_LOGIN``) is limited
per client address with the group ``login`` (``LOGIN_DEFAULT``: a burst of 20, then one attempt
every 2 s), which a table tunes by defining ``[rate_limits.login]``. An attempt takes a token
before it is forwarded and a successful login gives it back (``cost=-1``), so only failed
logins, password guesses, use the budget up: a shop behind one address, or a contract suite
logging hundreds of customers in, is never slowed, and guessing is held to 30 a minute per
address (the users' half counts failures per account too).
"""

from __future__ import annotations

import math
import time

from .routes import RateLimit

LOGIN_GROUP = "login"
LOGIN_DEFAULT = RateLimit(rate=0.5, burst=20)


def login_limit(table) -> RateLimit:
    """Return the login rule's bucket: the table's ``login`` group, else ``LOGIN_DEFAULT``."""
    return table.rate_limits.get(LOGIN_GROUP) or LOGIN_DEFAULT


_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3] or '1')
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if cost < 0 then
  tokens = math.min(burst, tokens - cost)
  allowed = 1
elseif tokens >= cost then
  tokens = tokens - cost
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

    async def take(self, *, key: str, limit: RateLimit, cost: int = 1) -> float:
        """Take `cost` tokens (a negative cost gives tokens back, up to the burst); return 0 if
        allowed, else seconds until one is available."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(limit.burst), now))
        tokens = min(limit.burst, tokens + (now - stamp) * limit.rate)
        if cost < 0 or tokens >= cost:
            self._buckets[key] = (min(limit.burst, tokens - cost), now)
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

    async def take(self, *, key: str, limit: RateLimit, cost: int = 1) -> float:
        allowed, wait = await self._script(
            keys=[f"{self.prefix}:{key}"], args=[limit.rate, limit.burst, cost]
        )
        return 0.0 if int(allowed) else float(wait)

    async def close(self) -> None:
        await self.client.aclose()


def retry_after(wait: float) -> str:
    """Return the Retry-After value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))
