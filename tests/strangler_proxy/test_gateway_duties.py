"""Edge auth and signed identity, rate limits, discovery and balancing, the overview aggregate."""

# ruff: noqa: SIM117  (upstreams, then the gateway that needs their URLs: clearer nested)
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from service_kit.identity import (
    HEADER,
    Identity,
    IdentityError,
    identity_keys_parse,
    identity_sign,
    identity_verify,
)
from strangler_proxy import client as registry_client
from strangler_proxy.discovery import MemoryRegistry, RedisRegistry

from .conftest import ADMIN, REDIS_URL, aio, gateway, upstream

SECRET = "k1:test-secret-of-at-least-32-bytes!!"
KEYS = identity_keys_parse(SECRET)


def monolith_with_users(tokens: dict[str, dict], calls: list):
    """A fake monolith: /api/users/me/ resolves tokens; everything else echoes the identity."""

    async def handler(request):
        if request.path == "/api/users/me/":
            calls.append(request.headers.get("Authorization"))
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token in tokens:
                return web.json_response(tokens[token])
            return web.json_response({"error": "not_authenticated"}, status=401)
        header = request.headers.get(HEADER)
        try:
            who = identity_verify(
                header=header, keys=KEYS, audience="monolith", method=request.method,
                path=request.path,
            ).user_id  # fmt: skip
        except IdentityError as exc:
            who = f"refused: {exc}"
        return web.json_response({"who": who, "path": request.path})

    return handler


async def fetch(url: str, **kwargs) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def test_identity_headers_verify_and_refuse_forged_or_stale_ones():
    bound = {"audience": "monolith", "method": "GET", "path": "/api/orders/"}
    header = identity_sign(identity=Identity(user_id="7", email="a@b.c"), keys=KEYS, **bound)
    assert identity_verify(header=header, keys=KEYS, **bound) == Identity("7", "a@b.c")
    other = identity_keys_parse("k1:another-secret-of-at-least-32-bytes")
    with pytest.raises(IdentityError, match="bad signature"):
        identity_verify(header=header, keys=other, **bound)
    with pytest.raises(IdentityError, match="expired"):
        identity_verify(header=header, keys=KEYS, now=time.time() + 60, **bound)
    with pytest.raises(IdentityError, match="missing"):
        identity_verify(header=None, keys=KEYS, **bound)
    body, _, sig = header.rpartition(".")
    with pytest.raises(IdentityError):
        identity_verify(header=body[:-2] + "xx." + sig, keys=KEYS, **bound)


@aio
async def test_a_valid_token_is_checked_once_and_forwarded_as_a_signed_identity():
    calls: list = []
    tokens = {"good": {"id": 42, "email": "u@example.com", "is_staff": False}}
    async with upstream(monolith_with_users(tokens, calls)) as mono:
        async with gateway(monolith=mono.url, identity_secret=SECRET) as (_, base):
            for _ in range(3):
                status, _, data = await fetch(
                    base + "/api/orders/", headers={"Authorization": "Bearer good"}
                )
                assert (status, data["who"]) == (200, "42")
            forged = identity_sign(
                identity=Identity(user_id="1"), keys=identity_keys_parse("k1:" + "f" * 32),
                audience="monolith", method="GET", path="/api/orders/",
            )  # fmt: skip
            _, _, data = await fetch(
                base + "/api/orders/", headers={"Authorization": "Bearer bad", HEADER: forged}
            )
            assert data["who"].startswith("refused")
            _, _, data = await fetch(base + "/api/orders/", headers={HEADER: forged})
            assert data["who"].startswith("refused: X-Strangler-Identity header is missing")
    assert calls == ["Bearer good", "Bearer bad"]


@aio
async def test_requests_over_the_rate_limit_get_429_with_retry_after():
    async with upstream() as mono:
        table = {
            "rate_limits": {"writes": {"rate": 0.5, "burst": 2}},
            "routes": [
                {"name": "orders", "prefix": "/api/orders/", "rate_limit": "writes"},
                {"name": "rest", "prefix": "/"},
            ],
        }
        async with gateway(table, monolith=mono.url) as (gw, base):
            statuses = [(await fetch(base + "/api/orders/"))[0] for _ in range(3)]
            status, headers, body = await fetch(base + "/api/orders/")
            assert (await fetch(base + "/api/other/"))[0] == 200
    assert statuses == [200, 200, 429]
    assert status == 429 and headers["Retry-After"] == "2" and body["error"] == "rate_limited"
    assert gw.metrics.rate_limited["orders"] == 2


@aio
async def test_rate_limits_are_shared_through_redis_by_two_proxies(redis_prefix):
    from strangler_proxy.config import ProxyConfig
    from strangler_proxy.gateway import Gateway
    from strangler_proxy.ratelimit import RedisBuckets
    from strangler_proxy.routes import table_from_dict

    async with upstream() as mono:
        table = table_from_dict(
            {
                "rate_limits": {"g": {"rate": 0.1, "burst": 3}},
                "routes": [{"name": "all", "prefix": "/", "rate_limit": "g"}],
            },
            monolith_url=mono.url,
        )
        proxies, bases = [], []
        for _ in range(2):
            gw = Gateway(
                config=ProxyConfig(monolith_url=mono.url, access_log=False),
                table=table,
                registry=MemoryRegistry(),
                limiter=RedisBuckets(REDIS_URL, prefix=redis_prefix),
            )
            bases.append(f"http://127.0.0.1:{await gw.start(host='127.0.0.1', port=0)}")
            proxies.append(gw)
        try:
            statuses = [(await fetch(bases[i % 2] + "/x"))[0] for i in range(5)]
        finally:
            for gw in proxies:
                await gw.close()
    assert statuses == [200, 200, 200, 429, 429]


@pytest.mark.parametrize("backend", ["memory", "redis"])
@aio
async def test_registered_instances_expire_unless_they_heartbeat(backend, redis_prefix):
    registry = (
        MemoryRegistry() if backend == "memory" else RedisRegistry(REDIS_URL, prefix=redis_prefix)
    )
    try:
        await registry.register(service="users", url="http://127.0.0.1:8101/", ttl=0.3)
        await registry.register(service="users", url="http://127.0.0.1:8102", ttl=0.3)
        assert await registry.instances(service="users") == [
            "http://127.0.0.1:8101",
            "http://127.0.0.1:8102",
        ]
        await asyncio.sleep(0.2)
        await registry.register(service="users", url="http://127.0.0.1:8102", ttl=0.3)  # heartbeat
        await asyncio.sleep(0.2)
        assert await registry.instances(service="users") == ["http://127.0.0.1:8102"]
        with pytest.raises(ValueError, match="http://"):
            await registry.register(service="users", url="ftp://x", ttl=1)
    finally:
        await registry.close()


def test_the_client_helper_registers_finds_and_deregisters_through_redis(redis_prefix):
    registration = registry_client.Registration(
        service="payments",
        url="http://127.0.0.1:8101",
        ttl=1.0,
        redis_url=REDIS_URL,
        prefix=redis_prefix,
    )
    registration.start()
    try:
        time.sleep(1.2)  # past one TTL: only the heartbeat keeps it listed
        assert registry_client.service_urls(
            "payments", redis_url=REDIS_URL, prefix=redis_prefix
        ) == ["http://127.0.0.1:8101"]
    finally:
        registration.stop()
    assert registry_client.service_urls("payments", redis_url=REDIS_URL, prefix=redis_prefix) == []


@aio
async def test_the_proxy_balances_over_registered_instances_and_drops_expired_ones():
    async with upstream(name="mono") as mono, upstream(name="a") as a, upstream(name="b") as b:
        table = {
            "services": {"users": {"discovery": True}},
            "routes": [
                {
                    "name": "users",
                    "prefix": "/api/users/",
                    "mode": "extracted",
                    "service": "users",
                    "fallback": False,
                }
            ],
        }
        async with gateway(table, monolith=mono.url) as (gw, base):
            status, _ = (await fetch(base + "/api/users/"))[:2]
            assert status == 503  # nobody registered yet
            for instance in (a, b):
                status, _, _ = await _post(
                    base + "/_strangler/registry",
                    {"service": "users", "url": instance.url, "ttl": 0.8},
                )
                assert status == 200
            await asyncio.sleep(1.1)  # the maintenance loop picks them up (it expires them too)
            await _post(base + "/_strangler/registry", {"service": "users", "url": a.url, "ttl": 5})
            await _post(base + "/_strangler/registry", {"service": "users", "url": b.url, "ttl": 5})
            await asyncio.sleep(1.1)
            served = [(await fetch(base + "/api/users/"))[2]["upstream"] for _ in range(6)]
            assert sorted(served) == ["a", "a", "a", "b", "b", "b"]
            await gw.registry.deregister(service="users", url=b.url)
            await asyncio.sleep(1.1)
            served = {(await fetch(base + "/api/users/"))[2]["upstream"] for _ in range(4)}
            assert served == {"a"}
            status, _, registry = await fetch(base + "/_strangler/registry", headers=ADMIN)
            assert registry["registered"]["users"] == [a.url]


async def _post(url: str, body: dict):
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=ADMIN) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json()


@aio
async def test_active_health_checks_take_an_unready_instance_out_of_rotation():
    async with upstream(name="mono") as mono, upstream(name="a") as a, upstream(name="b") as b:
        b.health = 503
        table = {
            "services": {"users": {"instances": [a.url, b.url], "health_interval": 0.2}},
            "routes": [{"name": "users", "prefix": "/", "mode": "extracted", "service": "users"}],
        }
        async with gateway(table, monolith=mono.url) as (gw, base):
            await asyncio.sleep(0.3)
            served = {(await fetch(base + "/x"))[2]["upstream"] for _ in range(6)}
            assert served == {"a"}
            assert [i.healthy for i in gw.pools["users"].instances] == [True, False]
            b.health = 200
            await asyncio.sleep(1.3)
            served = {(await fetch(base + "/x"))[2]["upstream"] for _ in range(6)}
            assert served == {"a", "b"}


@aio
async def test_least_outstanding_prefers_the_instance_with_fewer_requests_in_flight():
    async def slow(request):
        await asyncio.sleep(0.5)
        return web.json_response({"upstream": "slow"})

    async with (
        upstream(name="mono") as mono,
        upstream(slow, name="slow") as s,
        upstream(name="fast") as f,
    ):
        table = {
            "services": {
                "users": {
                    "instances": [s.url, f.url],
                    "balance": "least_outstanding",
                    "health_path": None,
                }
            },
            "routes": [{"name": "users", "prefix": "/", "mode": "extracted", "service": "users"}],
        }
        async with gateway(table, monolith=mono.url) as (gw, base):
            gw.pools["users"].instances[1].outstanding = 0
            first = asyncio.create_task(fetch(base + "/x"))  # goes to the first instance: slow
            await asyncio.sleep(0.1)
            served = [(await fetch(base + "/x"))[2]["upstream"] for _ in range(3)]
            assert (await first)[2]["upstream"] == "slow"
    assert served == ["fast", "fast", "fast"]


@aio
async def test_the_overview_fans_out_in_parallel_and_marks_a_failed_part():
    async def monolith(request):
        if request.path == "/api/payments/":
            return web.json_response({"error": "boom"}, status=500)
        await asyncio.sleep(0.5)
        return web.json_response({"part": request.path})

    async def orders_service(request):
        await asyncio.sleep(0.5)
        return web.json_response({"part": "extracted orders"})

    async with (
        upstream(monolith, name="mono") as mono,
        upstream(orders_service, name="orders") as orders,
    ):
        table = {
            "services": {"orders": {"url": orders.url}},
            "routes": [
                {
                    "name": "orders",
                    "prefix": "/api/orders/",
                    "mode": "extracted",
                    "service": "orders",
                },
                {"name": "rest", "prefix": "/", "retries": 0},
            ],
        }
        async with gateway(table, monolith=mono.url) as (_, base):
            started = time.monotonic()
            status, headers, data = await fetch(base + "/api/overview/")
            elapsed = time.monotonic() - started
    assert status == 200 and headers["X-Strangler-Upstream"] == "aggregate"
    assert data["profile"] == {"part": "/api/users/me/"}
    assert data["orders"] == {"part": "extracted orders"}
    assert data["served_by"] == {"profile": "monolith", "orders": "orders", "payments": "monolith"}
    assert data["partial"] is True and data["payments"] is None
    assert data["errors"] == {"payments": "monolith answered 500"}
    assert elapsed < 0.9, f"parts ran one after another ({elapsed:.2f}s)"


def service_verifying(audience: str, *, status: int = 200):
    """A half that answers `{"who"}` for the identity signed for it (aud, method, path), 401
    for any other; with `status` >= 500 it fails every request instead."""

    async def handler(request):
        if status >= 500:
            return web.json_response({"error": "down"}, status=status)
        try:
            who = identity_verify(
                header=request.headers.get(HEADER), keys=KEYS, audience=audience,
                method=request.method, path=request.path,
            ).user_id  # fmt: skip
        except IdentityError as exc:
            return web.json_response({"error": "authentication_failed", "detail": str(exc)}, 401)
        return web.json_response({"who": who, "by": audience})

    return handler


def _users(calls: list):
    return monolith_with_users({"good": {"id": 42, "email": "u@example.com"}}, calls)


@aio
async def test_each_half_gets_an_identity_signed_for_itself_in_shadow_fallback_and_overview():
    calls: list = []
    async with (
        upstream(_users(calls), name="mono") as mono,
        upstream(service_verifying("orders"), name="orders") as orders,
        upstream(service_verifying("payments", status=503), name="payments") as payments,
    ):
        table = {
            "services": {"orders": {"url": orders.url, "health_path": None},
                         "payments": {"url": payments.url, "health_path": None}},
            "routes": [
                {"name": "shadowed", "prefix": "/api/orders/", "mode": "shadow",
                 "service": "orders", "compare": {"noise_sample": 0, "status": True}},
                {"name": "payments", "prefix": "/api/payments/", "mode": "extracted",
                 "service": "payments", "retries": 0},
                {"name": "rest", "prefix": "/"},
            ],
        }  # fmt: skip
        auth = {"Authorization": "Bearer good"}
        async with gateway(table, monolith=mono.url, identity_secret=SECRET) as (gw, base):
            status, _, data = await fetch(base + "/api/orders/", headers=auth)
            assert (status, data["who"]) == (200, "42")
            await gw.shadow.drain()
            # The candidate checked an identity signed for "orders", not the monolith's.
            assert gw.metrics.shadow[("shadowed", "error")] == 0
            [diff] = gw.shadow.store.list("shadowed")  # the answers name their half: a diff
            assert diff.candidate["status"] == 200
            assert json.loads(diff.candidate["body"]) == {"who": "42", "by": "orders"}
            # The payments half fails: the monolith answers, with an identity signed for it.
            status, headers, data = await fetch(base + "/api/payments/", headers=auth)
            assert (status, data["who"]) == (200, "42")
            assert headers["X-Strangler-Fallback"] == "payments: 503"
            # The overview's parts: each signed for its own service and sub-request path.
            _, _, overview = await fetch(base + "/api/overview/", headers=auth)
    assert overview["orders"] == {"who": "42", "path": "/api/orders/"}  # not /api/overview/


@aio
async def test_failed_logins_from_one_address_are_limited_by_default_and_successes_are_not():
    async def monolith(request):
        if request.path == "/api/auth/token/":
            right = (await request.json()).get("password") == "right"
            return web.json_response({"token": "t"} if right else {"error": "no"},
                                     status=200 if right else 401)  # fmt: skip
        return web.json_response({})

    async def login(base, password):
        async with aiohttp.ClientSession() as session, session.post(
            base + "/api/auth/token/", json={"email": "a@b.c", "password": password}
        ) as resp:  # fmt: skip
            return resp.status, dict(resp.headers), await resp.json()

    async with upstream(monolith) as mono:
        async with gateway(monolith=mono.url) as (_, base):  # no rate limit configured
            successes = [(await login(base, "right"))[0] for _ in range(30)]
            failures = [(await login(base, f"guess{n}"))[0] for n in range(20)]
            status, headers, body = await login(base, "guess21")
            right_now = (await login(base, "right"))[0]
        table = {"rate_limits": {"login": {"rate": 0.1, "burst": 2}},
                 "routes": [{"name": "all", "prefix": "/"}]}  # fmt: skip
        async with gateway(table, monolith=mono.url) as (_, base):
            tuned = [(await login(base, f"guess{n}"))[0] for n in range(3)]
    assert successes == [200] * 30
    assert failures == [401] * 20
    assert status == 429 and headers["X-Strangler-Upstream"] == "proxy"
    assert headers["Retry-After"] == "2" and body["error"] == "rate_limited"
    assert right_now == 429  # a lucky guess in a refused burst is worth nothing
    assert tuned == [401, 401, 429]


@aio
async def test_the_login_rule_gives_successes_back_on_redis_too(redis_prefix):
    from strangler_proxy.ratelimit import LOGIN_DEFAULT, RedisBuckets

    buckets = RedisBuckets(REDIS_URL, prefix=redis_prefix)
    try:
        for _ in range(3 * LOGIN_DEFAULT.burst):  # successes: taken, then given back
            assert await buckets.take(key="login:addr:x", limit=LOGIN_DEFAULT) == 0
            assert await buckets.take(key="login:addr:x", limit=LOGIN_DEFAULT, cost=-1) == 0
        waits = [await buckets.take(key="login:addr:x", limit=LOGIN_DEFAULT) for _ in range(21)]
    finally:
        await buckets.close()
    assert waits[:20] == [0.0] * 20 and waits[20] > 0
