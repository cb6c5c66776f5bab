"""Shadow settling: a candidate that lags behind a write is asked again before a diff counts."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from .conftest import ADMIN, aio, gateway, upstream


def _table(candidate_url: str, settle_ms: int) -> dict:
    return {
        "services": {"payments": {"url": candidate_url}},
        "routes": [
            {
                "name": "payments",
                "prefix": "/api/payments/",
                "mode": "shadow",
                "service": "payments",
                "compare": {"noise_sample": 0.0, "settle_ms": settle_ms},
            },
            {"name": "rest", "prefix": "/"},
        ],
    }


async def _shadow_figures(candidate_handler, settle_ms: int) -> dict:
    async def monolith(request):
        return web.json_response({"count": 1})

    async with (
        upstream(monolith, name="mono") as mono,
        upstream(candidate_handler, name="cand") as cand,
        gateway(_table(cand.url, settle_ms), monolith=mono.url) as (gw, base),
        aiohttp.ClientSession() as client,
    ):
        async with client.get(base + "/api/payments/") as resp:
            assert resp.status == 200
        await gw.shadow.drain()
        async with client.get(base + "/_strangler/diffs?route=payments", headers=ADMIN) as resp:
            return (await resp.json())["routes"]["payments"]


@aio
async def test_a_candidate_that_catches_up_within_settle_ms_is_not_counted_as_a_diff():
    calls = []

    async def lagging(request):
        calls.append(1)  # the first answer predates the write's event, the next one has it
        return web.json_response({"count": 0 if len(calls) == 1 else 1})

    figures = await _shadow_figures(lagging, settle_ms=100)
    assert (figures["compared"], figures["diffs"]) == (1, 0)
    assert len(calls) == 2


@aio
async def test_a_candidate_still_different_after_settle_ms_is_a_diff():
    async def wrong(request):
        return web.json_response({"count": 0})

    figures = await _shadow_figures(wrong, settle_ms=100)
    assert (figures["compared"], figures["diffs"]) == (1, 1)


@aio
async def test_without_settle_ms_the_first_comparison_decides():
    calls = []

    async def lagging(request):
        calls.append(1)
        return web.json_response({"count": 0 if len(calls) == 1 else 1})

    figures = await _shadow_figures(lagging, settle_ms=0)
    assert (figures["compared"], figures["diffs"]) == (1, 1)
    assert len(calls) == 1


@aio
async def test_a_candidate_that_catches_up_while_the_monolith_moves_on_is_not_a_diff():
    monolith_calls, candidate_calls = [], []

    async def moving_monolith(request):
        monolith_calls.append(1)  # a newer write lands during the settle delay
        return web.json_response({"count": len(monolith_calls)})

    async def lagging(request):
        candidate_calls.append(1)
        return web.json_response({"count": 0 if len(candidate_calls) == 1 else 1})

    async with (
        upstream(moving_monolith, name="mono") as mono,
        upstream(lagging, name="cand") as cand,
        gateway(_table(cand.url, 100), monolith=mono.url) as (gw, base),
        aiohttp.ClientSession() as client,
    ):
        async with client.get(base + "/api/payments/") as resp:
            assert (await resp.json()) == {"count": 1}
        monolith_calls.append(1)  # the monolith has moved on to 2 before the re-check
        await gw.shadow.drain()
        async with client.get(base + "/_strangler/diffs?route=payments", headers=ADMIN) as resp:
            figures = (await resp.json())["routes"]["payments"]
    assert (figures["compared"], figures["diffs"]) == (1, 0)


@aio
async def test_the_cap_on_mirrors_in_flight_holds_while_one_settles():
    in_flight, most = [0], [0]

    async def monolith(request):
        return web.json_response({"count": 1})

    async def wrong(request):  # always differs: each mirror settles for its whole window
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            return web.json_response({"count": 0})
        finally:
            in_flight[0] -= 1

    async with (
        upstream(monolith, name="mono") as mono,
        upstream(wrong, name="cand") as cand,
        gateway(_table(cand.url, 600), monolith=mono.url, shadow_concurrency=1) as (gw, base),
        aiohttp.ClientSession() as client,
    ):
        for _ in range(4):  # answered at once; the first mirror settles for 600 ms meanwhile
            async with client.get(base + "/api/payments/") as resp:
                assert resp.status == 200
        skipped_while_settling = gw.metrics.shadow[("payments", "skipped")]
        await gw.shadow.drain()
        figures = gw.metrics.shadow
    assert skipped_while_settling == 3
    assert (figures[("payments", "diff")], figures[("payments", "skipped")]) == (1, 3)
    assert most[0] == 1
