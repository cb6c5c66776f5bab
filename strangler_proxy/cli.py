"""``strangler proxy``: run the gateway, or talk to a running one's admin API.

    strangler proxy [--routes FILE] [--host H] [--port P] [--workers N]
    strangler proxy check FILE                 validate a route table file
    strangler proxy routes [set ROUTE MODE [SERVICE]]   ``strangler routes`` (routes_cli.py)

With no arguments it serves the step-0 table on 127.0.0.1:8000 (STRANGLER_PROXY_PORT): every path
to the monolith at STRANGLER_MONOLITH_URL (http://127.0.0.1:8001).

Its admin API is closed from the start: with STRANGLER_ADMIN_TOKEN unset it uses (or makes up)
the token in ``$STRANGLER_VAR_DIR/admin-token``, which ``strangler routes`` and the other
commands find there too; the identity keys likewise (``identity-secret``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import sys
import tempfile

from . import routes_cli
from .config import ConfigError, ProxyConfig, admin_tokens_load, identity_secret_load
from .routes import RouteTableError, table_from_file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler proxy", description="Run the strangler routing gateway."
    )
    parser.add_argument(
        "--routes", help="route table file (.toml/.yaml); default: STRANGLER_ROUTES or step 0"
    )
    parser.add_argument("--host", help="listen address (STRANGLER_PROXY_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (STRANGLER_PROXY_PORT, 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    return parser


def _check(args: list[str], monolith_url: str) -> int:
    if len(args) != 1:
        print("usage: strangler proxy check FILE", file=sys.stderr)
        return 2
    try:
        table = table_from_file(args[0], monolith_url=monolith_url)
    except RouteTableError as exc:
        for problem in exc.problems:
            print(f"invalid: {problem}", file=sys.stderr)
        return 1
    print(f"ok: {len(table.routes)} routes, {len(table.services)} services")
    return 0


async def _serve(config: ProxyConfig, *, reuse_port: bool) -> None:
    from .gateway import Gateway

    gateway = Gateway(config=config)
    port = await gateway.start(reuse_port=reuse_port)
    logging.getLogger("strangler_proxy").info(
        "strangler proxy on http://%s:%s (table v%s, %d routes, pid %s)",
        config.host, port, gateway.table.version, len(gateway.table.routes), os.getpid(),
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.close()


def _run(config: ProxyConfig, *, reuse_port: bool) -> None:
    # uvloop when installed: with the proxy's own protocol-level server it served 7-15% more
    # requests per second than the stock loop (docs/proxy.md, "Performance"; it was the other
    # way round while aiohttp's server was in front). STRANGLER_PROXY_LOOP=asyncio opts out.
    choice = os.environ.get("STRANGLER_PROXY_LOOP", "auto")
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            uvloop.run(_serve(config, reuse_port=reuse_port))
            return
    asyncio.run(_serve(config, reuse_port=reuse_port))


def main(argv: list[str]) -> int:
    """Run `strangler proxy ...`; return the exit status."""
    if argv and argv[0] == "routes":
        return routes_cli.main(argv[1:])
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        config = ProxyConfig.from_env()
    except ConfigError as exc:
        print(f"strangler proxy: {exc}", file=sys.stderr)
        return 2
    if argv and argv[0] == "check":
        return _check(argv[1:], config.monolith_url)
    args = _parser().parse_args(argv)
    overrides = {
        k: v
        for k, v in {"routes_file": args.routes, "host": args.host, "port": args.port}.items()
        if v is not None
    }
    config = dataclasses.replace(config, **overrides)
    try:
        token, holders = admin_tokens_load(config)
        config = dataclasses.replace(
            config, admin_token=token, admin_holders=holders,
            identity_secret=identity_secret_load(config),
        )  # fmt: skip
        config.identity_keys()
    except ConfigError as exc:
        print(f"strangler proxy: {exc}", file=sys.stderr)
        return 2
    where = "STRANGLER_ADMIN_TOKEN" if os.environ.get("STRANGLER_ADMIN_TOKEN") else "admin-token"
    logging.getLogger("strangler_proxy").info(
        "admin API: Bearer token from %s (var dir %s)%s", where,
        os.environ.get("STRANGLER_VAR_DIR") or "./var",
        f", and {len(holders)} named token(s)" if holders else "",
    )  # fmt: skip
    if config.routes_file:
        code = _check([config.routes_file], config.monolith_url)
        if code:
            return code
    if args.workers <= 1:
        _run(config, reuse_port=False)
        return 0
    # The workers share one route table through a state file (strangler_proxy/sharing.py).
    state_dir = tempfile.mkdtemp(prefix="strangler-proxy-")
    config = dataclasses.replace(config, shared_state=os.path.join(state_dir, "routes.json"))
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                _run(config, reuse_port=True)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum, _frame):
        for child in children:
            os.kill(child, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    status = 0
    try:
        for child in children:
            _, code = os.waitpid(child, 0)
            status = status or os.waitstatus_to_exitcode(code)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return status
