"""A small client for services: register with the registry, heartbeat, and find other services.

Synchronous and dependency-light so a Django service can use it at start-up::

    from strangler_proxy.client import Registration, service_urls

    registration = Registration(service="payments", url="http://127.0.0.1:8101")
    registration.start()              # registers now, then heartbeats every ttl/3 seconds
    urls = service_urls("users")      # live instances of another service
    registration.stop()               # deregisters

With ``REDIS_URL`` set it talks to the shared Redis registry directly (the same keys the proxy
reads); otherwise to the proxy's admin API at ``STRANGLER_PROXY_URL`` (http://127.0.0.1:8000).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request

PREFIX = "strangler:registry"
log = logging.getLogger(__name__)


def _proxy_url() -> str:
    return (os.environ.get("STRANGLER_PROXY_URL") or "http://127.0.0.1:8000").rstrip("/")


def _admin(method: str, path: str, body: dict | None = None) -> dict:
    url = _proxy_url() + path
    if not url.startswith("http://"):
        raise ValueError(f"STRANGLER_PROXY_URL must be http://, got {url!r}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    token = os.environ.get("STRANGLER_ADMIN_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
        return json.loads(resp.read())


def _redis(redis_url: str):
    import redis

    return redis.Redis.from_url(redis_url, decode_responses=True)


def register(
    *, service: str, url: str, ttl: float = 10.0, redis_url: str | None = None, prefix: str = PREFIX
) -> None:
    """Register (or refresh) `url` as an instance of `service` for `ttl` seconds."""
    redis_url = redis_url if redis_url is not None else os.environ.get("REDIS_URL")
    if redis_url:
        client = _redis(redis_url)
        try:
            key = f"{prefix}:svc:{service}"
            with client.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {url.rstrip("/"): int((time.time() + ttl) * 1000)})
                pipe.sadd(f"{prefix}:services", service)
                pipe.pexpire(key, int(ttl * 1000) + 60_000)
                pipe.execute()
        finally:
            client.close()
        return
    _admin("POST", "/_strangler/registry", {"service": service, "url": url, "ttl": ttl})


def deregister(
    *, service: str, url: str, redis_url: str | None = None, prefix: str = PREFIX
) -> None:
    """Remove `url` from `service`'s instances."""
    redis_url = redis_url if redis_url is not None else os.environ.get("REDIS_URL")
    if redis_url:
        client = _redis(redis_url)
        try:
            client.zrem(f"{prefix}:svc:{service}", url.rstrip("/"))
        finally:
            client.close()
        return
    _admin("DELETE", "/_strangler/registry", {"service": service, "url": url})


def service_urls(service: str, *, redis_url: str | None = None, prefix: str = PREFIX) -> list[str]:
    """Return the live instances of `service`."""
    redis_url = redis_url if redis_url is not None else os.environ.get("REDIS_URL")
    if redis_url:
        client = _redis(redis_url)
        try:
            now = int(time.time() * 1000)
            return sorted(client.zrangebyscore(f"{prefix}:svc:{service}", now, "+inf"))
        finally:
            client.close()
    return list(_admin("GET", f"/_strangler/registry/{service}")["instances"])


class Registration:
    """Keep one instance registered: register now, heartbeat in a daemon thread, deregister."""

    def __init__(
        self,
        *,
        service: str,
        url: str,
        ttl: float = 10.0,
        redis_url: str | None = None,
        prefix: str = PREFIX,
    ):
        self.service, self.url, self.ttl = service, url, ttl
        self.redis_url, self.prefix = redis_url, prefix
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        register(
            service=self.service,
            url=self.url,
            ttl=self.ttl,
            redis_url=self.redis_url,
            prefix=self.prefix,
        )

    def start(self) -> None:
        """Register, then heartbeat every ttl/3 seconds until stop()."""
        self._beat()
        self._thread = threading.Thread(
            target=self._run, name=f"registry-{self.service}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._beat()
            except Exception as exc:  # the registry is away: keep trying, the TTL bridges gaps
                log.warning("heartbeat for %s at %s failed: %s", self.service, self.url, exc)

    def stop(self) -> None:
        """Stop heartbeating and deregister."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        deregister(service=self.service, url=self.url, redis_url=self.redis_url, prefix=self.prefix)
