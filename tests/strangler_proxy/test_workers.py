"""Worker processes share one route table: a change made through any worker reaches them all."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import aiohttp

from strangler_proxy.config import ProxyConfig
from strangler_proxy.discovery import MemoryRegistry
from strangler_proxy.gateway import Gateway
from strangler_proxy.ratelimit import MemoryBuckets
from strangler_proxy.routes import table_from_dict

from .conftest import ADMIN, ADMIN_TOKEN, aio, upstream

SERVE = "import sys; from strangler_proxy.cli import main; sys.exit(main(sys.argv[1:]))"


async def patch(base: str, route: str, change: dict) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.patch(f"{base}/_strangler/routes/{route}", json=change, headers=ADMIN) as resp,
    ):
        return resp.status


async def served_by(base: str, path: str) -> str:
    async with aiohttp.ClientSession() as client, client.get(base + path) as resp:
        return resp.headers["X-Strangler-Upstream"]


async def start_workers(config: ProxyConfig, table, count: int) -> tuple[list[Gateway], list[str]]:
    """Start `count` gateways in this process sharing `config`'s state file, as workers do."""
    workers, bases = [], []
    for _ in range(count):
        gw = Gateway(config=config, table=table, registry=MemoryRegistry(),
                     limiter=MemoryBuckets())  # fmt: skip
        bases.append(f"http://127.0.0.1:{await gw.start(host='127.0.0.1', port=0)}")
        workers.append(gw)
    return workers, bases


@aio
async def test_a_route_switched_on_one_worker_is_switched_on_the_others(tmp_path):
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        table = table_from_dict(
            {
                "services": {"orders": {"url": cand.url, "health_path": None}},
                "routes": [
                    {"name": "orders", "prefix": "/api/orders/", "service": "orders"},
                    {"name": "rest", "prefix": "/"},
                ],
            },
            monolith_url=mono.url,
        )
        config = ProxyConfig(
            monolith_url=mono.url, access_log=False, shared_state=str(tmp_path / "routes.json"),
            admin_token=ADMIN_TOKEN,
        )  # fmt: skip
        workers, bases = await start_workers(config, table, 3)
        try:
            assert {await served_by(b, "/api/orders/") for b in bases} == {"monolith"}
            assert await patch(bases[1], "orders", {"mode": "extracted"}) == 200
            await asyncio.sleep(0.3)
            assert [gw.table.version for gw in workers] == [2, 2, 2]
            assert {await served_by(b, "/api/orders/") for b in bases} == {"orders"}
            assert all(gw.changes[-1]["who"] == "admin" for gw in workers)
            # The next change builds on the shared table wherever it is made.
            assert await patch(bases[2], "rest", {"mode": "extracted", "service": "orders"}) == 200
            await asyncio.sleep(0.3)
            assert [gw.table.version for gw in workers] == [3, 3, 3]
            assert [gw.table.route("orders").mode for gw in workers] == ["extracted"] * 3
            assert {await served_by(b, "/other") for b in bases} == {"orders"}
            # A worker started later adopts the table in force.
            late = Gateway(config=config, table=table, registry=MemoryRegistry(),
                           limiter=MemoryBuckets())  # fmt: skip
            await late.start(host="127.0.0.1", port=0)
            workers.append(late)
            assert late.table.version == 3 and late.table.route("rest").mode == "extracted"
        finally:
            for gw in workers:
                await gw.close()


@aio
async def test_a_metrics_scrape_through_any_worker_counts_every_workers_requests(tmp_path):
    async with upstream(name="mono") as mono:
        table = table_from_dict({"routes": [{"name": "all", "prefix": "/"}]}, monolith_url=mono.url)
        config = ProxyConfig(
            monolith_url=mono.url, access_log=False, shared_state=str(tmp_path / "routes.json"),
            admin_token=ADMIN_TOKEN,
        )  # fmt: skip
        workers, bases = await start_workers(config, table, 3)
        try:
            async with aiohttp.ClientSession() as client:

                async def send(base: str, count: int) -> None:
                    for _ in range(count):
                        async with client.get(base + "/x") as resp:
                            assert resp.status == 200

                async def total(base: str) -> int:
                    async with client.get(base + "/_strangler/metrics", headers=ADMIN) as resp:
                        text = await resp.text()
                    line = 'strangler_requests_total{route="all",upstream="monolith",code="2xx"} '
                    found = [int(x.removeprefix(line)) for x in text.splitlines() if line in x]
                    return found[0] if found else 0

                await send(bases[0], 1)
                await send(bases[1], 2)
                # Worker 2 counts 4 that nobody else has seen yet: a scrape through it reports
                # them (its own live figures), and no later scrape elsewhere reports fewer.
                await send(bases[2], 4)
                seen = [await total(bases[2])]
                seen += [await total(base) for base in bases]
                assert seen[0] >= 4 and seen == sorted(seen)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and {await total(b) for b in bases} != {7}:
                    await asyncio.sleep(0.1)
                assert [await total(b) for b in bases] == [7, 7, 7]
        finally:
            for gw in workers:
                await gw.close()
    assert [gw.metrics.requests[("all", "monolith", "2xx")] for gw in workers] == [1, 2, 4]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _connection(port: int):
    """One keep-alive client connection: every request on it reaches the same worker."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def _json(conn: http.client.HTTPConnection, path: str) -> dict:
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def _get(url: str) -> dict:
    request = urllib.request.Request(url, headers=ADMIN)  # noqa: S310 (loopback http)
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (loopback http)
        return json.loads(resp.read())


def test_strangler_proxy_workers_all_serve_a_change_made_through_one_of_them(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "STRANGLER_MONOLITH_URL": "http://127.0.0.1:9",
        "STRANGLER_ACCESS_LOG": "0",
        "STRANGLER_VAR_DIR": str(tmp_path),
        "STRANGLER_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        pids: dict[int, int] = {}
        while time.monotonic() < deadline and len(pids) < 2:
            try:
                health = _get(base + "/_strangler/healthz")  # a new connection each time
            except OSError:
                time.sleep(0.1)
                continue
            pids[health["pid"]] = health["table_version"]
        assert len(pids) == 2, f"reached {len(pids)} worker(s)"
        request = urllib.request.Request(  # noqa: S310 (loopback http)
            base + "/_strangler/routes/default", data=b'{"timeout": 7.5}', method="PATCH",
            headers={"Content-Type": "application/json", **ADMIN},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (loopback http)
            assert resp.status == 200
        time.sleep(0.3)
        seen: dict[int, tuple[int, str]] = {}
        for _ in range(60):
            health = _get(base + "/_strangler/healthz")
            timeout = _get(base + "/_strangler/routes/default")["timeout"]
            seen[health["pid"]] = (health["table_version"], timeout)
            if len(seen) == 2:
                break
        assert set(seen) == set(pids)
        assert set(seen.values()) == {(2, 7.5)}
        # 3 requests served by one worker and 5 by the other (each a 5xx the proxy made: nothing
        # listens at the monolith's address); then a scrape through either counts all 8.
        wanted = dict(zip(sorted(pids), (3, 5), strict=True))
        served: set[int] = set()
        deadline = time.monotonic() + 15
        while served != set(wanted) and time.monotonic() < deadline:
            with _connection(port) as conn:
                pid = _json(conn, "/_strangler/healthz")["pid"]
                if pid in served:
                    continue
                for _ in range(wanted[pid]):
                    conn.request("GET", "/x")
                    resp = conn.getresponse()
                    assert resp.status in (502, 503) and resp.read()  # 503: breaker open
                served.add(pid)
        assert served == set(wanted)
        # Every scrape, through either worker, counts all 8 once both have published (each
        # does every second; the one answering a scrape publishes first).
        total = 'strangler_requests_total{route="default",upstream="proxy",code="5xx"} 8'
        scraped: dict[int, str] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            len(scraped) == 2 and all(total in text for text in scraped.values())
        ):
            with _connection(port) as conn:
                pid = _json(conn, "/_strangler/healthz")["pid"]
                conn.request("GET", "/_strangler/metrics", headers=ADMIN)
                scraped[pid] = conn.getresponse().read().decode()
            time.sleep(0.05)
        assert set(scraped) == set(pids)
        for text in scraped.values():
            assert total in text, text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
