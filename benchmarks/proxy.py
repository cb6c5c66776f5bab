"""Benchmark the proxy: direct vs nginx vs strangler_proxy (monolith and shadow mode), with wrk.

    python benchmarks/proxy.py [--duration 5] [--connections 50]

A trivial upstream (nginx answering ``200 ok`` from one worker; a tiny asyncio server when nginx
is missing) is measured directly, through nginx as a reverse proxy (one worker, keep-alive
upstream: the baseline a user would pick instead), and through ``strangler proxy`` (one process)
in ``monolith`` mode and in ``shadow`` mode (every GET also mirrored to a second upstream and
compared). Ends with ``RESULT proxy rps=... p50_ms=... p99_ms=... vs_nginx=... vs_direct=...``
for the monolith mode. Everything binds to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
WRK = shutil.which("wrk")

SERVE_PROXY = "import sys; from strangler_proxy.cli import main; sys.exit(main(sys.argv[1:]))"
ASYNCIO_UPSTREAM = textwrap.dedent(
    """
    import asyncio, sys
    class P(asyncio.Protocol):
        def connection_made(self, t): self.t = t
        def data_received(self, data):
            n = data.count(b"\\r\\n\\r\\n")
            self.t.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok" * n)
    async def main():
        server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
        await server.serve_forever()
    asyncio.run(main())
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def nginx_conf(workdir: Path, port: int, upstream_port: int | None) -> Path:
    if upstream_port is None:
        server = f'listen 127.0.0.1:{port}; location / {{ return 200 "ok"; }}'
        upstream = ""
    else:
        upstream = f"upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}"
        server = (
            f"listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; "
            "proxy_http_version 1.1; "
            'proxy_set_header Connection ""; proxy_set_header Host $host; '
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }"
        )
    conf = workdir / f"nginx-{port}.conf"
    conf.write_text(
        f"worker_processes 1; daemon off; pid {workdir}/nginx-{port}.pid;\n"
        f"error_log {workdir}/error-{port}.log;\n"
        f"events {{ worker_connections 4096; }}\n"
        f"http {{ access_log off; keepalive_requests 1000000; {upstream} server {{ {server} }} }}\n"
    )
    return conf


def start(cmd: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    wait_port(port)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(url: str, *, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True, timeout=duration + 30,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def latency(pct: str) -> float:
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    if WRK is None:
        print("wrk is not installed (apt-get install -y wrk); cannot benchmark", file=sys.stderr)
        return 1
    procs: list[subprocess.Popen] = []
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            upstream_port, candidate_port = free_port(), free_port()
            if NGINX:
                for port in (upstream_port, candidate_port):
                    procs.append(start([NGINX, "-c", str(nginx_conf(workdir, port, None))], port))
                kind = "nginx return 200"
            else:
                for port in (upstream_port, candidate_port):
                    procs.append(start([sys.executable, "-c", ASYNCIO_UPSTREAM, str(port)], port))
                kind = "asyncio protocol"
            print(
                f"trivial upstream: {kind} on :{upstream_port}; "
                f"wrk -t1 -c{args.connections} -d{args.duration}s"
            )
            targets = {"direct": upstream_port}
            if NGINX:
                nginx_port = free_port()
                procs.append(
                    start(
                        [NGINX, "-c", str(nginx_conf(workdir, nginx_port, upstream_port))],
                        nginx_port,
                    )
                )
                targets["nginx"] = nginx_port
            else:
                print(
                    "nginx is not installed (apt-get install -y nginx): skipping the nginx baseline"
                )
            routes = workdir / "shadow.toml"
            routes.write_text(
                f'[services.candidate]\nurl = "http://127.0.0.1:{candidate_port}"\n'
                'health_path = "/"\n\n'
                '[[routes]]\nname = "all"\nprefix = "/"\nmode = "shadow"\nservice = "candidate"\n'
            )
            env = {
                **os.environ,
                "STRANGLER_MONOLITH_URL": f"http://127.0.0.1:{upstream_port}",
                "PYTHONPATH": str(ROOT),
            }
            env.pop("REDIS_URL", None)
            modes = (
                ("monolith", []),
                ("shadow", ["--routes", str(routes)]),
                ("2 workers", ["--workers", "2"]),
            )
            for name, extra in modes:
                port = free_port()
                cmd = [sys.executable, "-c", SERVE_PROXY, "--port", str(port), *extra]
                procs.append(start(cmd, port, env))
                targets[name] = port
            for name, port in targets.items():
                url = f"http://127.0.0.1:{port}/api/ping/"
                wrk(url, duration=1, connections=args.connections)  # warm up pools and caches
                results[name] = result = wrk(
                    url, duration=args.duration, connections=args.connections
                )
                print(
                    f"{name:<10} {result['rps']:>10.0f} req/s   p50 {result['p50']:.3f} ms   "
                    f"p99 {result['p99']:.3f} ms   non-2xx {int(result['non2xx'])}"
                )
        finally:
            for proc in procs:
                stop(proc)
    ours = results["monolith"]
    nginx = results.get("nginx")
    vs_nginx = f"{ours['rps'] / nginx['rps']:.3f}" if nginx else "skipped"
    shadow_cost = results["shadow"]["rps"] / ours["rps"]
    print(f"shadow mode keeps {shadow_cost:.0%} of monolith-mode throughput")
    print(
        f"RESULT proxy rps={ours['rps']:.0f} p50_ms={ours['p50']:.3f} p99_ms={ours['p99']:.3f} "
        f"vs_nginx={vs_nginx} vs_direct={ours['rps'] / results['direct']['rps']:.3f} "
        f"shadow_rps={results['shadow']['rps']:.0f} workers2_rps={results['2 workers']['rps']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
