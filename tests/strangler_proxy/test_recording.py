"""Recorded traffic: sampled exchanges become JSON Lines that `strangler compare --replay` reads."""

# ruff: noqa: SIM117  (upstreams, then the gateway that needs their URLs: clearer nested)
from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from migrations_playbook.compare.replay import replay_load

from .conftest import ADMIN, aio, gateway, upstream

ROOT = Path(__file__).resolve().parents[2]


def payments(*, renamed: bool = False):
    """A fake payments API; `renamed` plants a behaviour change (card_last4 becomes last4)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        key = "last4" if renamed else "card_last4"
        if request.method == "POST":
            data = await request.json()
            return web.json_response(
                {"id": 1, "amount": data.get("amount"), key: "0002"}, status=201,
                headers={"Set-Cookie": "session=s3cret; HttpOnly"},
            )  # fmt: skip
        status = request.query.get("status", "any")
        return web.json_response({"count": 1, "results": [{"id": 1, key: "4242", "s": status}]})

    return handler


def table(record: float = 1.0) -> dict:
    return {"routes": [
        {"name": "payments", "prefix": "/api/payments/", "record": record},
        {"name": "rest", "prefix": "/"},
    ]}  # fmt: skip


async def send(method: str, url: str, **kwargs) -> tuple[int, bytes, dict]:
    if "/_strangler/" in url:  # the admin API: with the token, writes as JSON
        kwargs["headers"] = ADMIN | {"Content-Type": "application/json"} | kwargs.get("headers", {})
    async with aiohttp.ClientSession() as client, client.request(method, url, **kwargs) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def recordings(base: str, route: str | None = None) -> list[dict]:
    query = f"?route={route}" if route else ""
    status, body, headers = await send("GET", f"{base}/_strangler/recordings{query}")
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in body.decode().splitlines()]


@aio
async def test_recorded_exchanges_load_with_the_replay_loader(tmp_path):
    async with upstream(payments()) as mono:
        async with gateway(table(), monolith=mono.url) as (_, base):
            await send("GET", base + "/api/payments/?status=paid", headers={"Accept": "*/*"})
            await send("POST", base + "/api/payments/", json={"amount": "12.50"})
            await send("GET", base + "/api/other/")  # a route that does not record
            status, body, _ = await send("GET", base + "/_strangler/recordings")
    assert status == 200
    replay_file = tmp_path / "traffic.jsonl"
    replay_file.write_bytes(body)
    records = replay_load(replay_file)
    assert [(r.method, r.path, r.query, r.route) for r in records] == [
        ("GET", "/api/payments/", "status=paid", "payments"),
        ("POST", "/api/payments/", "", "payments"),
    ]
    get, post = records
    assert get.body is None and get.headers["Accept"] == "*/*"
    assert json.loads(post.body) == {"amount": "12.50"}
    assert post.headers["Content-Type"] == "application/json"
    assert get.response["status"] == 200 and post.response["status"] == 201
    assert json.loads(get.response["body"])["results"][0]["s"] == "paid"
    assert get.response["headers"]["Content-Type"].startswith("application/json")


@aio
async def test_secrets_are_redacted_from_recordings_by_default():
    async with upstream(payments()) as mono:
        async with gateway(table(), monolith=mono.url) as (_, base):
            await send(
                "POST", base + "/api/payments/",
                json={"amount": 5, "card": {"password": "hunter2"}},
                headers={"Authorization": "Bearer 9f0c-secret", "Cookie": "sessionid=abc",
                         "X-Trace": "kept"},
            )  # fmt: skip
            [line] = await recordings(base)
    text = json.dumps(line)
    assert "9f0c-secret" not in text and "abc" not in text and "hunter2" not in text
    assert "s3cret" not in text
    assert line["headers"]["Authorization"] == "Bearer <redacted>"
    assert line["headers"]["Cookie"] == "<redacted>"
    assert line["headers"]["X-Trace"] == "kept"
    assert json.loads(line["body"]) == {"amount": 5, "card": {"password": "<redacted>"}}
    assert line["response"]["headers"]["Set-Cookie"] == "<redacted>"


@aio
async def test_redaction_is_extended_by_configuration_and_never_narrowed():
    async with upstream(payments()) as mono:
        async with gateway(
            table(), monolith=mono.url, redact_headers=("X-Trace",), redact_fields=("amount",)
        ) as (_, base):
            await send(
                "POST", base + "/api/payments/", json={"amount": 5},
                headers={"Authorization": "Bearer t-1", "X-Trace": "private"},
            )  # fmt: skip
            [line] = await recordings(base)
    assert line["headers"]["Authorization"] == "Bearer <redacted>"  # the default still holds
    assert line["headers"]["X-Trace"] == "<redacted>"
    assert json.loads(line["body"]) == {"amount": "<redacted>"}


@aio
async def test_a_sample_rate_records_that_share_and_other_routes_keep_the_fast_path():
    async with upstream(payments()) as mono:
        async with gateway(table(record=0.25), monolith=mono.url) as (gw, base):
            async with aiohttp.ClientSession() as client:
                for _ in range(200):
                    async with client.get(base + "/api/payments/") as resp:
                        await resp.read()
                fast_before = gw.fast_served
                for _ in range(20):
                    async with client.get(base + "/api/other/") as resp:
                        await resp.read()
            recorded = await recordings(base)
            assert gw.fast_served - fast_before == 20  # record = 0 routes stay on the fast path
    assert 20 <= len(recorded) <= 90  # 0.25 of 200: 50 expected, 6 standard deviations apart


@aio
async def test_recording_is_switched_at_run_time_through_the_admin_api():
    async with upstream(payments()) as mono:
        async with gateway(table(record=0.0), monolith=mono.url) as (gw, base):
            await send("GET", base + "/api/payments/")
            assert await recordings(base) == []
            status, body, _ = await send(
                "PATCH", base + "/_strangler/routes/payments", json={"record": 1}
            )
            assert (status, json.loads(body)["record"]) == (200, 1.0)
            await send("GET", base + "/api/payments/?n=1")
            status, body, _ = await send(
                "PATCH", base + "/_strangler/routes/payments", json={"record": 2}
            )
            assert status == 400
            assert (
                "route 'payments': 'record' must be between 0.0 and 1.0, got 2"
                in (json.loads(body)["fields"]["routes"])
            )
            await send("PATCH", base + "/_strangler/routes/payments", json={"record": 0})
            await send("GET", base + "/api/payments/?n=2")
            assert [r["query"] for r in await recordings(base, "payments")] == ["n=1"]
            assert gw.changes[-1]["routes"]["payments"]["from"]["record"] == 1.0
            status, body, _ = await send("GET", base + "/_strangler/recordings?route=nope")
            assert (status, json.loads(body)["error"]) == (404, "not_found")


@aio
async def test_the_ring_keeps_the_latest_recordings_and_the_directory_keeps_all(tmp_path):
    async with upstream(payments()) as mono:
        async with gateway(
            table(), monolith=mono.url, record_buffer=5, record_dir=str(tmp_path / "records")
        ) as (_, base):
            for number in range(12):
                await send("GET", f"{base}/api/payments/?n={number}")
            kept = await recordings(base)
            status, body, _ = await send("DELETE", base + "/_strangler/recordings")
            assert (status, json.loads(body)) == (200, {"cleared": 5})
            assert await recordings(base) == []
    assert [r["query"] for r in kept] == [f"n={n}" for n in range(7, 12)]
    assert len(replay_load(tmp_path / "records" / "payments.jsonl")) == 12
    # User data: only the proxy's user may enter the folder or read the file.
    assert stat.S_IMODE((tmp_path / "records").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "records" / "payments.jsonl").stat().st_mode) == 0o600


@aio
async def test_recorded_traffic_replayed_by_compare_reports_the_planted_mismatch(tmp_path):
    async with upstream(payments(), name="a") as side_a, upstream(payments(renamed=True)) as side_b:
        async with gateway(table(), monolith=side_a.url) as (_, base):
            await send("GET", base + "/api/payments/?status=paid")
            await send("POST", base + "/api/payments/", json={"amount": "3.00"})
            _, body, _ = await send("GET", base + "/_strangler/recordings")
        replay_file = tmp_path / "traffic.jsonl"
        replay_file.write_bytes(body)
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "strangler"), "compare", "--against", side_a.url,
            side_b.url, "--replay", str(replay_file), "--out", str(tmp_path / "out"),
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 1, text
    mismatches = [line for line in text.splitlines() if line.startswith("mismatch")]
    assert len(mismatches) == 2, text
    assert "/results/0/card_last4" in mismatches[0] and "/card_last4" in mismatches[1], text
