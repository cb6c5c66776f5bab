"""Benchmark the proxy with wrk: on a trivial upstream, and in front of the real monolith.

    python benchmarks/proxy.py [--duration 3] [--rounds 5] [--connections 50] [--no-monolith]
                               [--before DIR]

Every request is ``GET /api/ping/`` (2 bytes back); ``PATHS`` below says which path of the proxy
each target exercises, and the run prints it. Every answer that is not 2xx and every socket error
is an error: each run's count is printed, and the RESULT line's ``errors`` sums them (each
target is asked once before the runs, so a 3xx, which wrk counts as a success, stops it).

1. A trivial upstream (nginx answering ``200 ok`` from one worker, and the benchmark's token's
   user at ``/api/users/me/``; a tiny asyncio server when nginx is missing), measured directly,
   through nginx as a reverse proxy (one worker, keep-alive upstream: the baseline a user would
   pick instead) and through ``strangler proxy``: one process in ``monolith`` mode on uvloop as
   by default, anonymous (``vs_nginx``) and with a Bearer token (``auth_vs_nginx``: the token
   checked at the edge, cached after its first lookup, and an identity signed for the monolith
   forwarded on every request); on the stock asyncio loop; ``shadow`` mode, every GET also
   mirrored to a second upstream and compared (``shadow_vs_monolith``); ``--workers 2``. Like for
   like: nginx with what ours does per request (a JSON access-log line to a buffered file, an
   ``X-Request-ID`` sent upstream and returned; nginx logs by default) against ours as it runs by
   default, logging to a file, and nginx without a log against ours with
   ``STRANGLER_ACCESS_LOG=0`` (``unlogged_vs_nginx``). Each proxy measured runs alone on half
   the CPUs (one, here), wrk and the upstreams on the other half; ``--workers 2`` on every CPU.
   The CPU each proxy spends per request (user and system, from /proc) is printed and in the
   RESULT line (``cpu_us_<target>``): when the proxy's CPU is the limit, the throughput ratio is
   the inverse of the CPU ratio. ``--before DIR`` also measures the proxy of another checkout
   (its root, e.g. ``git worktree``/``git archive`` of an older commit) in the same rounds:
   ``<mode>_vs_before`` for monolith, authenticated and shadow.
2. The real monolith (``gunicorn monolith.wsgi`` as docs/running.md runs it, on a throwaway
   PostgreSQL database that is dropped afterwards): ``GET /healthz`` and an authenticated
   ``GET /api/users/me/``, directly and through the proxy. Throughput with ``wrk -c8`` (the
   monolith's 2 workers x 4 threads) twice: with the monolith and its database backends on half
   the CPUs and wrk and the proxy on the other half, so the monolith has the same CPU whether the
   proxy is there or not (``<endpoint>_vs_direct``: what the proxy does to the monolith's
   throughput when it has CPU of its own, as a gateway in front of a service has), and with every
   process on every CPU (``<endpoint>_shared_vs_direct``: on this one small host the proxy's CPU
   is taken from the monolith's, reported as CPU per request beside it). Latency with ``wrk -c1``
   (the p50 the proxy adds). ``<endpoint>_errors`` counts that part's errors.

The machine is shared and noisy, so each target is measured in ``--rounds`` interleaved rounds
(every target once per round) and the figures are medians, printed with their spread over the
rounds (min-max); ratios are medians of the per-round ratios, each taken between runs seconds
apart. Ends with one line, ``RESULT proxy rps=... p50_ms=... p99_ms=... vs_nginx=...
auth_vs_nginx=... shadow_vs_monolith=...`` (``rps`` and the latencies: the proxy in monolith
mode, anonymous) followed by the other figures. Everything binds to 127.0.0.1 and stops by
itself; each proxy's secrets are made in a temporary var dir.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from tempfile import mkdtemp

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
WRK = shutil.which("wrk")

#: Which path of the proxy each figure exercises (every request: GET /api/ping/, 2 bytes back).
PATHS = {
    "direct": "the upstream itself, no proxy",
    "nginx": "nginx reverse proxy, no log",
    "nginx logged": "nginx reverse proxy with a JSON access log and X-Request-ID (like for like)",
    "nginx logged auth": "the same, requests carrying a Bearer token (nginx checks nothing)",
    "monolith": "ours, fast path: anonymous GET, route in monolith mode, access log on",
    "authenticated": "ours, fast path: Bearer token checked at the edge (cached), identity "
    "signed for the monolith and forwarded",
    "unlogged": "ours, fast path, STRANGLER_ACCESS_LOG=0",
    "monolith asyncio": "ours, fast path on the stock asyncio loop",
    "shadow": "ours, fast path + every GET mirrored to a second upstream on callbacks, compared",
    "2 workers": "ours, --workers 2 (on every CPU), fast path",
}
#: What is measured again on the tree given with --before.
BEFORE_MODES = ("monolith", "authenticated", "shadow")
for _name in BEFORE_MODES:
    PATHS[f"before {_name}"] = f"the --before tree, {_name} (same requests)"

SERVE_PROXY = "import sys; from strangler_proxy.cli import main; sys.exit(main(sys.argv[1:]))"
ASYNCIO_UPSTREAM = textwrap.dedent(
    """
    import asyncio, sys
    ME = b'{"id": 42, "email": "bench@example.com", "is_staff": false}'
    OK = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok"
    WHO = (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
           b"Content-Length: %d\\r\\n\\r\\n%b" % (len(ME), ME))
    class P(asyncio.Protocol):
        def connection_made(self, t): self.t, self.rest = t, b""
        def data_received(self, data):
            *heads, self.rest = (self.rest + data).split(b"\\r\\n\\r\\n")
            self.t.write(b"".join(WHO if b" /api/users/me/ " in h else OK for h in heads))
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


ME_JSON = '{"id": 42, "email": "bench@example.com", "is_staff": false}'
# The trivial upstream vouches for any token; made up for the benchmark.
TOKEN = "bench-token-0123456789abcdef0123456789"  # noqa: S105
AUTH = (f"Authorization: Bearer {TOKEN}",)

# What the proxy does for every request besides forwarding (a JSON access-log line, a request id
# passed upstream and returned), configured in nginx for a like-for-like baseline: nginx logs
# every request by default, so this is also what a user who picked it would run.
NGINX_LOG = (
    """log_format json escape=json '{"ts": $msec, "request_id": "$request_id", """
    """"method": "$request_method", "path": "$uri", "upstream": "$upstream_addr", """
    """"status": $status, "ms": $request_time, "client": "$remote_addr"}'; """
)


def nginx_conf(
    workdir: Path, port: int, upstream_port: int | None, *, logged: bool = False
) -> Path:
    """Write an nginx config: `return 200 ok` on `port`, or a reverse proxy to `upstream_port`.

    `logged`: the proxy also writes a JSON access-log line per request (buffered, as ours is) and
    sets ``X-Request-ID`` upstream and on the answer, as ours does; else it logs nothing.
    """
    log = "access_log off;"
    extra = ""
    if upstream_port is None:
        # The trivial upstream; it also tells the proxy who the benchmark's token belongs to.
        server = (
            f'listen 127.0.0.1:{port}; location / {{ return 200 "ok"; }} '
            "location = /api/users/me/ { default_type application/json; "
            f"return 200 '{ME_JSON}'; }}"
        )
        upstream = ""
    else:
        upstream = f"upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}"
        if logged:
            log = f"{NGINX_LOG}access_log {workdir}/access-{port}.log json buffer=64k flush=1s;"
            extra = (
                "proxy_set_header X-Request-ID $request_id; "
                "add_header X-Request-ID $request_id always; "
            )
        server = (
            f"listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; "
            "proxy_http_version 1.1; "
            'proxy_set_header Connection ""; proxy_set_header Host $host; '
            f"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; {extra}}}"
        )
    conf = workdir / f"nginx-{port}.conf"
    conf.write_text(
        f"worker_processes 1; daemon off; pid {workdir}/nginx-{port}.pid;\n"
        f"error_log {workdir}/error-{port}.log;\n"
        f"events {{ worker_connections 4096; }}\n"
        f"http {{ {log} keepalive_requests 1000000; {upstream} server {{ {server} }} }}\n"
    )
    return conf


def start(
    cmd: list[str], port: int, env: dict | None = None, *, log: Path | None = None,
    cpus: set[int] | None = None,
) -> subprocess.Popen:  # fmt: skip
    """Start `cmd` and wait until it listens on `port`.

    Its standard output goes to `log`; it and every thread and child it starts run on `cpus`.
    """
    out = subprocess.DEVNULL if log is None else log.open("ab")
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    try:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
            preexec_fn=pin,
        )  # fmt: skip
    finally:
        if log is not None:
            out.close()
    try:
        wait_port(port)
    except RuntimeError:
        stop(proc)  # it runs in its own session: nothing else would ever stop it
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(
    url: str, *, duration: int, connections: int, headers: tuple[str, ...] = (),
    cpus: set[int] | None = None,
) -> dict[str, float]:  # fmt: skip
    args = [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True, timeout=duration + 30,
        preexec_fn=pin,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )

    def latency(pct: str) -> float:
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
    }


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU time (user + system) the processes `pids` and their children used so far."""
    return sum(cpu_split(pids))


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """Return the (user, system) CPU seconds the processes `pids` and their children used."""
    user = system = 0
    for pid in pids:
        for member in family(pid):
            try:
                fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            user, system = user + int(fields[11]), system + int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def family(pid: int) -> list[int]:
    """Return `pid` and its children."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *map(int, children.split())]


_UNPLACED: set[int] = set()


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def place(pids: list[int], cpus: set[int]) -> None:
    """Run every thread of the processes `pids` (and of their children) on `cpus` only."""
    for pid in pids:
        for member in family(pid):
            for task in Path(f"/proc/{member}/task").glob("*"):
                try:
                    os.sched_setaffinity(int(task.name), cpus)
                except ProcessLookupError:  # the thread ended meanwhile
                    continue
                except PermissionError:  # another user's process (PostgreSQL, not as root)
                    if member not in _UNPLACED:
                        _UNPLACED.add(member)
                        print(f"  warning: cannot move process {member} to CPUs {sorted(cpus)}")


def interleaved(
    targets: dict[str, str | tuple[str, tuple[str, ...]]], *, rounds: int, duration: int,
    connections: int, headers: tuple[str, ...] = (), cpu: dict[str, list[int]] | None = None,
    arrange=None, wrk_cpus: set[int] | None = None,
) -> dict[str, list[dict[str, float]]]:  # fmt: skip
    """Run wrk on every target once per round; return each target's results, round by round.

    A target is a URL, or ``(URL, headers)`` for requests with headers of their own (else
    `headers`). `cpu`: process groups (name -> pids) whose CPU time per request is recorded for
    each run, as ``cpu_us_<name>``. `arrange`: called before every run (to place processes on
    CPUs); `wrk_cpus`: the CPUs wrk runs on (all when None). Every answer that is not 2xx and
    every socket error counts in ``errors`` (wrk itself counts 3xx as success: no target here
    answers 3xx, and ``check_answers`` makes sure before the runs).
    """
    plan = {
        name: (target, headers) if isinstance(target, str) else target
        for name, target in targets.items()
    }
    load = {"connections": connections, "cpus": wrk_cpus}
    for url, sent in plan.values():
        if arrange:
            arrange()
        wrk(url, duration=1, headers=sent, **load)  # warm pools and caches
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for turn in range(rounds):
        for name, (url, sent) in plan.items():
            if arrange:
                arrange()
            before = {group: cpu_split(pids) for group, pids in (cpu or {}).items()}
            result = wrk(url, duration=duration, headers=sent, **load)
            result["errors"] = result["non2xx"] + result["socket_errors"]
            for group, pids in (cpu or {}).items():
                user, system = (a - b for a, b in zip(cpu_split(pids), before[group], strict=True))
                served = max(result["rps"] * duration, 1)
                result[f"cpu_us_{group}"] = (user + system) * 1e6 / served
                result[f"cpu_user_us_{group}"] = user * 1e6 / served
            runs[name].append(result)
            print(
                f"  round {turn + 1} {name:<18} {result['rps']:>8.0f} req/s   "
                f"p50 {result['p50']:.3f} ms   p99 {result['p99']:.3f} ms   "
                f"errors {int(result['errors'])}",
                flush=True,
            )
    return runs


def check_answers(targets: dict[str, str | tuple[str, tuple[str, ...]]]) -> None:
    """Ask each target once: anything but 200 stops the benchmark, naming it (a 3xx, which wrk
    would count as a success, included)."""
    import urllib.error
    import urllib.request

    for name, target in targets.items():
        url, headers = (target, ()) if isinstance(target, str) else target
        request = urllib.request.Request(url)  # noqa: S310 (http://127.0.0.1 only)
        for header in headers:
            key, _, value = header.partition(": ")
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if status != 200:
            raise RuntimeError(f"{name} at {url} answered {status}, not 200")


def spread(runs: list[dict[str, float]], key: str = "rps") -> str:
    """Return ``min-max`` of `key` over the rounds."""
    values = [run[key] for run in runs]
    return f"{min(values):.0f}-{max(values):.0f}"


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def ratio(runs: dict[str, list[dict[str, float]]], top: str, bottom: str) -> float:
    """Median over rounds of top/bottom throughput, each pair measured seconds apart."""
    pairs = zip(runs[top], runs[bottom], strict=True)
    return statistics.median(a["rps"] / b["rps"] for a, b in pairs)


def summary(runs: dict[str, list[dict[str, float]]]) -> None:
    for name, results in runs.items():
        errors = sum(int(r["errors"]) for r in results)
        print(
            f"{name:<20} {median(results, 'rps'):>8.0f} req/s ({spread(results)})   "
            f"p50 {median(results, 'p50'):.3f} ms   p99 {median(results, 'p99'):.3f} ms   "
            f"errors {errors}   (median of {len(results)})"
        )


def proxy_env(
    monolith_url: str, *, var_dir: Path, root: Path = ROOT, **extra: str
) -> dict[str, str]:
    """The environment of a proxy of the tree at `root`, its secrets made in `var_dir`."""
    env = {
        **os.environ, "STRANGLER_MONOLITH_URL": monolith_url, "PYTHONPATH": str(root),
        "STRANGLER_VAR_DIR": str(var_dir), **extra,
    }  # fmt: skip
    for name in ("REDIS_URL", "STRANGLER_ADMIN_TOKEN", "STRANGLER_IDENTITY_SECRET"):
        env.pop(name, None)
    return env


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """Return (CPUs for wrk and the upstreams, CPUs for the system measured), or Nones on one.

    Split by physical core, so two hyperthreads of one core never end up on opposite sides.
    """
    allowed = os.sched_getaffinity(0)
    cores: dict[str, set[int]] = {}
    for cpu in sorted(allowed):
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_cpus_list")
        try:
            key = siblings.read_text().strip()
        except OSError:
            key = str(cpu)
        cores.setdefault(key, set()).add(cpu)
    groups = list(cores.values())
    if len(groups) < 2:
        return None, None
    half = len(groups) // 2
    return set().union(*groups[:half]), set().union(*groups[half:])


def trivial_section(workdir: Path, args, procs: list[subprocess.Popen]) -> dict[str, str]:
    # Each proxy measured (nginx or ours, one process) runs alone on its CPUs; wrk and the
    # upstreams share the others. Left to the scheduler, a Python proxy sharing a core with wrk
    # served 20k req/s and one sharing it with the upstream 30k, from one round to the next.
    load, edge = split_cpus()
    upstream_port, candidate_port = free_port(), free_port()
    if NGINX:
        for port in (upstream_port, candidate_port):
            conf = nginx_conf(workdir, port, None)
            procs.append(start([NGINX, "-c", str(conf)], port, cpus=load))
        kind = "nginx return 200"
    else:
        for port in (upstream_port, candidate_port):
            cmd = [sys.executable, "-c", ASYNCIO_UPSTREAM, str(port)]
            procs.append(start(cmd, port, cpus=load))
        kind = "asyncio protocol"
    print(
        f"1. trivial upstream: {kind} on :{upstream_port}; wrk -t1 -c{args.connections} "
        f"-d{args.duration}s, {args.rounds} interleaved rounds"
    )
    if edge:
        print(
            f"  wrk and the upstreams on CPU {sorted(load)}, each proxy measured on CPU "
            f"{sorted(edge)} (but --workers 2, on every CPU)"
        )
    targets: dict[str, int] = {"direct": upstream_port}
    pids: dict[str, list[int]] = {}  # the processes whose CPU per request is measured
    if NGINX:
        for name, logged in (("nginx", False), ("nginx logged", True)):
            port = free_port()
            conf = nginx_conf(workdir, port, upstream_port, logged=logged)
            procs.append(start([NGINX, "-c", str(conf)], port, cpus=edge))
            targets[name] = port
            pids[name] = [procs[-1].pid]
    else:
        print("nginx is not installed (apt-get install -y nginx): skipping the nginx baseline")
    routes = workdir / "shadow.toml"
    routes.write_text(
        f'[services.candidate]\nurl = "http://127.0.0.1:{candidate_port}"\n'
        'health_path = "/"\n\n'
        '[[routes]]\nname = "all"\nprefix = "/"\nmode = "shadow"\nservice = "candidate"\n'
    )
    monolith = f"http://127.0.0.1:{upstream_port}"
    roots = {"": ROOT} | ({"before ": args.before} if args.before else {})
    # name: (command arguments, environment, wrk headers); every one serves the same path.
    modes = [
        ("monolith", [], {}, ()),
        ("authenticated", [], {}, AUTH),
        ("unlogged", [], {"STRANGLER_ACCESS_LOG": "0"}, ()),
        ("monolith asyncio", [], {"STRANGLER_PROXY_LOOP": "asyncio"}, ()),
        ("shadow", ["--routes", str(routes)], {}, ()),
        ("2 workers", ["--workers", "2"], {}, ()),
    ]
    headers_of = {"direct": (), "nginx": (), "nginx logged": (), "nginx logged auth": AUTH}
    if NGINX:
        targets["nginx logged auth"] = targets["nginx logged"]
        pids["nginx logged auth"] = pids["nginx logged"]
    for label, root in roots.items():
        for name, extra, extra_env, headers in modes:
            if label and name not in BEFORE_MODES:
                continue
            port = free_port()
            cmd = [sys.executable, "-c", SERVE_PROXY, "--port", str(port), *extra]
            # The access log goes to a file, as nginx's does: writing it is part of the cost.
            log = workdir / f"proxy-{port}.log"
            cpus = None if extra[:1] == ["--workers"] else edge
            var_dir = workdir / f"var-{port}"
            env = proxy_env(monolith, var_dir=var_dir, root=root, **extra_env)
            procs.append(start(cmd, port, env, log=log, cpus=cpus))
            targets[label + name] = port
            pids[label + name] = [procs[-1].pid]
            headers_of[label + name] = headers
    urls = {
        name: (f"http://127.0.0.1:{port}/api/ping/", headers_of[name])
        for name, port in targets.items()
    }
    check_answers(urls)
    print("  paths: " + "; ".join(f"{name}: {PATHS[name]}" for name in PATHS if name in urls))
    runs = interleaved(
        urls, rounds=args.rounds, duration=args.duration, connections=args.connections,
        wrk_cpus=load, cpu=pids,
    )  # fmt: skip
    summary(runs)
    print("  CPU per request of each proxy (user + system, us), while it was the one measured:")
    cpu_fields = {}
    for name in pids:
        total = median(runs[name], f"cpu_us_{name}")
        user = median(runs[name], f"cpu_user_us_{name}")
        print(f"    {name:<24} {total:6.1f} us ({user:.1f} user + {total - user:.1f} system)")
        key = name.replace(" ", "_")
        cpu_fields[f"cpu_us_{key}"] = f"{total:.1f}"
        cpu_fields[f"cpu_user_us_{key}"] = f"{user:.1f}"
    ours = runs["monolith"]
    has_nginx = "nginx" in runs
    fields = {
        "rps": f"{median(ours, 'rps'):.0f}",
        "p50_ms": f"{median(ours, 'p50'):.3f}",
        "p99_ms": f"{median(ours, 'p99'):.3f}",
        "vs_nginx": f"{ratio(runs, 'monolith', 'nginx logged'):.3f}" if has_nginx else "skipped",
        "auth_rps": f"{median(runs['authenticated'], 'rps'):.0f}",
        "auth_vs_nginx": (
            f"{ratio(runs, 'authenticated', 'nginx logged auth'):.3f}" if has_nginx else "skipped"
        ),
        "shadow_vs_monolith": f"{ratio(runs, 'shadow', 'monolith'):.3f}",
        "vs_direct": f"{ratio(runs, 'monolith', 'direct'):.3f}",
        "unlogged_vs_nginx": (
            f"{ratio(runs, 'unlogged', 'nginx'):.3f}" if has_nginx else "skipped"
        ),
        "nginx_rps": f"{median(runs['nginx'], 'rps'):.0f}" if has_nginx else "skipped",
        "nginx_logged_rps": (
            f"{median(runs['nginx logged'], 'rps'):.0f}" if has_nginx else "skipped"
        ),
        "unlogged_rps": f"{median(runs['unlogged'], 'rps'):.0f}",
        "shadow_rps": f"{median(runs['shadow'], 'rps'):.0f}",
        "workers2_rps": f"{median(runs['2 workers'], 'rps'):.0f}",
        "asyncio_rps": f"{median(runs['monolith asyncio'], 'rps'):.0f}",
    }
    if has_nginx:
        fields["asyncio_vs_nginx"] = f"{ratio(runs, 'monolith asyncio', 'nginx logged'):.3f}"
    for name in BEFORE_MODES if args.before else ():
        fields[f"{name}_vs_before"] = f"{ratio(runs, name, 'before ' + name):.3f}"
    fields["errors"] = str(sum(int(r["errors"]) for results in runs.values() for r in results))
    fields |= cpu_fields
    print(f"shadow mode keeps {ratio(runs, 'shadow', 'monolith'):.0%} of monolith-mode throughput")
    return fields


BENCH_USER = (
    "from django.contrib.auth import get_user_model; "
    "from monolith.users.services import token_create; "
    "u = get_user_model().objects.create_user(email='bench@example.com', password='bench-pw'); "
    "print(token_create(user=u))"
)


def monolith_section(args, procs: list[subprocess.Popen]) -> dict[str, str]:
    """Measure the real monolith directly and through the proxy; return the RESULT fields."""
    import psycopg2

    admin_url = os.environ.get("STRANGLER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    name = f"strangler_bench_proxy_{os.getpid()}"
    try:
        admin = psycopg2.connect(f"{admin_url}/postgres")
    except psycopg2.Error as exc:
        print(f"2. real monolith: skipped, PostgreSQL unreachable at {admin_url}: {exc}")
        return {"monolith": "skipped"}
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            **os.environ, "DATABASE_URL": f"{admin_url}/{name}", "PYTHONPATH": str(ROOT),
            "STRANGLER_FAST_PASSWORD_HASHER": "1",
        }  # fmt: skip
        env.pop("REDIS_URL", None)
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT, timeout=300)
        token = subprocess.run(
            [*manage, "shell", "-c", BENCH_USER], env=env, check=True, cwd=ROOT, timeout=60,
            capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
        mono_port, proxy_port = free_port(), free_port()
        procs.append(monolith := start(
            [gunicorn or "gunicorn", "monolith.wsgi", "--bind", f"127.0.0.1:{mono_port}",
             "--workers", "2", "--threads", "4", "--graceful-timeout", "5",
             "--access-logfile", "-", "--no-control-socket"],
            mono_port, env,
        ))  # fmt: skip
        procs.append(
            proxy := start(
                [sys.executable, "-c", SERVE_PROXY, "--port", str(proxy_port)],
                proxy_port,
                proxy_env(f"http://127.0.0.1:{mono_port}", var_dir=Path(mkdtemp())),
            )
        )
        groups = {"monolith": [monolith.pid], "proxy": [proxy.pid]}
        cpus = sorted(os.sched_getaffinity(0))
        own, edge = split_cpus()

        def backends() -> list[int]:
            """The PostgreSQL backends serving the monolith (only those of our database)."""
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                    "pg_backend_pid()", (name,),
                )  # fmt: skip
                pids = [pid for (pid,) in cur.fetchall()]
            # Only processes of this host's PostgreSQL (not pids of another pid namespace).
            return [pid for pid in pids if _command(pid).startswith("postgres")]

        def isolated() -> None:  # the monolith and its database on `own`, the rest on `edge`
            place([monolith.pid, *backends()], own)
            place([proxy.pid], edge)

        def shared() -> None:  # everything on every CPU, as processes start
            place([monolith.pid, *backends(), proxy.pid], set(cpus))

        print(
            f"2. real monolith: gunicorn monolith.wsgi (2 workers x 4 threads) on :{mono_port}; "
            f"wrk -t1 -d{args.duration}s, {max(args.rounds, 5)} interleaved rounds"
        )
        fields: dict[str, str] = {}
        auth = (f"Authorization: Bearer {token}",)
        rounds = max(args.rounds, 5)  # Django answers vary more than nginx: more rounds
        for label, path, headers in (("healthz", "/healthz", ()), ("me", "/api/users/me/", auth)):
            urls = {
                f"{label} direct": f"http://127.0.0.1:{mono_port}{path}",
                f"{label} proxy": f"http://127.0.0.1:{proxy_port}{path}",
            }
            load = {"rounds": rounds, "duration": args.duration, "headers": headers}
            if edge:
                print(
                    f"  {path}: throughput with 8 connections, the monolith and its database "
                    f"backends on CPU {sorted(own)}, wrk and the proxy on CPU {sorted(edge)}"
                )
                apart = interleaved(urls, connections=8, arrange=isolated, wrk_cpus=edge, **load)
                summary(apart)
                fields[f"{label}_direct_rps"] = f"{median(apart[f'{label} direct'], 'rps'):.0f}"
                fields[f"{label}_proxy_rps"] = f"{median(apart[f'{label} proxy'], 'rps'):.0f}"
                fields[f"{label}_vs_direct"] = (
                    f"{ratio(apart, f'{label} proxy', f'{label} direct'):.3f}"
                )
            print(f"  {path}: throughput with 8 connections, every process on every CPU")
            runs = interleaved(urls, connections=8, cpu=groups, arrange=shared, **load)
            summary(runs)
            print(f"  {path}: latency with 1 connection (one request at a time)")
            single = interleaved(urls, connections=1, arrange=shared, **load)
            summary(single)
            direct, proxied = single[f"{label} direct"], single[f"{label} proxy"]
            added = statistics.median(
                p["p50"] - d["p50"] for p, d in zip(proxied, direct, strict=True)
            )
            shared_ratio = f"{ratio(runs, f'{label} proxy', f'{label} direct'):.3f}"
            if not edge:  # one CPU: the shared figures are the only ones
                fields[f"{label}_direct_rps"] = f"{median(runs[f'{label} direct'], 'rps'):.0f}"
                fields[f"{label}_proxy_rps"] = f"{median(runs[f'{label} proxy'], 'rps'):.0f}"
                fields[f"{label}_vs_direct"] = shared_ratio
            fields[f"{label}_shared_vs_direct"] = shared_ratio
            # What the proxy costs when the host is CPU-bound (as in the shared runs): its CPU
            # per request against the monolith's, measured while proxying.
            through = runs[f"{label} proxy"]
            mono_cpu, proxy_cpu = (
                median(through, "cpu_us_monolith"),
                median(through, "cpu_us_proxy"),
            )
            print(
                f"  CPU per request while proxying: monolith {mono_cpu:.0f} us, proxy "
                f"{proxy_cpu:.0f} us -> on a CPU-bound host the proxy keeps "
                f"{mono_cpu / (mono_cpu + proxy_cpu):.0%} of the throughput"
            )
            fields[f"{label}_monolith_cpu_us"] = f"{mono_cpu:.0f}"
            fields[f"{label}_proxy_cpu_us"] = f"{proxy_cpu:.0f}"
            fields[f"{label}_cpu_bound_ratio"] = f"{mono_cpu / (mono_cpu + proxy_cpu):.3f}"
            fields[f"{label}_p50_direct_ms"] = f"{median(direct, 'p50'):.3f}"
            fields[f"{label}_p50_added_ms"] = f"{added:.3f}"
            bad = sum(r["errors"] for group in (runs, single) for rs in group.values() for r in rs)
            fields[f"{label}_errors"] = str(int(bad))
        return fields
    finally:
        for proc in procs[-2:]:
            stop(proc)
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per target")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--no-monolith", action="store_true", help="skip the real monolith")
    parser.add_argument(
        "--before", type=Path, help="another checkout (its root) whose proxy is measured too"
    )
    args = parser.parse_args()
    if WRK is None:
        print("wrk is not installed (apt-get install -y wrk); cannot benchmark", file=sys.stderr)
        return 1
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            fields = trivial_section(Path(tmp), args, procs)
            for proc in procs:
                stop(proc)
            procs.clear()
            if not args.no_monolith:
                fields |= monolith_section(args, procs)
        finally:
            for proc in procs:
                stop(proc)
    print("RESULT proxy " + " ".join(f"{key}={value}" for key, value in fields.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
