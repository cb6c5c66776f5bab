"""Shadowed requests served on the fast path are mirrored on callbacks and compared like any."""

# ruff: noqa: SIM117  (upstreams, then the gateway that needs their URLs: clearer nested)
from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from .conftest import ADMIN, aio, gateway, upstream
from .test_gateway_duties import SECRET, monolith_with_users, service_verifying


def _table(candidate_url: str, **compare) -> dict:
    return {
        "services": {"orders": {"url": candidate_url, "health_path": None}},
        "routes": [
            {"name": "orders", "prefix": "/api/orders/", "mode": "shadow", "service": "orders",
             "compare": {"noise_sample": 0.0, **compare}},
            {"name": "rest", "prefix": "/"},
        ],
    }  # fmt: skip


@aio
async def test_fast_path_mirrors_compare_and_store_diffs_like_the_general_path():
    async def monolith(request):
        return web.json_response({"n": int(request.query["n"]), "at": "now"})

    seen: list[str] = []

    async def candidate(request):  # wrong for odd numbers
        seen.append(request.headers.get("X-Strangler-Shadow", ""))
        n = int(request.query["n"])
        return web.json_response({"n": n + n % 2, "at": "now"})

    async with upstream(monolith, name="mono") as mono, upstream(candidate, name="cand") as cand:
        async with (
            gateway(_table(cand.url), monolith=mono.url) as (gw, base),
            aiohttp.ClientSession() as client,
        ):
            for n in range(12):
                async with client.get(f"{base}/api/orders/?n={n}") as resp:
                    assert (await resp.json())["n"] == n  # the monolith's answer, always
                await gw.shadow.drain()  # one at a time: each finds the connections idle
            fast, on_callbacks = gw.fast_served, gw.shadow.on_callbacks
            async with client.get(base + "/_strangler/diffs?route=orders", headers=ADMIN) as r:
                figures = await r.json()
            async with client.get(
                f"{base}/_strangler/diffs/{figures['diffs'][-1]['id']}", headers=ADMIN
            ) as r:
                diff = await r.json()
    # The first requests open the pooled connections; the rest, and their mirrors, ride callbacks.
    assert fast >= 10 and on_callbacks >= 10
    assert figures["routes"]["orders"] | {"diff_rate": None} == {
        "compared": 12, "diffs": 6, "errors": 0, "skipped": 0, "diff_rate": None,
    }  # fmt: skip
    assert diff["paths"] == ["/n"] and diff["target"] == "/api/orders/?n=11"
    assert json.loads(diff["candidate"]["body"]) == {"n": 12, "at": "now"}
    assert diff["candidate"]["headers"]["content-type"].startswith("application/json")
    assert all(name.lower() != "x-strangler-shadow" for name, _ in diff["headers"])
    assert seen == ["1"] * 12


@aio
async def test_a_fast_path_mirror_carries_an_identity_signed_for_the_candidate():
    calls: list = []
    users = monolith_with_users({"good": {"id": 42, "email": "u@example.com"}}, calls)
    async with upstream(users, name="mono") as mono:
        async with upstream(service_verifying("orders"), name="orders") as orders:
            table = _table(orders.url)
            async with (
                gateway(table, monolith=mono.url, identity_secret=SECRET) as (gw, base),
                aiohttp.ClientSession() as client,
            ):
                for _ in range(5):
                    async with client.get(
                        base + "/api/orders/", headers={"Authorization": "Bearer good"}
                    ) as resp:
                        assert (await resp.json())["who"] == "42"
                    await gw.shadow.drain()
                fast, on_callbacks = gw.fast_served, gw.shadow.on_callbacks
                stored = gw.shadow.store.list("orders")
    assert fast >= 3 and on_callbacks >= 3
    # Every answer names the audience that verified it, so each mirror is a diff whose
    # candidate verified an identity signed for "orders" (a 401 otherwise).
    assert len(stored) == 5
    assert {json.loads(d.candidate["body"])["by"] for d in stored} == {"orders"}
    assert {d.candidate["status"] for d in stored} == {200}
    assert all(
        value == "Bearer <redacted>" for d in stored for n, value in d.headers
        if n.lower() == "authorization"
    )  # fmt: skip


@aio
async def test_a_mirror_the_candidate_does_not_answer_in_time_is_an_error_not_a_wait():
    import asyncio

    async def monolith(request):
        return web.json_response({})

    async def stalls(request):
        if request.query.get("slow"):
            await asyncio.sleep(2)
        return web.json_response({})

    async with upstream(monolith, name="mono") as mono, upstream(stalls, name="cand") as cand:
        table = _table(cand.url)
        table["routes"][0]["timeout"] = 0.3
        async with (
            gateway(table, monolith=mono.url) as (gw, base),
            aiohttp.ClientSession() as client,
        ):
            for query in ("", "", "?slow=1"):
                async with client.get(base + "/api/orders/" + query) as resp:
                    assert resp.status == 200
                await gw.shadow.drain()
            figures = dict(gw.metrics.shadow)
            in_flight, on_callbacks = gw.shadow.in_flight, gw.shadow.on_callbacks
    assert on_callbacks == 2  # the second and the stalled third (the first opened connections)
    assert figures[("orders", "same")] == 2 and figures[("orders", "error")] == 1
    assert in_flight == 0


@aio
async def test_closing_gives_up_on_mirrors_still_waiting_for_the_candidate():
    import asyncio

    async def monolith(request):
        return web.json_response({})

    async def stalls(request):
        if request.query.get("slow"):
            await asyncio.sleep(2)
        return web.json_response({})

    async with upstream(monolith, name="mono") as mono, upstream(stalls, name="cand") as cand:
        async with aiohttp.ClientSession() as client:
            async with gateway(_table(cand.url), monolith=mono.url) as (gw, base):
                for query in ("", "", "?slow=1"):
                    async with client.get(base + "/api/orders/" + query) as resp:
                        assert resp.status == 200
                    if not query:
                        await gw.shadow.drain()
                assert gw.shadow.in_flight == 1  # the slow mirror, on callbacks
            # Closed: the mirror was given up after the 1 s drain, counted as an error.
            assert gw.shadow.in_flight == 0
            assert gw.metrics.shadow[("orders", "error")] == 1
            assert gw.shadow.on_callbacks == 2
