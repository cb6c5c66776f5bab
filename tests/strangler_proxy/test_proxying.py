"""Correct HTTP proxying through real sockets: headers, bodies, queries, connections, limits."""

from __future__ import annotations

import asyncio
import tracemalloc

import aiohttp
from aiohttp import web

from service_kit.identity import HEADER as IDENTITY_HEADER

from .conftest import aio, gateway, raw_http, raw_upstream, upstream


@aio
async def test_query_string_reaches_the_upstream_byte_for_byte():
    query = "?b=%2F%20x&a=1+2&empty=&a=%E2%82%AC&weird=%7e~&flag"
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        answer = await raw_http(
            base, f"GET /api/x/{query} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        )
    assert answer.startswith(b"HTTP/1.1 200")
    assert up.seen[0].raw_path == f"/api/x/{query}"


@aio
async def test_every_response_header_comes_back_including_repeated_set_cookie():
    async def cookies(request):
        resp = web.Response(text="ok", headers={"X-Custom": "kept", "Cache-Control": "no-store"})
        resp.headers.add("Set-Cookie", "a=1; Path=/")
        resp.headers.add("Set-Cookie", "b=2; Path=/; HttpOnly")
        resp.headers.add("Vary", "Accept")
        resp.headers.add("Vary", "Cookie")
        return resp

    async with (
        upstream(cookies) as up,
        gateway(monolith=up.url) as (_, base),
        aiohttp.ClientSession() as client,
        client.get(base + "/x") as resp,
    ):
        assert resp.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
        assert resp.headers.getall("Vary") == ["Accept", "Cookie"]
        assert resp.headers["X-Custom"] == "kept"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Strangler-Upstream"] == "monolith"


@aio
async def test_hop_by_hop_and_client_identity_headers_are_dropped_and_forwarding_headers_set():
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        request = (
            "GET /x HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret-Hop\r\n"
            "X-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
            "Proxy-Authorization: Basic eg==\r\nX-Forwarded-For: 10.0.0.9\r\n"
            f"{IDENTITY_HEADER}: forged.sig\r\nX-Strangler-Identity-User: 1\r\n"
            "X-Kept: yes\r\nConnection: close\r\n\r\n"
        )
        await raw_http(base, request.encode())
    got = up.seen[0].headers
    for name in (
        "X-Secret-Hop",
        "Keep-Alive",
        "TE",
        "Proxy-Authorization",
        IDENTITY_HEADER,
        "X-Strangler-Identity-User",
    ):
        assert name not in got, name
    assert got["X-Kept"] == "yes"
    assert got["X-Forwarded-For"] == "10.0.0.9, 127.0.0.1"
    assert got["X-Forwarded-Host"] == "shop.example"
    assert got["X-Forwarded-Proto"] == "http"
    assert got["Host"] == up.url.removeprefix("http://")


@aio
async def test_host_is_kept_for_a_service_that_asks_to_preserve_it():
    async with upstream() as up:
        table = {
            "services": {"monolith": {"url": up.url, "preserve_host": True}},
            "routes": [{"name": "all", "prefix": "/"}],
        }
        async with gateway(table, monolith=up.url) as (_, base):
            await raw_http(
                base, b"GET /x HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n"
            )
    assert up.seen[0].headers["Host"] == "shop.example"


@aio
async def test_request_id_is_passed_through_or_created_and_upstream_is_named():
    async with (
        upstream() as up,
        gateway(monolith=up.url) as (_, base),
        aiohttp.ClientSession() as client,
    ):
        async with client.get(base + "/a", headers={"X-Request-ID": "abc-123"}) as resp:
            assert resp.headers["X-Request-ID"] == "abc-123"
        async with client.get(base + "/b", headers={"X-Request-ID": "bad id\twith space"}) as resp:
            created = resp.headers["X-Request-ID"]
            assert len(created) == 32 and created != "bad id\twith space"
    assert up.seen[0].headers["X-Request-ID"] == "abc-123"
    assert up.seen[1].headers["X-Request-ID"] == created


@aio
async def test_fifty_megabyte_upload_and_download_stream_without_sitting_in_memory():
    size = 50 * 1024 * 1024
    chunk = b"x" * 65536

    async def stream(request):
        if request.method == "POST":
            total = 0
            async for piece in request.content.iter_any():
                total += len(piece)
            return web.json_response({"received": total})
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = size
        await resp.prepare(request)
        for _ in range(size // len(chunk)):
            await resp.write(chunk)
        return resp

    async def body():
        for _ in range(size // len(chunk)):
            yield chunk

    async with (
        upstream(stream) as up,
        gateway(monolith=up.url) as (_, base),
        aiohttp.ClientSession() as client,
    ):
        tracemalloc.start()
        async with client.post(base + "/upload", data=body()) as resp:
            assert (await resp.json())["received"] == size
        received = 0
        async with client.get(base + "/download") as resp:
            assert resp.headers["Content-Length"] == str(size)
            async for piece in resp.content.iter_any():
                received += len(piece)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert received == size
    assert peak < 16 * 1024 * 1024, f"peak traced memory {peak} bytes: a body was buffered"


@aio
async def test_one_client_connection_serves_many_requests_over_pooled_upstream_connections():
    async with upstream() as up:
        service = {"url": up.url, "health_path": None}
        table = {"services": {"monolith": service}, "routes": [{"name": "all", "prefix": "/"}]}
        async with gateway(table, monolith=up.url) as (_, base):
            requests = b"".join(f"GET /r{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(5))
            last = b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            answer = await raw_http(base, requests + last)
    assert answer.count(b"HTTP/1.1 200") == 6
    assert len(up.peers) == 1, f"upstream saw {len(up.peers)} connections for 6 sequential requests"


@aio
async def test_paths_with_dot_segments_or_encoded_tricks_never_reach_an_upstream():
    tricks = ["/api/../admin", "/api/%2e%2e/admin", "/api/%2E%2e/x", "/api%2fadmin", "/a//b",
              "/api/%5c..%5cx", "/api/%252e%252e/x", "/a\\..\\b", "/a/./b", "/a/%00"]  # fmt: skip
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        for trick in tricks:
            answer = await raw_http(
                base, f"GET {trick} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
            )
            assert answer.startswith(b"HTTP/1.1 400"), (trick, answer[:200])
            assert b"path_refused" in answer
        ok = await raw_http(
            base, b"GET /api/caf%C3%A9/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
    assert ok.startswith(b"HTTP/1.1 200")
    assert [r.raw_path for r in up.seen] == ["/api/caf%C3%A9/"]


@aio
async def test_paths_outside_the_table_get_a_json_404():
    async with upstream() as up:
        table = {"routes": [{"name": "orders", "prefix": "/api/orders/"}]}
        async with (
            gateway(table, monolith=up.url) as (_, base),
            aiohttp.ClientSession() as client,
            client.get(base + "/api/ordersX/1") as resp,
        ):
            assert resp.status == 404
            assert (await resp.json())["error"] == "no_route"
            assert resp.headers["X-Strangler-Upstream"] == "proxy"
    assert up.seen == []


@aio
async def test_oversized_headers_are_refused_before_any_upstream_sees_them():
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        answer = await raw_http(
            base,
            b"GET /x HTTP/1.1\r\nHost: t\r\nX-Big: "
            + b"a" * 40000
            + b"\r\nConnection: close\r\n\r\n",
        )
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] in {b"400", b"431"}, answer[:100]
    assert up.seen == []


@aio
async def test_a_request_body_that_trickles_too_slowly_is_cut_off_with_408():
    async def slurp(request):
        await request.read()
        return web.Response(text="read")

    async with upstream(slurp) as up, gateway(monolith=up.url, body_idle_timeout=0.3) as (_, base):
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


@aio
async def test_an_upstream_slower_than_the_route_timeout_gets_a_504():
    async def slow(request):
        await asyncio.sleep(2)
        return web.Response(text="late")

    async with upstream(slow) as up:
        table = {"routes": [{"name": "slow", "prefix": "/", "timeout": 0.2, "retries": 0}]}
        async with (
            gateway(table, monolith=up.url) as (_, base),
            aiohttp.ClientSession() as client,
            client.get(base + "/x") as resp,
        ):
            assert resp.status == 504
            assert (await resp.json())["error"] == "upstream_timeout"


@aio
async def test_head_and_no_content_answers_pass_through():
    async def empty(request):
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": "42", "X-Head": "1"})
        return web.Response(status=204)

    async with (
        upstream(empty) as up,
        gateway(monolith=up.url) as (_, base),
        aiohttp.ClientSession() as client,
    ):
        async with client.head(base + "/h") as resp:
            assert resp.status == 200 and resp.headers["X-Head"] == "1"
        async with client.delete(base + "/d") as resp:
            assert resp.status == 204 and await resp.read() == b""


@aio
async def test_an_idle_upstream_connection_closed_by_the_upstream_is_replaced_transparently():
    async def answer_then_hang_up(head, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        return False  # keep-alive promised, connection closed anyway

    server, url = await raw_upstream(answer_then_hang_up)
    table = {
        "services": {"monolith": {"url": url, "health_path": None}},
        "routes": [{"name": "all", "prefix": "/", "retries": 0}],
    }
    async with (
        server,
        gateway(table, monolith=url) as (gw, base),
        aiohttp.ClientSession() as client,
    ):
        for _ in range(3):
            async with client.get(base + "/x") as resp:
                assert resp.status == 200 and await resp.read() == b"ok"
                await asyncio.sleep(0.05)
    assert gw.metrics.errors == {}


@aio
async def test_an_upstream_that_answers_one_request_twice_never_leaks_into_another_answer():
    async def answer_twice(head, writer):
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"
        )
        await writer.drain()
        return True

    server, url = await raw_upstream(answer_twice)
    table = {
        "services": {"monolith": {"url": url, "health_path": None}},
        "routes": [{"name": "all", "prefix": "/", "retries": 0}],
    }
    async with server, gateway(table, monolith=url) as (_, base):
        # One client connection, several requests: on the general path (the first) and on the
        # fast path (later ones, if a connection went back to the pool).
        answer = await raw_http(base, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n" * 3 + (
            b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))  # fmt: skip
    assert answer.count(b"HTTP/1.1 200 OK") == 4 and answer.count(b"\r\n\r\nok") == 4
    assert b"stray" not in answer


@aio
async def test_an_upstream_that_answers_garbage_or_hangs_up_mid_body_gets_a_502():
    async def garbage(head, writer):
        if b"/cut" in head:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part")
        else:
            writer.write(b"SPDY/9 nonsense\r\n\r\n")
        await writer.drain()
        return False

    server, url = await raw_upstream(garbage)
    table = {
        "services": {"monolith": {"url": url, "health_path": None}},
        "routes": [{"name": "all", "prefix": "/", "retries": 0}],
    }
    async with server, gateway(table, monolith=url) as (_, base), aiohttp.ClientSession() as client:
        async with client.get(base + "/x") as resp:
            assert resp.status == 502 and (await resp.json())["error"] == "upstream_unavailable"
        async with client.get(base + "/cut") as resp:
            assert resp.status == 502 and "broke off its answer" in (await resp.json())["detail"]


@aio
async def test_a_client_expecting_100_continue_is_told_to_go_on_and_its_body_arrives():
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        writer.write(b"hello")
        await writer.drain()
        final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert final.startswith(b"HTTP/1.1 200")
    assert "Expect" not in up.seen[0].headers and up.seen[0].content_length == 5
