"""A logout (one token) or a password change (every token of its user) through the proxy is
forgotten at once: here, in other workers and in other proxies; and so is a revocation a half
publishes (`user:<id>`)."""

# ruff: noqa: SIM117  (upstreams, then the gateways that need their URLs: clearer nested)
from __future__ import annotations

import asyncio
import contextlib
import uuid

import aiohttp
from aiohttp import web

from service_kit.identity import (
    HEADER,
    Identity,
    IdentityError,
    identity_keys_parse,
    identity_verify,
)
from strangler_proxy.auth import EdgeAuth, token_key
from strangler_proxy.config import ConfigError, ProxyConfig
from strangler_proxy.discovery import MemoryRegistry
from strangler_proxy.gateway import Gateway
from strangler_proxy.ratelimit import MemoryBuckets
from strangler_proxy.routes import table_from_dict
from strangler_proxy.sharing import SharedRevocations

from .conftest import REDIS_URL, aio, upstream

SECRET = "revocation-secret-of-at-least-32-bytes"


def fake_monolith(tokens: dict[str, dict]):
    """/api/users/me/ resolves tokens; POST /api/auth/logout/ deletes the caller's token;
    PATCH /api/users/me/ with a password deletes every token of the caller."""

    async def handler(request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.path == "/api/users/me/" and request.method == "PATCH":
            user = tokens.get(token)
            if user is None:
                return web.json_response({"error": "not_authenticated"}, status=401)
            if "password" in await request.json():
                for key in [k for k, v in tokens.items() if v["id"] == user["id"]]:
                    del tokens[key]
            return web.json_response(user)
        if request.path == "/api/users/me/":
            if token in tokens:
                return web.json_response(tokens[token])
            return web.json_response({"error": "not_authenticated"}, status=401)
        if request.path == "/api/auth/logout/" and request.method == "POST":
            if tokens.pop(token, None) is None:
                return web.json_response({"error": "not_authenticated"}, status=401)
            return web.Response(status=204)
        return web.json_response({"served": "monolith"})

    return handler


async def payments_service(request: web.Request) -> web.StreamResponse:
    """An extracted service that trusts only the proxy's signed identity."""
    try:
        who = identity_verify(
            header=request.headers.get(HEADER), keys=identity_keys_parse(SECRET),
            audience="payments", method=request.method, path=request.path,
        )  # fmt: skip
    except IdentityError as exc:
        return web.json_response({"error": "not_authenticated", "detail": str(exc)}, status=401)
    return web.json_response({"results": [], "user": who.user_id})


def payments_table(mono_url: str, service_url: str):
    return table_from_dict(
        {
            "services": {"payments": {"url": service_url, "health_path": None}},
            "routes": [
                {"name": "payments", "prefix": "/api/payments/", "mode": "extracted",
                 "service": "payments", "fallback": False},
                {"name": "rest", "prefix": "/"},
            ],
        },
        monolith_url=mono_url,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def proxies(count: int, table, **config):
    """Start `count` gateways with the same table and config; yield their base URLs."""
    gateways, bases = [], []
    try:
        for _ in range(count):
            gw = Gateway(
                config=ProxyConfig(access_log=False, identity_secret=SECRET, **config),
                table=table, registry=MemoryRegistry(), limiter=MemoryBuckets(),
            )  # fmt: skip
            gateways.append(gw)
            bases.append(f"http://127.0.0.1:{await gw.start(host='127.0.0.1', port=0)}")
        yield gateways, bases
    finally:
        for gw in gateways:
            await gw.close()


async def call(method: str, url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, url, headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        await resp.read()
        return resp.status


@aio
async def test_logout_through_the_proxy_refuses_the_token_at_once_on_an_extracted_route():
    tokens = {"tok-1": {"id": 7, "email": "a@example.com"}}
    async with upstream(fake_monolith(tokens)) as mono, upstream(payments_service) as svc:
        async with proxies(1, payments_table(mono.url, svc.url), monolith_url=mono.url) as (
            gateways, [base],
        ):  # fmt: skip
            served_before = gateways[0].fast_served
            assert [await call("GET", base + "/api/payments/", "tok-1") for _ in range(3)] == [
                200, 200, 200,
            ]  # fmt: skip
            assert gateways[0].fast_served > served_before  # the cached token rode the fast path
            assert await call("POST", base + "/api/auth/logout/", "tok-1") == 204
            assert await call("GET", base + "/api/payments/", "tok-1") == 401
            assert gateways[0].auth.revocations == 1


@aio
async def test_a_refused_logout_revokes_nothing():
    tokens = {"tok-1": {"id": 7}}
    async with upstream(fake_monolith(tokens)) as mono, upstream(payments_service) as svc:
        async with proxies(1, payments_table(mono.url, svc.url), monolith_url=mono.url) as (
            gateways, [base],
        ):  # fmt: skip
            assert await call("GET", base + "/api/payments/", "tok-1") == 200
            assert await call("POST", base + "/api/auth/logout/", "someone-else") == 401
            assert await call("GET", base + "/api/payments/", "tok-1") == 200
            assert gateways[0].auth.revocations == 0


@aio
async def test_a_logout_through_one_proxy_is_refused_by_another_sharing_redis():
    tokens = {"tok-a": {"id": 1}, "tok-b": {"id": 2}}
    channel = f"strangler-test:revoked:{uuid.uuid4().hex}"
    async with upstream(fake_monolith(tokens)) as mono, upstream(payments_service) as svc:
        table = payments_table(mono.url, svc.url)
        async with proxies(
            2, table, monolith_url=mono.url, redis_url=REDIS_URL, revoke_channel=channel
        ) as (_, [base_a, base_b]):
            for base in (base_a, base_b):  # both instances have the tokens cached
                assert await call("GET", base + "/api/payments/", "tok-a") == 200
                assert await call("GET", base + "/api/payments/", "tok-b") == 200
            assert await call("POST", base_a + "/api/auth/logout/", "tok-a") == 204
            assert await call("GET", base_b + "/api/payments/", "tok-a") == 401
            assert await call("GET", base_b + "/api/payments/", "tok-b") == 200  # others kept


@aio
async def test_a_logout_through_one_worker_is_refused_by_the_others_without_redis(tmp_path):
    tokens = {"tok-a": {"id": 1}}
    async with upstream(fake_monolith(tokens)) as mono, upstream(payments_service) as svc:
        table = payments_table(mono.url, svc.url)
        state = str(tmp_path / "routes.json")
        async with proxies(3, table, monolith_url=mono.url, shared_state=state) as (
            _, bases,
        ):  # fmt: skip
            for base in bases:
                assert await call("GET", base + "/api/payments/", "tok-a") == 200
            assert await call("POST", bases[0] + "/api/auth/logout/", "tok-a") == 204
            # No wait: the other workers read the revocation on their next cache hit.
            assert [await call("GET", b + "/api/payments/", "tok-a") for b in bases[1:]] == [
                401, 401,
            ]  # fmt: skip


def test_a_worker_far_behind_the_revocation_ring_forgets_every_token(tmp_path):
    writer = SharedRevocations(str(tmp_path / "state.revoked"))
    reader = SharedRevocations(str(tmp_path / "state.revoked"))
    auth = EdgeAuth(ttl=30)
    kept = token_key("Bearer kept")
    auth._cache[kept] = (float("inf"), None)
    writer.publish(token_key("Bearer gone"))
    auth._cache[token_key("Bearer gone")] = (float("inf"), None)
    reader.apply(auth)
    assert set(auth._cache) == {kept}
    for number in range(5000):
        writer.publish(token_key(f"Bearer t{number}"))
    reader.apply(auth)
    assert auth._cache == {}
    writer.close()
    reader.close()


def test_the_logout_endpoint_is_configurable_or_off():
    assert ProxyConfig.from_env({}).logout == ("POST", "/api/auth/logout/")
    env = {"STRANGLER_AUTH_LOGOUT": "delete /api/session/"}
    assert ProxyConfig.from_env(env).logout == ("DELETE", "/api/session/")
    assert ProxyConfig.from_env({"STRANGLER_AUTH_LOGOUT": "off"}).logout is None
    try:
        ProxyConfig.from_env({"STRANGLER_AUTH_LOGOUT": "logout"})
    except ConfigError as exc:
        assert "STRANGLER_AUTH_LOGOUT" in str(exc)
    else:
        raise AssertionError("a malformed logout setting was accepted")


async def patch_password(base: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.patch(
            base + "/api/users/me/", json={"password": "n3w", "current_password": "old"},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):  # fmt: skip
        await resp.read()
        return resp.status


@aio
async def test_a_password_change_through_the_proxy_forgets_every_token_of_the_user_at_once():
    # No Redis, one process: the embedded default.
    tokens = {"laptop": {"id": 7}, "phone": {"id": 7}, "other": {"id": 8}}
    async with upstream(fake_monolith(tokens)) as mono, upstream(payments_service) as svc:
        async with proxies(1, payments_table(mono.url, svc.url), monolith_url=mono.url) as (
            _, [base],
        ):  # fmt: skip
            for token in ("laptop", "phone", "other"):
                assert await call("GET", base + "/api/payments/", token) == 200
            assert await patch_password(base, "laptop") == 200
            # No wait: the phone's token, never used in the change, is refused at once.
            assert await call("GET", base + "/api/payments/", "phone") == 401
            assert await call("GET", base + "/api/payments/", "laptop") == 401
            assert await call("GET", base + "/api/payments/", "other") == 200


@aio
async def test_a_password_change_through_one_worker_is_forgotten_by_the_others(tmp_path):
    tokens = {"laptop": {"id": 7}, "phone": {"id": 7}}
    async with upstream(fake_monolith(tokens)) as mono, upstream(payments_service) as svc:
        state = str(tmp_path / "routes.json")
        async with proxies(
            3, payments_table(mono.url, svc.url), monolith_url=mono.url, shared_state=state
        ) as (_, bases):
            for base in bases:
                assert await call("GET", base + "/api/payments/", "phone") == 200
            assert await patch_password(bases[0], "laptop") == 200
            assert [await call("GET", b + "/api/payments/", "phone") for b in bases[1:]] == [
                401, 401,
            ]  # fmt: skip


@aio
async def test_a_user_revocation_a_half_publishes_is_applied_by_every_proxy(settings):
    from service_kit.revocations import revocation_publish

    tokens = {"laptop": {"id": 7}, "other": {"id": 8}}
    channel = f"strangler-test:revoked:{uuid.uuid4().hex}"
    async with upstream(fake_monolith(tokens)) as mono, upstream(payments_service) as svc:
        async with proxies(
            2, payments_table(mono.url, svc.url), monolith_url=mono.url, redis_url=REDIS_URL,
            revoke_channel=channel,
        ) as (gateways, bases):  # fmt: skip
            for base in bases:
                assert await call("GET", base + "/api/payments/", "laptop") == 200
                assert await call("GET", base + "/api/payments/", "other") == 200
            del tokens["laptop"]  # revoked at the half, out of the proxies' sight
            assert await call("GET", bases[0] + "/api/payments/", "laptop") == 200  # cached
            settings.REDIS_URL, settings.STRANGLER_AUTH_REVOKE_CHANNEL = REDIS_URL, channel
            await asyncio.to_thread(revocation_publish, user_id=7)
            for _ in range(100):  # the message crosses Redis: give it up to a second
                if all(gw.auth.revocations for gw in gateways):
                    break
                await asyncio.sleep(0.01)
            for base in bases:
                assert await call("GET", base + "/api/payments/", "laptop") == 401
                assert await call("GET", base + "/api/payments/", "other") == 200


def test_the_workers_ring_carries_user_revocations(tmp_path):
    writer = SharedRevocations(str(tmp_path / "state.revoked"))
    reader = SharedRevocations(str(tmp_path / "state.revoked"))
    auth = EdgeAuth(ttl=30)
    for key, user in ((token_key("Bearer a"), "7"), (token_key("Bearer b"), "7"),
                      (token_key("Bearer c"), "8")):  # fmt: skip
        auth._cache[key] = (float("inf"), Identity(user_id=user))
        auth._by_user.setdefault(user, set()).add(key)
    writer.publish("user:7")
    reader.apply(auth)
    assert set(auth._cache) == {token_key("Bearer c")}
    writer.close()
    reader.close()
