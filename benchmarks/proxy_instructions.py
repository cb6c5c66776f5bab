"""Count the instructions the proxy spends per request, in one process, under callgrind.

    python benchmarks/proxy_instructions.py [--requests 2000] [--scenario anonymous ...]
    python benchmarks/proxy_instructions.py --run anonymous 500   (one run, as callgrind runs it)

Wall-clock figures on a shared 2-core machine move by 2x from one minute to the next;
instruction counts do not. Each scenario runs a keep-alive client (8 connections, one request at
a time on each, as wrk does), the proxy (``Gateway`` started on 127.0.0.1:0, uvloop, access log
on as by default, written to /dev/null) and trivial upstreams (asyncio protocols answering like
``nginx return 200 "ok"``), all in one process over loopback sockets, under
``valgrind --tool=callgrind``, twice: with N and 2N requests. The difference divided by N is
the cost of one request: Python's start, imports and the warm-up cancel out. The client's and
the upstreams' share is in the figure too, and is the same for every version of the proxy.

Scenarios (which path each exercises):

* ``direct``: the client talks to the upstream itself, no proxy: what the harness costs, to
  subtract from the others for the proxy's own share.
* ``anonymous``: ``GET /api/ping/`` without a token, a route in ``monolith`` mode: the fast path.
* ``authenticated``: the same with ``Authorization: Bearer <token>``, the token already in the
  auth cache (the upstream answered ``/api/users/me/`` once): checked at the edge, and an
  ``X-Strangler-Identity`` signed for the monolith, that method and path, on every request.
* ``shadow``: a route in ``shadow`` mode: the monolith answers, every GET mirrored to a second
  upstream and compared (noise sample 0.1, as by default).

Ends with one line per scenario: ``RESULT proxy_instructions scenario=... per_request=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("direct", "anonymous", "authenticated", "shadow")
CONNECTIONS = 8
TOKEN = "bench-token-0123456789abcdef0123456789"  # noqa: S105 (made up: in-process only)
ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 28 Nov 2026 10:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\nok"
)
ME = b'{"id": 42, "email": "bench@example.com", "is_staff": false}'
ME_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (
    len(ME),
    ME,
)


class _Upstream(asyncio.Protocol):
    """Answer every request head at once (GETs without bodies only)."""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        data = self.pending + data
        *heads, self.pending = data.split(b"\r\n\r\n")
        self.transport.write(
            b"".join(ME_ANSWER if b" /api/users/me/ " in head else ANSWER for head in heads)
        )


class _Client(asyncio.Protocol):
    """One keep-alive connection sending its next request when the last answer is whole."""

    def __init__(self, request: bytes, budget: list[int], done: asyncio.Future):
        import httptools

        self.request, self.budget, self.done = request, budget, done
        self.parser = httptools.HttpResponseParser(self)
        self.statuses: dict[int, int] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._next()

    def _next(self) -> None:
        if self.budget[0] <= 0:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.budget[0] -= 1
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self._next()


def _table(scenario: str, monolith: str, candidate: str) -> dict:
    if scenario == "shadow":
        return {
            "services": {"candidate": {"url": candidate, "health_path": None}},
            "routes": [{"name": "all", "prefix": "/", "mode": "shadow", "service": "candidate"}],
        }
    return {"routes": [{"name": "all", "prefix": "/"}]}


async def _run(scenario: str, requests: int) -> None:
    sys.path.insert(0, str(ROOT))
    from strangler_proxy.config import ProxyConfig
    from strangler_proxy.gateway import Gateway
    from strangler_proxy.routes import table_from_dict

    loop = asyncio.get_running_loop()
    upstreams = [await loop.create_server(_Upstream, "127.0.0.1", 0) for _ in range(2)]
    monolith, candidate = (
        f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}" for server in upstreams
    )
    config = ProxyConfig(
        monolith_url=monolith, admin_token="bench-admin-token-0123456789",  # noqa: S106
        identity_secret="bench-identity-secret-0123456789-abcdef",  # noqa: S106
    )  # fmt: skip
    table = table_from_dict(_table(scenario, monolith, candidate), monolith_url=monolith)
    gateway = Gateway(config=config, table=table)
    port = await gateway.start(host="127.0.0.1", port=0)
    if scenario == "direct":
        port = upstreams[0].sockets[0].getsockname()[1]
    auth = f"Authorization: Bearer {TOKEN}\r\n" if scenario == "authenticated" else ""
    request = (
        f"GET /api/ping/?page=2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: bench\r\n"
        f"Accept: */*\r\n{auth}\r\n"
    ).encode()
    clients = []
    for budget in (2 * CONNECTIONS, requests):  # a warm-up, then the requests counted
        shared = [budget]
        futures = [loop.create_future() for _ in range(CONNECTIONS)]
        clients = []
        for future in futures:
            _, client = await loop.create_connection(
                lambda f=future, b=shared: _Client(request, b, f), "127.0.0.1", port
            )
            clients.append(client)
        await asyncio.gather(*futures)
        await asyncio.sleep(0.05)
        if scenario == "shadow":
            await gateway.shadow.drain()
        for client in clients:
            client.transport.close()
    statuses: dict[int, int] = {}
    for client in clients:
        for status, count in client.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    await gateway.close()
    for server in upstreams:
        server.close()
    if set(statuses) != {200}:
        raise SystemExit(f"{scenario}: answers other than 200: {statuses}")


def _one_run(scenario: str, requests: int) -> None:
    sys.stdout = open(os.devnull, "w")  # the access log  # noqa: SIM115
    import uvloop

    uvloop.run(_run(scenario, requests))


def _instructions(scenario: str, requests: int, workdir: Path) -> int:
    out = workdir / f"callgrind.{scenario}.{requests}"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--run", scenario, str(requests)],
        check=True, capture_output=True, timeout=3600, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    for line in out.read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="N: runs of N and 2N")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--run", nargs=2, metavar=("SCENARIO", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _one_run(args.run[0], int(args.run[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 1
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenario or SCENARIOS:
            low = _instructions(scenario, n, Path(tmp))
            high = _instructions(scenario, 2 * n, Path(tmp))
            per = (high - low) / n
            print(f"RESULT proxy_instructions scenario={scenario} per_request={per:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
