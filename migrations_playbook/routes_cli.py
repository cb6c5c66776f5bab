"""`strangler routes` (list the proxy's routes) and `strangler routes set ROUTE MODE [SERVICE]`.

    strangler routes [--proxy URL]
    strangler routes set payments canary:10 [--proxy URL]

The same admin API as the playbook (`--proxy`, default $STRANGLER_PROXY_URL or :8000). A manual
switch is recorded by the proxy's change log; the playbook reads live modes, so `apply` resumes
from wherever a route was put by hand.
"""

from __future__ import annotations

import argparse
import os
import sys

from .admin import ProxyAdmin, ProxyError, default_proxy_url
from .stepfile import mode_problem


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler routes", description="List or switch the proxy's routes."
    )
    parser.add_argument(
        "--proxy",
        "--url",
        dest="proxy",
        metavar="URL",
        help="the proxy (default: $STRANGLER_PROXY_URL)",
    )
    parser.add_argument("action", nargs="?", choices=["set"], help="set ROUTE MODE [SERVICE]")
    parser.add_argument("args", nargs="*", metavar="ROUTE MODE [SERVICE]")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `strangler routes ...`; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    proxy = ProxyAdmin(args.proxy or default_proxy_url(dict(os.environ)))  # token: env or var dir
    try:
        if args.action is None:
            if args.args:
                parser.error("unexpected arguments; did you mean `routes set ROUTE MODE`?")
            table = proxy.routes()
            print(f"route table v{table['version']} at {proxy.base_url}")
            for route in table["routes"]:
                where = route.get("path") or f"{route.get('prefix')}*"
                print(f"  {route['name']:<16} {route['mode']:<12} {route['service']:<12} {where}")
            return 0
        if len(args.args) not in (2, 3):
            parser.error("usage: strangler routes set ROUTE MODE [SERVICE]")
        route, mode, *service = args.args
        problem = mode_problem(mode)
        if problem:
            parser.error(f"MODE {problem}")
        changed = proxy.route_set(route, mode=mode, service=service[0] if service else None)
        print(f"{changed['name']}: now {changed['mode']} (service {changed['service']})")
        return 0
    except ProxyError as exc:
        print(f"strangler routes: {exc}", file=sys.stderr)
        return 1
