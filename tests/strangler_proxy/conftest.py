"""Real sockets for the proxy tests: upstream aiohttp servers and a gateway, all on port 0.

pytest-asyncio is not a dependency; each async test runs in its own loop through `aio`: uvloop,
as the proxy itself uses when installed (STRANGLER_TEST_LOOP=asyncio: the stock loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import uuid
from collections.abc import Callable

import pytest
from aiohttp import web

from strangler_proxy.config import ProxyConfig
from strangler_proxy.discovery import MemoryRegistry, RedisRegistry
from strangler_proxy.gateway import Gateway
from strangler_proxy.ratelimit import MemoryBuckets, RedisBuckets
from strangler_proxy.routes import table_from_dict

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7")
#: The admin token of every test gateway (the admin API is closed without one), and its header.
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def aio(test: Callable) -> Callable:
    """Run an async test function to completion in a fresh event loop."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        if os.environ.get("STRANGLER_TEST_LOOP") == "asyncio":
            return asyncio.run(asyncio.wait_for(test(*args, **kwargs), 60))
        # The proxy runs on uvloop when it is installed: test on the loop it runs on.
        return _loop_runner()(asyncio.wait_for(test(*args, **kwargs), 60))

    return run


def _loop_runner():
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


@contextlib.asynccontextmanager
async def upstream(handler: Callable | None = None, *, name: str = "up"):
    """Serve `handler` (default: echo the request as JSON) on 127.0.0.1:0; yield its state."""
    state = Upstream(name)

    async def echo(request: web.Request) -> web.StreamResponse:
        if request.path == "/readyz" and state.health is not None:
            state.health_checks += 1
            return web.Response(status=state.health)
        state.seen.append(request)
        state.peers.add(request.transport.get_extra_info("peername"))
        if handler is not None:
            return await handler(request)
        body = await request.read()
        return web.json_response(
            {
                "upstream": name,
                "method": request.method,
                "target": request.raw_path,
                "headers": [[k, v] for k, v in request.headers.items()],
                "body_length": len(body),
            }
        )

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


class Upstream:
    """What an upstream test server saw."""

    def __init__(self, name: str):
        self.name = name
        self.url = ""
        self.seen: list[web.Request] = []
        self.peers: set = set()
        self.health: int | None = 200  # status for /readyz; None: let the handler answer it
        self.health_checks = 0


@contextlib.asynccontextmanager
async def gateway(table: dict | None = None, *, monolith: str, shared: bool = False, **config):
    """Start a gateway on 127.0.0.1:0 with `table` (dict form); yield (gateway, base_url)."""
    config.setdefault("access_log", False)
    config.setdefault("admin_token", ADMIN_TOKEN)
    cfg = ProxyConfig(monolith_url=monolith, **config)
    built = table_from_dict(
        table or {"routes": [{"name": "default", "prefix": "/"}]}, monolith_url=monolith
    )
    prefix = f"strangler-test:{uuid.uuid4().hex}"
    if shared:
        registry, limiter = (
            RedisRegistry(REDIS_URL, prefix=prefix),
            RedisBuckets(REDIS_URL, prefix=prefix),
        )
    else:
        registry, limiter = MemoryRegistry(), MemoryBuckets()
    gw = Gateway(config=cfg, table=built, registry=registry, limiter=limiter)
    port = await gw.start(host="127.0.0.1", port=0)
    try:
        yield gw, f"http://127.0.0.1:{port}"
    finally:
        await gw.close()
        if shared:
            _delete_keys(prefix)


def _delete_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


async def raw_http(
    port_url: str, payload: bytes, *, read_until_close: bool = True, timeout: float = 5
) -> bytes:
    """Send raw bytes to the server at `port_url` and return what it answered."""
    host, port = port_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    data = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            data += chunk
            if not read_until_close and b"\r\n\r\n" in data:
                break
    finally:
        writer.close()
    return data


@pytest.fixture
def redis_prefix():
    """A unique key prefix in the test Redis db, deleted afterwards."""
    prefix = f"strangler-test:{uuid.uuid4().hex}"
    yield prefix
    _delete_keys(prefix)


async def raw_upstream(reply):
    """A raw TCP upstream: `reply(request_bytes, writer)` answers each request."""

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not await reply(head, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
