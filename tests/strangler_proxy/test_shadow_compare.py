"""Shadow comparison: per-route rules, learned noise, stored diffs and their curl replay."""

from __future__ import annotations

import itertools
import json

import aiohttp
from aiohttp import web

from strangler_proxy.compare import compare_responses
from strangler_proxy.routes import CompareRules

from .conftest import ADMIN, aio, gateway, upstream


def answer(body, status=200, headers=None):
    return (status, headers or {}, json.dumps(body).encode())


def test_ignored_pointers_and_globs_are_not_differences():
    rules = CompareRules(ignore=("/created_at", "/results/*/id"))
    mono = answer({"created_at": "1", "results": [{"id": 1, "sku": "a"}, {"id": 2, "sku": "b"}]})
    cand = answer({"created_at": "2", "results": [{"id": 9, "sku": "a"}, {"id": 8, "sku": "c"}]})
    paths, noise = compare_responses(rules=rules, expected=mono, actual=cand)
    assert paths == ["/results/1/sku"] and noise == []


def test_unordered_lists_compare_as_multisets():
    ordered = CompareRules()
    unordered = CompareRules(unordered=("/tags", "/items/*/codes"))
    mono = answer({"tags": ["a", "b", "c"], "items": [{"codes": [1, 2]}]})
    cand = answer({"tags": ["c", "a", "b"], "items": [{"codes": [2, 1]}]})
    assert compare_responses(rules=unordered, expected=mono, actual=cand)[0] == []
    assert "/tags/0" in compare_responses(rules=ordered, expected=mono, actual=cand)[0]


def test_numbers_and_decimal_strings_are_normalised_unless_told_otherwise():
    mono = answer({"total": "12.50", "qty": 2, "rate": 1.0})
    cand = answer({"total": 12.5, "qty": "2", "rate": 1})
    assert compare_responses(rules=CompareRules(), expected=mono, actual=cand)[0] == []
    strict = CompareRules(normalize_numbers=False)
    assert compare_responses(rules=strict, expected=mono, actual=cand)[0] == [
        "/qty",
        "/rate",
        "/total",
    ]


def test_status_chosen_headers_and_non_json_bodies_are_compared():
    rules = CompareRules(headers=("content-type",))
    mono = (200, {"content-type": "application/json"}, b"<html>a</html>")
    cand = (201, {"content-type": "text/html"}, b"<html>b</html>")
    assert compare_responses(rules=rules, expected=mono, actual=cand)[0] == [
        "status",
        "headers/content-type",
        "/",
    ]
    quiet = CompareRules(status=False)
    assert (
        compare_responses(rules=quiet, expected=mono, actual=(201, {}, b"<html>a</html>"))[0] == []
    )


def test_learned_noise_is_reported_as_noise_not_as_a_difference():
    mono = answer({"results": [{"token": "x", "sku": "a"}], "now": 1})
    cand = answer({"results": [{"token": "y", "sku": "b"}], "now": 2})
    paths, noise = compare_responses(
        rules=CompareRules(), noise={"/results/*/token", "/now"}, expected=mono, actual=cand
    )
    assert paths == ["/results/0/sku"] and sorted(noise) == ["/now", "/results/0/token"]


@aio
async def test_shadow_learns_noise_from_the_monolith_and_stores_real_diffs_with_a_curl_replay():
    counter = itertools.count()

    async def monolith(request):
        # generated_at changes on every answer: noise, which two monolith answers reveal.
        return web.json_response(
            {"id": 1, "total": "10.00", "generated_at": next(counter), "status": "paid"}
        )

    async def candidate(request):
        return web.json_response({"id": 1, "total": 10, "generated_at": -1, "status": "PAID"})

    async with upstream(monolith, name="mono") as mono, upstream(candidate, name="cand") as cand:
        table = {
            "services": {"orders": {"url": cand.url}},
            "routes": [
                {
                    "name": "orders",
                    "prefix": "/api/orders/",
                    "mode": "shadow",
                    "service": "orders",
                    "compare": {"noise_sample": 1.0},
                },
                {"name": "rest", "prefix": "/"},
            ],
        }
        async with (
            gateway(table, monolith=mono.url) as (gw, base),
            aiohttp.ClientSession() as client,
        ):
            for _ in range(3):
                async with client.get(
                    base + "/api/orders/1/?x=%20y", headers={"Authorization": "Token zz-secret-zz"}
                ) as resp:
                    assert resp.headers["X-Strangler-Upstream"] == "monolith"
                    assert (await resp.json())["status"] == "paid"
                await gw.shadow.drain()
            async with client.get(base + "/_strangler/diffs?route=orders", headers=ADMIN) as resp:
                listing = await resp.json()
            diff_id = listing["diffs"][-1]["id"]
            async with client.get(base + f"/_strangler/diffs/{diff_id}", headers=ADMIN) as resp:
                diff = await resp.json()
            async with client.get(
                base + f"/_strangler/diffs/{diff_id}/curl", headers=ADMIN
            ) as resp:
                curl = await resp.json()
            async with client.get(base + "/_strangler/noise", headers=ADMIN) as resp:
                noise = await resp.json()
            metrics = gw.metrics.render()
    assert noise["orders"] == ["/generated_at"]
    assert (
        listing["routes"]["orders"]["compared"] == 3
        and listing["routes"]["orders"]["diff_rate"] == 1.0
    )
    assert diff["paths"] == ["/status"] and diff["noise"] == ["/generated_at"]
    assert diff["target"] == "/api/orders/1/?x=%20y"
    assert json.loads(diff["monolith"]["body"])["status"] == "paid"
    assert json.loads(diff["candidate"]["body"])["status"] == "PAID"
    assert curl["candidate"].startswith("curl -sS -i -X GET")
    assert f"{cand.url}/api/orders/1/?x=%20y" in curl["candidate"]
    # Replayable with a token of the operator's own: the client's is never stored.
    assert "'Authorization: Token <redacted>'" in curl["candidate"]
    assert "zz-secret-zz" not in json.dumps(diff) + json.dumps(curl)
    assert 'strangler_shadow_diff_rate{route="orders"} 1.000000' in metrics


@aio
async def test_shadow_equal_answers_count_as_same_and_a_failing_candidate_as_error():
    async def fine(request):
        return web.json_response({"ok": True})

    async with upstream(fine, name="mono") as mono, upstream(fine, name="cand") as cand:
        table = {
            "services": {"orders": {"url": cand.url}, "gone": {"url": "http://127.0.0.1:9"}},
            "routes": [
                {"name": "orders", "prefix": "/api/orders/", "mode": "shadow", "service": "orders"},
                {
                    "name": "users",
                    "prefix": "/api/users/",
                    "mode": "shadow",
                    "service": "gone",
                    "retries": 0,
                },
            ],
        }
        async with (
            gateway(table, monolith=mono.url) as (gw, base),
            aiohttp.ClientSession() as client,
        ):
            for path in ("/api/orders/", "/api/users/"):
                async with client.get(base + path) as resp:
                    assert resp.status == 200
            await gw.shadow.drain()
    assert gw.metrics.shadow[("orders", "same")] == 1
    assert gw.metrics.shadow[("users", "error")] == 1
    assert gw.shadow.store.list() == []
