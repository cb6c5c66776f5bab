"""The admin API: routes, atomic changes with a record, reload, metrics, access log, dashboard."""
# ruff: noqa: SIM117  (upstreams, then the gateway that needs their URLs: clearer nested)

from __future__ import annotations

import json

import aiohttp

from .conftest import ADMIN, aio, gateway, upstream


async def call(method: str, url: str, *, admin: bool = True, **kwargs) -> tuple[int, dict | str]:
    """Send one request; an admin one with the test gateway's token and a JSON content type."""
    if admin:
        kwargs["headers"] = ADMIN | {"Content-Type": "application/json"} | kwargs.get("headers", {})
    async with aiohttp.ClientSession() as client, client.request(method, url, **kwargs) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


def table_with(candidate_url: str) -> dict:
    return {
        "services": {"orders": {"url": candidate_url}},
        "routes": [
            {"name": "orders", "prefix": "/api/orders/"},
            {"name": "rest", "prefix": "/"},
        ],
    }


@aio
async def test_routes_are_listed_and_one_route_switches_with_who_and_what_recorded():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        async with gateway(table_with(cand.url), monolith=mono.url) as (_, base):
            status, data = await call("GET", base + "/_strangler/routes")
            assert status == 200 and [r["name"] for r in data["routes"]] == ["orders", "rest"]
            status, route = await call(
                "PATCH",
                base + "/_strangler/routes/orders",
                json={"mode": "extracted", "service": "orders"},
                headers={"X-Strangler-Actor": "alice"},
            )
            assert status == 200 and route["mode"] == "extracted"
            status, data = await call("GET", base + "/api/orders/7/")
            assert data["upstream"] == "cand"
            _, changes = await call("GET", base + "/_strangler/changes")
    change = changes["changes"][-1]
    # Who: the holder of the token; what the client said of itself is only a claim.
    assert change["who"] == "admin" and change["claimed_actor"] == "alice"
    assert change["client"] == "127.0.0.1"
    assert change["to_version"] == change["from_version"] + 1
    assert change["routes"]["orders"]["from"]["mode"] == "monolith"
    assert change["routes"]["orders"]["to"]["mode"] == "extracted"


@aio
async def test_an_invalid_change_is_refused_naming_the_problem_and_the_old_table_stays():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        async with gateway(table_with(cand.url), monolith=mono.url) as (gw, base):
            version = gw.table.version
            status, error = await call(
                "PATCH", base + "/_strangler/routes/orders", json={"mode": "canary:200"}
            )
            assert status == 400 and error["error"] == "invalid_route_table"
            assert any("route 'orders'" in p and "canary" in p for p in error["fields"]["routes"])
            status, error = await call(
                "PUT",
                base + "/_strangler/routes",
                json={
                    "routes": [
                        {"name": "x", "prefix": "/", "mode": "extracted", "service": "ghost"}
                    ]
                },
            )
            assert status == 400 and "route 'x': unknown service 'ghost'" in error["detail"]
            status, error = await call(
                "PATCH", base + "/_strangler/routes/nope", json={"mode": "shadow"}
            )
            assert status == 404
            status, error = await call(
                "PATCH", base + "/_strangler/routes/orders", data=b"{not json"
            )
            assert status == 400 and error["error"] == "invalid_json"
            assert gw.table.version == version and gw.changes == type(gw.changes)(maxlen=500)


@aio
async def test_every_admin_endpoint_but_health_needs_the_admin_token_reads_included():
    token = "s3cret-s3cret-s3cret"
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        async with gateway(table_with(cand.url), monolith=mono.url, admin_token=token) as (
            _,
            base,
        ):
            for method, path in [("GET", "routes"), ("GET", "diffs"), ("GET", "recordings"),
                                 ("GET", "metrics"), ("GET", "registry"), ("GET", "changes"),
                                 ("PATCH", "routes/orders")]:  # fmt: skip
                status, error = await call(
                    method, f"{base}/_strangler/{path}", json={"mode": "monolith"}, admin=False
                )
                assert status == 401 and error["error"] == "not_authenticated", path
            status, _ = await call(
                "PATCH",
                base + "/_strangler/routes/orders",
                json={"mode": "monolith"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert status == 200
            status, _ = await call(
                "GET", base + "/_strangler/routes", headers={"Authorization": f"bearer {token}"}
            )
            assert status == 200
            assert (await call("GET", base + "/_strangler/healthz", admin=False))[0] == 200


@aio
async def test_a_proxy_without_any_admin_token_refuses_every_admin_call():
    async with (
        upstream(name="mono") as mono,
        gateway(monolith=mono.url, admin_token=None) as (
            _,
            base,
        ),
    ):
        status, error = await call("GET", base + "/_strangler/routes")
        assert status == 401 and "no admin token" in error["detail"]
        assert (await call("GET", base + "/_strangler/healthz", admin=False))[0] == 200


@aio
async def test_reload_reads_the_file_again_and_refuses_a_broken_one(tmp_path):
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        routes = tmp_path / "routes.toml"
        routes.write_text(
            f'[services.orders]\nurl = "{cand.url}"\n[[routes]]\nname = "all"\nprefix = "/"\n'
        )
        async with gateway(table_with(cand.url), monolith=mono.url, routes_file=str(routes)) as (
            gw,
            base,
        ):
            status, data = await call("POST", base + "/_strangler/reload")
            assert status == 200 and [r["name"] for r in data["routes"]] == ["all"]
            routes.write_text(
                '[[routes]]\nname = "all"\nprefix = "/"\nmode = "extracted"\nservice = "orders"\n'
            )
            status, error = await call("POST", base + "/_strangler/reload")
            assert status == 400 and "route 'all': unknown service 'orders'" in error["detail"]
            assert [r.name for r in gw.table.routes] == ["all"] and gw.table.routes[
                0
            ].mode == "monolith"


@aio
async def test_metrics_are_prometheus_text_per_route_and_upstream(capsys):
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        async with gateway(table_with(cand.url), monolith=mono.url, access_log=True) as (_, base):
            await call("GET", base + "/api/orders/", headers={"X-Request-ID": "req-1"})
            await call("GET", base + "/other")
            status, text = await call("GET", base + "/_strangler/metrics")
    assert status == 200
    assert 'strangler_requests_total{route="orders",upstream="monolith",code="2xx"} 1' in text
    assert 'strangler_request_seconds_bucket{route="rest",upstream="monolith",le="+Inf"} 1' in text
    assert "# TYPE strangler_request_seconds histogram" in text
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    first = next(line for line in lines if line["request_id"] == "req-1")
    assert (
        first["route"] == "orders"
        and first["mode"] == "monolith"
        and first["upstream"] == "monolith"
    )
    assert first["status"] == 200 and first["ms"] > 0


@aio
async def test_the_dashboard_page_and_health_are_served_by_the_proxy_itself():
    async with upstream(name="mono") as mono, gateway(monolith=mono.url) as (_, base):
        # The page is a shell without data: it loads with no token, and asks for one.
        status, page = await call("GET", base + "/_strangler/", admin=False)
        assert status == 200 and "<title>strangler proxy</title>" in page
        assert "sessionStorage" in page and "Authorization" in page
        status, health = await call("GET", base + "/_strangler/healthz")
        assert status == 200 and health["status"] == "ok"
        status, error = await call("GET", base + "/_strangler/nothing")
        assert status == 404 and error["error"] == "not_found"
    assert mono.seen == []
