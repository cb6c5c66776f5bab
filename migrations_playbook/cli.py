"""The `strangler` command line: one entry point, each subcommand in the module that owns it.

    strangler up [--step N]      the whole stack for a step, in the foreground
    strangler proxy [...]        the routing gateway alone
    strangler playbook ...       list|status|plan N|apply N|verify N|rollback N
    strangler routes [set R M]   list the proxy's routes, or switch one
    strangler demo [--exit]      the migration walk-through on the embedded default, under load
    strangler secrets            write the secrets compose.yaml requires into .env

A subcommand module exposes ``main(argv: list[str]) -> int``; it is imported only when used, so
`strangler proxy` does not load Django and `strangler up` does not load aiohttp.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "up": ("migrations_playbook.runner", "start every process a playbook step needs"),
    "proxy": ("strangler_proxy.cli", "run the routing gateway"),
    "playbook": ("migrations_playbook.playbook_cli", "plan, apply, verify, roll back a step"),
    "routes": ("strangler_proxy.routes_cli", "list the proxy's routes, or set one's mode"),
    "compare": ("migrations_playbook.compare.cli", "contract suite before vs after, side by side"),
    "demo": ("migrations_playbook.demo", "the migration walk-through, on the embedded default"),
    "secrets": ("migrations_playbook.compose_secrets", "write compose.yaml's secrets into .env"),
}


def _usage() -> str:
    lines = ["usage: strangler <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "Run `strangler <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the subcommand named first in `argv`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(
            f"strangler: unknown command {name!r}; expected one of: {', '.join(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
