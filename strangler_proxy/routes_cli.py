"""``strangler routes``: list the routes of a running proxy, or switch one. The one routes command.

    strangler routes [--proxy URL]                          the table in force
    strangler routes set ROUTE MODE [SERVICE] [--proxy URL]  switch one route (atomic)

``strangler proxy routes ...`` is this same command. It talks to the admin API
(``strangler_proxy.admin_client``: ``--proxy``, or its alias ``--url``, default
``$STRANGLER_PROXY_URL``, else http://127.0.0.1:8000), with the admin token from
``STRANGLER_ADMIN_TOKEN``, else ``$STRANGLER_VAR_DIR/admin-token``. MODE is checked first with the
proxy's own parser (modes.py): a mode the proxy would refuse is refused here, naming it. A switch
is recorded in the proxy's change log (``claimed_actor``: ``cli:$USER``); the playbook reads live
modes, so ``strangler playbook apply`` resumes from wherever a route was put by hand.

Exit status: 0 done, 1 refused (a mode, a route, an unreachable proxy), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys

from .admin_client import AdminCallError, ProxyAdmin, default_proxy_url
from .modes import mode_problem


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler routes", description="List or switch the proxy's routes."
    )
    parser.add_argument(
        "--proxy", "--url", dest="proxy", metavar="URL",
        help="the proxy (default: $STRANGLER_PROXY_URL, else http://127.0.0.1:8000)",
    )  # fmt: skip
    parser.add_argument("action", nargs="?", choices=["set"], help="set ROUTE MODE [SERVICE]")
    parser.add_argument("args", nargs="*", metavar="ROUTE MODE [SERVICE]")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``strangler routes ...``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.action is None and args.args:
        parser.error("unexpected arguments; did you mean `routes set ROUTE MODE [SERVICE]`?")
    if args.action == "set" and len(args.args) not in (2, 3):
        parser.error("usage: strangler routes set ROUTE MODE [SERVICE]")
    proxy = ProxyAdmin(args.proxy or default_proxy_url())
    try:
        if args.action is None:
            table = proxy.routes()
            print(f"route table v{table['version']} at {proxy.base_url}")
            for route in table["routes"]:
                where = route.get("path") or f"{route.get('prefix')}*"
                methods = ",".join(route.get("methods") or ["*"])
                name, mode, service = route["name"], route["mode"], route["service"]
                print(f"  {name:<24} {mode:<12} {service:<12} {methods:<10} {where}")
            return 0
        name, mode, *service = args.args
        problem = mode_problem(mode)
        if problem:
            print(f"strangler routes: MODE: {problem}", file=sys.stderr)
            return 1
        changed = proxy.route_set(name, mode=mode, service=service[0] if service else None)
    except AdminCallError as exc:
        print(f"strangler routes: {exc}", file=sys.stderr)
        return 1
    print(f"{changed['name']}: mode {changed['mode']} (service {changed['service']})")
    return 0
