"""The admin API's data sources as a dashboard reads them: split, upstreams, shadow, diffs."""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from strangler_proxy.admin_data import (
    AdminSources,
    dashboard_figures,
    routes_figures,
    upstreams_figures,
)
from strangler_proxy.metrics import Metrics
from strangler_proxy.routes import table_from_dict

from .conftest import ADMIN, aio, gateway, upstream


def test_routes_figures_split_each_routes_requests_between_its_upstreams():
    table = table_from_dict(
        {"services": {"pay": {"url": "http://127.0.0.1:9"}},
         "routes": [{"name": "pay", "prefix": "/api/payments/", "mode": "canary:25",
                     "service": "pay"}, {"name": "rest", "prefix": "/"}]},
        monolith_url="http://127.0.0.1:8",
    )  # fmt: skip
    metrics = Metrics()
    for upstream_name, count in (("monolith", 3), ("pay", 1)):
        for _ in range(count):
            metrics.observe("pay", upstream_name, 200, 0.002)
    metrics.observe("pay", "pay", 503, 0.2)
    metrics.errors[("pay", "pay", "5xx")] += 1
    [pay, rest] = routes_figures(table, metrics)
    assert (pay["name"], pay["mode"], pay["service"], pay["match"]) == (
        "pay", "canary:25", "pay", "/api/payments/*",
    )  # fmt: skip
    assert pay["requests"] == 5
    assert pay["split"] == {"monolith": {"requests": 3, "share": 0.6},
                            "pay": {"requests": 2, "share": 0.4}}  # fmt: skip
    assert rest == {"name": "rest", "mode": "monolith", "service": "monolith", "match": "/*",
                    "requests": 0, "split": {}}  # fmt: skip
    upstreams = upstreams_figures(metrics, {"pay": [{"url": "http://127.0.0.1:9"}]})
    assert upstreams["pay"]["requests"] == 2 and upstreams["pay"]["answers_5xx"] == 1
    assert upstreams["pay"]["errors"] == {"5xx": 1}
    assert upstreams["pay"]["p50_ms"] == 2.5 and upstreams["pay"]["p99_ms"] == 250.0
    assert upstreams["pay"]["instances"] == [{"url": "http://127.0.0.1:9"}]
    assert upstreams["monolith"]["mean_ms"] == 2.0


@aio
async def test_the_dashboard_reads_every_figure_in_one_admin_call():
    async def monolith(request):
        return web.json_response({"n": 1})

    async def candidate(request):
        return web.json_response({"n": 2})

    async with upstream(monolith, name="mono") as mono, upstream(candidate, name="cand") as cand:
        table = {
            "services": {"orders": {"url": cand.url, "health_path": None}},
            "routes": [{"name": "orders", "prefix": "/api/orders/", "mode": "shadow",
                        "service": "orders", "compare": {"noise_sample": 0}},
                       {"name": "rest", "prefix": "/"}],
        }  # fmt: skip
        async with gateway(table, monolith=mono.url) as (gw, base):
            async with aiohttp.ClientSession() as client:
                for _ in range(3):
                    async with client.get(base + "/api/orders/") as resp:
                        assert resp.status == 200
                    await gw.shadow.drain()
                async with client.get(base + "/_strangler/dashboard") as resp:
                    refused = resp.status
                async with client.get(base + "/_strangler/dashboard", headers=ADMIN) as resp:
                    figures = json.loads(await resp.text())
            sources = gw.admin.sources
    assert refused == 401  # it holds user data's figures: the token, like every read
    assert isinstance(sources, AdminSources)
    assert figures["table_version"] == 1
    assert figures["routes"][0]["split"] == {"monolith": {"requests": 3, "share": 1.0}}
    assert figures["shadow"]["orders"] | {"diff_rate": 1.0} == {
        "compared": 3, "diffs": 3, "errors": 0, "skipped": 0, "diff_rate": 1.0,
    }  # fmt: skip
    assert [d["id"] for d in figures["diffs"]] == sorted(
        (d["id"] for d in figures["diffs"]), reverse=True
    )  # newest first
    assert figures["upstreams"]["orders"]["instances"][0]["url"] == cand.url
    assert figures == json.loads(json.dumps(dashboard_figures(sources), default=str))
