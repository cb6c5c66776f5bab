"""The front server and its fast path: pipelining, keep-alive, streaming, framing, hand-overs."""

from __future__ import annotations

import asyncio
import json
import tracemalloc

import aiohttp
from aiohttp import web

from strangler_proxy.routes import table_from_dict

from .conftest import aio, gateway, raw_http, raw_upstream, upstream

NO_HEALTH = {"health_path": None}


def split_answers(data: bytes) -> list[tuple[int, bytes]]:
    """Split a stream of Content-Length-framed HTTP/1.1 answers into (status, body) pairs."""
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length")
        )
        answers.append((status, rest[:length]))
        data = rest[length:]
    return answers


async def warm(base: str, path: str = "/warm") -> None:
    """Leave an idle pooled upstream connection behind, so the next request takes the fast path."""
    async with aiohttp.ClientSession() as client, client.get(base + path) as resp:
        await resp.read()


@aio
async def test_pipelined_requests_are_answered_in_request_order_whatever_path_serves_them():
    async def varied(request):
        await asyncio.sleep(0.05 if request.path.endswith("/0") else 0)
        return web.json_response({"target": request.path_qs, "length": len(await request.read())})

    async with upstream(varied) as up:
        table = {"services": {"monolith": {"url": up.url, **NO_HEALTH}}, "routes": [
            {"name": "all", "prefix": "/"}]}  # fmt: skip
        async with gateway(table, monolith=up.url) as (_, base):
            await warm(base)
            requests = [
                b"GET /r/0 HTTP/1.1\r\nHost: t\r\n\r\n",  # the fast path: an idle upstream conn
                b"POST /r/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",  # a body
                b"GET /_strangler/healthz HTTP/1.1\r\nHost: t\r\n\r\n",  # the admin API
                b"GET /r/3?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
                b"GET /r/../4 HTTP/1.1\r\nHost: t\r\n\r\n",  # refused by the proxy itself
                b"GET /r/5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ]
            answer = await raw_http(base, b"".join(requests))
    answers = split_answers(answer)
    assert [status for status, _ in answers] == [200, 200, 200, 200, 400, 200]
    bodies = [json.loads(body) for _, body in answers]
    assert [bodies[i]["target"] for i in (0, 1, 3, 5)] == ["/r/0", "/r/1", "/r/3?x=1", "/r/5"]
    assert bodies[1]["length"] == 3 and bodies[2]["status"] == "ok"
    assert bodies[4]["error"] == "path_refused"


@aio
async def test_a_keep_alive_client_reuses_one_upstream_connection_on_the_fast_path():
    async with upstream() as up:
        table = {"services": {"monolith": {"url": up.url, **NO_HEALTH}}, "routes": [
            {"name": "all", "prefix": "/"}]}  # fmt: skip
        async with gateway(table, monolith=up.url) as (gw, base):
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector) as client:
                for i in range(20):
                    async with client.get(f"{base}/k/{i}", headers={"X-Request-ID": f"r{i}"}) as r:
                        assert r.status == 200 and r.headers["X-Request-ID"] == f"r{i}"
                        assert r.headers["X-Strangler-Upstream"] == "monolith"
                        assert (await r.json())["target"] == f"/k/{i}"
            metrics = gw.metrics.render()
    assert len(up.peers) == 1 and gw.fast_served == 19
    assert [r.headers["X-Request-ID"] for r in up.seen] == [f"r{i}" for i in range(20)]
    assert 'strangler_requests_total{route="all",upstream="monolith",code="2xx"} 20' in metrics


@aio
async def test_a_chunked_upload_streams_through_without_sitting_in_memory():
    size = 24 * 1024 * 1024
    chunk = b"y" * 65536

    async def count(request):
        total = 0
        async for piece in request.content.iter_any():
            total += len(piece)
        return web.json_response({"received": total})

    async def body():
        for _ in range(size // len(chunk)):
            yield chunk

    async with upstream(count) as up, gateway(monolith=up.url) as (_, base):
        tracemalloc.start()
        async with aiohttp.ClientSession() as client, client.post(base + "/u", data=body()) as r:
            assert (await r.json())["received"] == size
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        raw = (
            b"POST /u HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
            b"\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        answer = await raw_http(base, raw)
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes: the upload was buffered"
    assert json.loads(split_answers(answer)[0][1]) == {"received": 11}


@aio
async def test_answers_without_a_length_are_rechunked_for_http11_and_closed_for_http10():
    async def streamed(request):
        resp = web.StreamResponse()
        await resp.prepare(request)
        for part in (b"one,", b"two,", b"three"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async with upstream(streamed) as up, gateway(monolith=up.url) as (_, base):
        await warm(base)
        async with aiohttp.ClientSession() as client, client.get(base + "/s") as resp:
            assert resp.headers["Transfer-Encoding"] == "chunked"
            assert await resp.read() == b"one,two,three"
        old = await raw_http(base, b"GET /s HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n")
    head, _, body = old.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and b"connection: close" in head.lower()
    assert body == b"one,two,three"


@aio
async def test_an_http10_keep_alive_client_is_told_the_connection_stays_open():
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        answer = await raw_http(
            base,
            b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
        )
    answers = split_answers(answer)
    assert [json.loads(body)["target"] for _, body in answers] == ["/a", "/b"]
    assert answer.lower().count(b"connection: keep-alive") == 1


@aio
async def test_a_large_answer_on_the_fast_path_is_streamed_with_its_length():
    size = 3 * 1024 * 1024

    async def big(request):
        if request.path == "/warm":
            return web.Response(text="w")
        return web.Response(body=b"z" * size)

    async with upstream(big) as up, gateway(monolith=up.url) as (_, base):
        await warm(base)
        async with aiohttp.ClientSession() as client, client.get(base + "/big") as resp:
            assert resp.headers["Content-Length"] == str(size)
            assert len(await resp.read()) == size


@aio
async def test_on_a_warm_pool_5xx_still_falls_back_and_safe_requests_still_retry():
    calls: list[str] = []

    async def monolith(request):
        calls.append(request.path)
        if request.path == "/flaky" and len(calls) % 2:
            return web.Response(status=502)
        return web.json_response({"upstream": "mono", "path": request.path})

    async def broken(request):
        return web.json_response({"error": "boom"}, status=503)

    async with upstream(monolith, name="mono") as mono, upstream(broken, name="cand") as cand:
        table = {
            "services": {"monolith": {"url": mono.url, **NO_HEALTH},
                         "orders": {"url": cand.url, **NO_HEALTH}},
            "routes": [{"name": "orders", "prefix": "/api/orders/", "mode": "extracted",
                        "service": "orders", "retries": 0},
                       {"name": "rest", "prefix": "/", "retries": 1}],
        }  # fmt: skip
        async with (
            gateway(table, monolith=mono.url) as (gw, base),
            aiohttp.ClientSession() as client,
        ):
            for _ in range(3):  # the first on a cold pool, the others on the fast path
                async with client.get(base + "/api/x") as resp:
                    assert resp.status == 200
            for _ in range(3):
                async with client.get(base + "/api/orders/1") as resp:
                    assert resp.status == 200 and (await resp.json())["upstream"] == "mono"
                    assert resp.headers["X-Strangler-Fallback"] == "orders: 503"
            calls.clear()
            for _ in range(2):
                async with client.get(base + "/flaky") as resp:
                    assert resp.status == 200
    assert calls == ["/flaky", "/flaky", "/flaky", "/flaky"]
    assert gw.fast_served >= 6  # warm requests took the fast path and were handed over
    assert gw.metrics.retries["rest"] == 2
    assert gw.metrics.fallbacks[("orders", "orders")] == 3


@aio
async def test_on_a_warm_pool_a_slow_upstream_still_gets_a_504_in_time():
    async def slow(request):
        if request.path == "/slow":
            await asyncio.sleep(2)
        return web.Response(text="ok")

    async with upstream(slow) as up:
        table = {"services": {"monolith": {"url": up.url, **NO_HEALTH}}, "routes": [
            {"name": "all", "prefix": "/", "timeout": 0.2, "retries": 0}]}  # fmt: skip
        async with gateway(table, monolith=up.url) as (gw, base):
            await warm(base)
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with aiohttp.ClientSession() as client, client.get(base + "/slow") as resp:
                assert resp.status == 504 and (await resp.json())["error"] == "upstream_timeout"
            assert loop.time() - started < 1.0
            async with aiohttp.ClientSession() as client, client.get(base + "/after") as resp:
                assert resp.status == 200
    assert gw.metrics.errors[("all", "monolith", "timeout")] == 1


@aio
async def test_a_too_long_target_or_a_head_that_never_ends_is_refused():
    async with upstream() as up, gateway(monolith=up.url, head_timeout=0.3) as (_, base):
        long_target = b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
        assert (await raw_http(base, long_target)).startswith(b"HTTP/1.1 414")
        started = asyncio.get_running_loop().time()
        answer = await raw_http(base, b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow: ", timeout=5)
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
        assert asyncio.get_running_loop().time() - started < 3
        assert (await raw_http(base, b"NOT HTTP\r\n\r\n")).startswith(b"HTTP/1.1 400")
    assert up.seen == []


@aio
async def test_a_route_narrowed_by_a_header_serves_only_requests_that_carry_it():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:
        table = {
            "services": {"beta": {"url": cand.url, **NO_HEALTH}},
            "routes": [
                {"name": "beta", "prefix": "/", "mode": "extracted", "service": "beta",
                 "headers": {"X-Beta": "1"}},
                {"name": "rest", "prefix": "/"},
            ],
        }  # fmt: skip
        async with gateway(table, monolith=mono.url) as (gw, base), aiohttp.ClientSession() as c:
            served = []
            for beta in ("1", None, "1", "2", "1", None):
                headers = {"X-Beta": beta} if beta else {}
                async with c.get(base + "/x", headers=headers) as resp:
                    served.append((await resp.json())["upstream"])
    assert served == ["cand", "mono", "cand", "mono", "cand", "mono"]
    assert gw.fast_served >= 2  # the same path, told apart by a header on the fast path too


@aio
async def test_garbage_after_a_fast_path_request_is_refused_only_after_its_answer():
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        await warm(base)
        answer = await raw_http(
            base, b"GET /first HTTP/1.1\r\nHost: t\r\n\r\nNOT HTTP AT ALL\r\n\r\n"
        )
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b'"/first"' in rest
    assert b"HTTP/1.1 400" in rest and b"bad_request" in rest


@aio
async def test_an_upgrade_request_is_answered_without_the_upgrade_and_the_connection_closed():
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        answer = await raw_http(
            base,
            b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            b"\x81\x05hello",
        )
    assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1") == 1
    assert "Upgrade" not in up.seen[0].headers and len(up.seen) == 1


@aio
async def test_a_route_switch_applies_to_paths_the_fast_path_has_already_decided():
    async with upstream(name="mono") as mono, upstream(name="cand") as cand:

        def table(mode: str) -> dict:
            return {
                "services": {"monolith": {"url": mono.url, **NO_HEALTH},
                             "orders": {"url": cand.url, **NO_HEALTH}},
                "routes": [{"name": "orders", "prefix": "/api/orders/", "mode": mode,
                            "service": "orders"}, {"name": "rest", "prefix": "/"}],
            }  # fmt: skip

        async with gateway(table("monolith"), monolith=mono.url) as (gw, base):
            served = []
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector) as client:
                for turn in range(9):
                    if turn in (3, 6):
                        mode = "extracted" if turn == 3 else "monolith"
                        new = table_from_dict(table(mode), monolith_url=mono.url)
                        gw.table_swap(new=new, actor="test", reason=f"to {mode}")
                    async with client.get(base + "/api/orders/7?page=1") as resp:
                        served.append((await resp.json())["upstream"])
    assert served == ["mono"] * 3 + ["cand"] * 3 + ["mono"] * 3
    # Only the first request to each half found no idle upstream connection.
    assert gw.fast_served == 7


@aio
async def test_on_the_fast_path_answer_headers_pass_as_spelled_and_hop_by_hop_ones_do_not():
    async def answer(head, writer):
        connection = b"keep-alive, X-Private" if b"/private" in head else b"keep-alive"
        writer.write(
            b"HTTP/1.1 201 Made Here\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-UPPER: U\r\n"
            b"Keep-Alive: timeout=5\r\nX-Request-ID: upstream-made\r\nX-Private: secret\r\n"
            b"Connection: " + connection + b"\r\nContent-Length: 2\r\n\r\nok"
        )
        await writer.drain()
        return True

    server, url = await raw_upstream(answer)
    table = {"services": {"monolith": {"url": url, **NO_HEALTH}}, "routes": [
        {"name": "all", "prefix": "/"}]}  # fmt: skip
    request = b"GET %s HTTP/1.1\r\nHost: t\r\nX-Request-ID: r1\r\nConnection: close\r\n\r\n"
    async with server, gateway(table, monolith=url) as (gw, base):
        await warm(base)
        # Twice: the second answer's header names are the ones the proxy has seen before.
        answers = [await raw_http(base, request % b"/p") for _ in range(2)]
        private = await raw_http(base, request % b"/private")
    expected = [
        b"HTTP/1.1 201 Made Here", b"Set-Cookie: a=1", b"set-cookie: b=2", b"X-UPPER: U",
        b"X-Private: secret", b"Content-Length: 2", b"X-Strangler-Upstream: monolith",
        b"X-Request-ID: r1", b"Connection: close",
    ]  # fmt: skip
    for got in answers:
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.split(b"\r\n") == expected and body == b"ok"
    # A Connection header naming another header: that one is dropped too (the general path).
    head, _, body = private.partition(b"\r\n\r\n")
    assert b"X-Private" not in head and b"Set-Cookie: a=1" in head and body == b"ok"
    assert gw.fast_served == 3


def _chunked(trailers: bytes) -> bytes:
    return (
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"2\r\n{}\r\n0\r\n" + trailers + b"\r\n"
    )


@aio
async def test_trailers_are_dropped_never_forwarded_nor_taken_for_headers():
    async with upstream() as up, gateway(monolith=up.url) as (gw, base):
        answer = await raw_http(
            base, _chunked(b"Authorization: Bearer stolen\r\nX-Smuggled: 1\r\nHost: evil\r\n")
        )
    assert answer.startswith(b"HTTP/1.1 200")
    seen = up.seen[0].headers
    assert "X-Smuggled" not in seen and "Authorization" not in seen
    assert seen["X-Forwarded-Host"] == "t"
    assert gw.auth.lookups == 0  # nobody was asked who "stolen" is


@aio
async def test_trailers_count_against_the_head_limits():
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        many = await raw_http(base, _chunked(b"X-A: 1\r\n" * 200))
        large = await raw_http(base, _chunked(b"X-A: " + b"a" * 100_000 + b"\r\n"))
    for answer in (many, large):
        assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
        assert b'"header_too_large"' in answer


@aio
async def test_a_fragment_or_an_invalid_escape_in_the_target_gets_a_400_json_answer(caplog):
    async with upstream() as up, gateway(monolith=up.url) as (_, base):
        fragment = await raw_http(base, b"GET /a#b HTTP/1.1\r\nHost: t\r\n\r\n")
        answers = [
            await raw_http(
                base, f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
            )
            for target in ("/api/%ff", "/api/%zz", "/api/%ff?q=1")
        ]
        after = await raw_http(base, b"GET /fine HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert fragment.startswith(b"HTTP/1.1 400") and b'"bad_request"' in fragment
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 400") and b'"path_refused"' in answer
    assert after.startswith(b"HTTP/1.1 200")
    assert len(up.seen) == 1 and "Traceback" not in caplog.text
