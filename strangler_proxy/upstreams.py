"""Upstream instances: circuit breakers, health, and client-side load balancing.

* Breaker per instance: opens after `failure_threshold` consecutive failures (connect error,
  timeout, 5xx), refuses traffic for `reset_after` seconds, then lets one probe through
  (half-open); the probe's outcome closes or re-opens it.
* Balancing over healthy instances whose breaker admits traffic: ``round_robin`` or
  ``least_outstanding`` (fewest requests in flight). When no instance qualifies, the pool still
  tries the one whose breaker opened longest ago rather than refusing outright.
* Health: an active check of ``health_path`` (``/readyz``) every ``health_interval`` seconds; an
  answer below 500 counts as healthy, a 5xx or no answer as unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp

from .routes import MONOLITH, Service

log = logging.getLogger("strangler_proxy")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(slots=True)
class Breaker:
    """A consecutive-failure circuit breaker with a single half-open probe."""

    failure_threshold: int = 5
    reset_after: float = 5.0
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False

    def allows(self, now: float) -> bool:
        """Return whether a request may go to the instance now (claims the probe if half-open)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and now - self.opened_at >= self.reset_after:
            self.state = HALF_OPEN
            self.probing = False
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def record(self, ok: bool, now: float) -> None:
        if ok:
            self.state, self.failures, self.probing = CLOSED, 0, False
            return
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            self.state, self.opened_at, self.probing = OPEN, now, False


@dataclass(slots=True)
class Instance:
    """One address of a service, with its breaker and live counters."""

    url: str
    host: str
    breaker: Breaker = field(default_factory=Breaker)
    healthy: bool = True
    outstanding: int = 0
    static: bool = True
    host_line: bytes = b""  # b"Host: <host>\r\n", ready for the hot path

    def __post_init__(self) -> None:
        self.host_line = b"Host: " + self.host.encode("latin-1") + b"\r\n"

    @classmethod
    def from_url(cls, url: str, *, static: bool = True) -> Instance:
        return cls(url=url, host=url.split("://", 1)[1].rstrip("/"), static=static)

    def judge(self, status: int) -> bool:
        """Feed an answer's status to the breaker; return whether it was a failure (5xx)."""
        breaker = self.breaker
        if status >= 500:
            breaker.record(False, time.monotonic())
            return True
        if breaker.state != CLOSED or breaker.failures:
            breaker.record(True, time.monotonic())
        return False

    def as_dict(self) -> dict:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "breaker": self.breaker.state,
            "outstanding": self.outstanding,
            "source": "static" if self.static else "registry",
        }


class NoInstance(LookupError):
    """A service has no instance to send a request to."""


class ServicePool:
    """The instances of one service and the choice among them."""

    def __init__(self, service: Service, instances: dict[str, Instance]):
        self.service = service
        self.name = service.name
        self.instances: list[Instance] = []
        self._next = 0
        self.set_static(instances)

    def set_static(self, known: dict[str, Instance]) -> None:
        """Adopt the service's static instances, keeping breakers of addresses already known."""
        keep = [i for i in self.instances if not i.static]
        static = [known.get(url) or Instance.from_url(url) for url in self.service.instances]
        self.instances = static + keep

    def set_discovered(self, urls: list[str]) -> None:
        """Replace the registry-provided instances with `urls`, keeping known ones' state."""
        current = {i.url: i for i in self.instances if not i.static}
        static = [i for i in self.instances if i.static]
        static_urls = {i.url for i in static}
        found = [
            current.get(u) or Instance.from_url(u, static=False)
            for u in urls
            if u not in static_urls
        ]
        self.instances = static + found

    def pick(self, *, exclude: Instance | None = None) -> Instance:
        """Return the instance for the next request, by the service's balancing rule."""
        instances = self.instances
        if not instances:
            raise NoInstance(f"service {self.name!r} has no instances")
        if len(instances) == 1 and exclude is None:
            only = instances[0]
            if only.breaker.state == CLOSED or only.breaker.allows(time.monotonic()):
                return only
            raise NoInstance(f"service {self.name!r}: circuit open for {only.url}")
        now = time.monotonic()
        candidates = [
            i for i in instances if i is not exclude and i.healthy and i.breaker.state == CLOSED
        ]
        if not candidates:
            candidates = [i for i in instances if i is not exclude and i.breaker.allows(now)]
            if not candidates:
                raise NoInstance(f"service {self.name!r}: every instance's circuit is open")
            return candidates[0]
        if self.service.balance == "least_outstanding":
            return min(candidates, key=lambda i: i.outstanding)
        self._next = (self._next + 1) % len(candidates)
        return candidates[self._next]


class UpstreamPools:
    """The pool of every service of the table in force, kept across tables.

    ``install`` (the table store's ``on_install``) builds the pools of a new table, keeping each
    known instance's breaker and counters, and the instances discovered for a service that is
    still discovered. ``maintain`` refreshes discovered instances every second and checks each
    service's ``health_path`` every ``health_interval`` seconds.
    """

    def __init__(self, *, monolith_url: str):
        self.by_name: dict[str, ServicePool] = {}
        self.monolith_url = monolith_url  # when the table names no monolith instance

    def __getitem__(self, name: str) -> ServicePool:
        return self.by_name[name]

    def get(self, name: str) -> ServicePool | None:
        return self.by_name.get(name)

    def install(self, table) -> None:
        """Build the pools of `table`'s services (a RouteTable)."""
        known: dict[str, Instance] = {
            i.url: i for pool in self.by_name.values() for i in pool.instances
        }
        pools = {}
        for name, service in table.services.items():
            pool = self.by_name.get(name)
            if pool is None or pool.service != service:
                old_discovered = [i for i in pool.instances if not i.static] if pool else []
                pool = ServicePool(service, known)
                pool.instances += old_discovered if service.discovery else []
            pools[name] = pool
        self.by_name = pools

    def monolith(self) -> str:
        """Return the URL of a monolith instance."""
        pool = self.by_name.get(MONOLITH)
        return pool.pick().url if pool and pool.instances else self.monolith_url

    def identity_owners(self, table) -> list[str]:
        """Return the URLs of the halves that own identity, in the order to ask them.

        `table.identity_owners` names them (routes.py); a half with no instance to pick (down,
        circuit open) is left out, so the other one answers alone.
        """
        urls = []
        for name in table.identity_owners:
            if name == MONOLITH:
                urls.append(self.monolith())
                continue
            pool = self.by_name.get(name)
            try:
                if pool is not None and pool.instances:
                    urls.append(pool.pick().url)
            except NoInstance:
                continue
        return urls

    def breakers(self) -> dict[str, str]:
        """Return each instance's breaker state, by URL."""
        return {i.url: i.breaker.state for pool in self.by_name.values() for i in pool.instances}

    def instances(self) -> dict[str, list[dict]]:
        """Return every pool's instances with health, breaker and requests in flight."""
        return {name: [i.as_dict() for i in pool.instances] for name, pool in self.by_name.items()}

    async def maintain(self, *, registry, session) -> None:
        """Refresh registry instances every second and health-check instances when due."""
        last_check: dict[str, float] = {}
        while True:
            try:
                now = time.monotonic()
                for name, pool in list(self.by_name.items()):
                    if pool.service.discovery:
                        pool.set_discovered(await registry.instances(service=name))
                    if (
                        pool.service.health_path
                        and now - last_check.get(name, 0) >= pool.service.health_interval
                    ):
                        last_check[name] = now
                        await asyncio.gather(*(_health(session, pool, i) for i in pool.instances))
            except asyncio.CancelledError:
                raise
            except Exception:  # the maintenance loop must outlive a Redis hiccup
                log.exception("registry refresh or health check failed")
            await asyncio.sleep(1.0)


async def _health(session, pool: ServicePool, instance: Instance) -> None:
    try:
        async with session.get(
            instance.url + pool.service.health_path,
            timeout=aiohttp.ClientTimeout(total=2),
            allow_redirects=False,
        ) as resp:
            instance.healthy = resp.status < 500
    except (TimeoutError, aiohttp.ClientError, OSError):
        instance.healthy = False
