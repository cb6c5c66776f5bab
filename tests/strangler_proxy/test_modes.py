"""Each routing mode, fallback, retries, the breaker, and atomic switches under load."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

from strangler_proxy.routes import table_from_dict

from .conftest import aio, gateway, upstream


def two_halves(monolith_url: str, candidate_url: str, **route) -> dict:
    route = {"name": "orders", "prefix": "/api/orders/", "service": "orders", **route}
    return {
        "services": {"orders": {"url": candidate_url}},
        "routes": [route, {"name": "rest", "prefix": "/"}],
    }


async def get(base: str, path: str, method: str = "GET", **kwargs) -> tuple[int, dict, bytes]:
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, base + path, **kwargs) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


@aio
async def test_extracted_routes_go_to_the_candidate_and_others_stay_on_the_monolith():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        table = two_halves(mono.url, cand.url, mode="extracted")
        async with gateway(table, monolith=mono.url) as (_, base):
            status, headers, body = await get(base, "/api/orders/1/")
            assert (status, headers["X-Strangler-Upstream"], json.loads(body)["upstream"]) == (
                200,
                "orders",
                "cand",
            )
            _, headers, body = await get(base, "/api/users/me/")
            assert (headers["X-Strangler-Upstream"], json.loads(body)["upstream"]) == (
                "monolith",
                "mono",
            )


@aio
async def test_shadow_answers_from_the_monolith_and_mirrors_safe_requests_only():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        table = two_halves(mono.url, cand.url, mode="shadow")
        async with gateway(table, monolith=mono.url) as (gw, base):
            _, headers, body = await get(base, "/api/orders/?status=paid")
            assert (
                headers["X-Strangler-Upstream"] == "monolith"
                and json.loads(body)["upstream"] == "mono"
            )
            await get(base, "/api/orders/", method="POST", data=b"{}")
            await gw.shadow.drain()
    assert [r.raw_path for r in cand.seen] == ["/api/orders/?status=paid"]
    assert cand.seen[0].headers["X-Strangler-Shadow"] == "1"
    assert [r.method for r in mono.seen].count("POST") == 1


@aio
async def test_a_slow_candidate_never_slows_shadowed_users_and_excess_mirrors_are_skipped():
    async def slow(request):
        await asyncio.sleep(1.0)
        return web.json_response({})

    async with upstream(name="mono") as mono, upstream(slow, name="cand") as cand:
        table = two_halves(mono.url, cand.url, mode="shadow", compare={"noise_sample": 0.0})
        async with gateway(table, monolith=mono.url, shadow_concurrency=2) as (gw, base):
            loop = asyncio.get_running_loop()
            started = loop.time()
            for _ in range(5):
                await get(base, "/api/orders/")
            assert loop.time() - started < 0.8
            assert gw.metrics.shadow[("orders", "skipped")] == 3
            await gw.shadow.drain()
    assert len(cand.seen) == 2


@aio
async def test_canary_is_sticky_per_user_and_splits_roughly_by_percentage():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        table = two_halves(mono.url, cand.url, mode="canary:30")
        async with gateway(table, monolith=mono.url) as (gw, base):
            route = gw.table.route("orders")
            sides = {}
            for user in range(1000):
                identity = type("I", (), {"user_id": str(user)})()
                first = gw.choose_target(route, identity, "127.0.0.1")
                assert all(gw.choose_target(route, identity, "10.0.0.1") == first for _ in range(3))
                sides[user] = first
            share = sum(side == "orders" for side in sides.values()) / len(sides)
            assert 0.25 < share < 0.35
            # An anonymous client is sticky by address: every request lands on the same side.
            seen = {(await get(base, "/api/orders/"))[1]["X-Strangler-Upstream"] for _ in range(10)}
            assert len(seen) == 1


@aio
async def test_extracted_falls_back_to_the_monolith_for_safe_methods_on_5xx_and_says_so():
    async def broken(request):
        return web.json_response({"error": "boom"}, status=503)

    async with upstream(name="mono") as mono, upstream(broken, name="cand") as cand:
        cand.health = 200
        table = two_halves(mono.url, cand.url, mode="extracted", retries=0)
        async with gateway(table, monolith=mono.url) as (gw, base):
            status, headers, body = await get(base, "/api/orders/1/")
            assert status == 200 and json.loads(body)["upstream"] == "mono"
            assert headers["X-Strangler-Upstream"] == "monolith"
            assert headers["X-Strangler-Fallback"] == "orders: 503"
            status, headers, _ = await get(base, "/api/orders/", method="POST", data=b"{}")
            assert status == 503 and headers["X-Strangler-Upstream"] == "orders"
            metrics = gw.metrics.render()
    assert 'strangler_fallbacks_total{route="orders",from="orders"} 1' in metrics
    assert [r.method for r in mono.seen] == ["GET"]


@aio
async def test_extracted_falls_back_when_the_candidate_cannot_be_reached():
    async with upstream(name="mono") as mono:
        table = two_halves(mono.url, "http://127.0.0.1:9", mode="extracted")
        async with gateway(table, monolith=mono.url) as (_, base):
            status, headers, _ = await get(base, "/api/orders/")
            assert (
                status == 200 and headers["X-Strangler-Fallback"] == "orders: upstream_unavailable"
            )
            status, headers, body = await get(base, "/api/orders/", method="POST", data=b"{}")
            assert status == 502 and json.loads(body)["error"] == "upstream_unavailable"
            assert headers["X-Strangler-Upstream"] == "proxy"


@aio
async def test_safe_requests_are_retried_once_on_another_attempt():
    calls = []

    async def flaky(request):
        calls.append(request.path)
        return web.Response(status=502 if len(calls) == 1 else 200, text="ok")

    async with upstream(flaky, name="mono") as mono:
        table = {"routes": [{"name": "all", "prefix": "/", "retries": 1}]}
        async with gateway(table, monolith=mono.url) as (gw, base):
            status, _, _ = await get(base, "/x")
            status_post, _, _ = await get(base, "/y", method="POST", data=b"1")
    assert status == 200 and calls[:2] == ["/x", "/x"]
    assert status_post == 200 and calls[2:] == ["/y"]
    assert gw.metrics.retries["all"] == 1


@aio
async def test_the_breaker_opens_after_consecutive_failures_and_half_opens_to_probe():
    healthy = False

    async def sick(request):
        return web.Response(status=200 if healthy else 500)

    async with upstream(name="mono") as mono, upstream(sick, name="cand") as cand:
        table = two_halves(mono.url, cand.url, mode="extracted", retries=0, fallback=False)
        async with gateway(table, monolith=mono.url) as (gw, base):
            instance = gw.pools["orders"].instances[0]
            instance.breaker.reset_after = 0.3
            for _ in range(5):
                assert (await get(base, "/api/orders/"))[0] == 500
            assert instance.breaker.state == "open"
            before = len(cand.seen)
            status, _, body = await get(base, "/api/orders/")
            assert status == 503 and b"circuit open" in body and len(cand.seen) == before
            await asyncio.sleep(0.35)
            healthy = True
            assert (await get(base, "/api/orders/"))[0] == 200  # the half-open probe
            assert instance.breaker.state == "closed"


@aio
async def test_switching_modes_under_concurrent_load_fails_and_duplicates_nothing():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        table = two_halves(mono.url, cand.url, mode="monolith", service="monolith")
        async with gateway(table, monolith=mono.url) as (gw, base):
            extracted = table_from_dict(
                two_halves(mono.url, cand.url, mode="extracted"), monolith_url=mono.url
            )
            back = table_from_dict(
                two_halves(mono.url, cand.url, mode="monolith", service="monolith"),
                monolith_url=mono.url,
            )
            statuses: list[int] = []

            async def client(worker: int):
                async with aiohttp.ClientSession() as session:
                    for i in range(40):
                        async with session.post(
                            base + f"/api/orders/?id={worker}-{i}", data=b"x"
                        ) as resp:
                            statuses.append(resp.status)
                            await resp.read()

            async def switcher():
                for turn in range(20):
                    gw.table_swap(
                        new=extracted if turn % 2 == 0 else back, actor="test", reason="flip"
                    )
                    await asyncio.sleep(0.005)

            await asyncio.gather(*(client(w) for w in range(10)), switcher())
    ids = [r.raw_path for r in mono.seen + cand.seen]
    assert statuses == [200] * 400
    assert len(ids) == 400 and len(set(ids)) == 400
    assert mono.seen and cand.seen
    assert len(gw.changes) == 20
