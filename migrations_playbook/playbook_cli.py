"""`strangler playbook list|status|plan N|apply N|verify N|rollback N` (and `table`).

    strangler playbook list                       the steps, from migrations_playbook/steps/
    strangler playbook status                     where each route, service and backfill stands
    strangler playbook plan 1 [--auto] [--to M]   exactly what `apply` would do now
    strangler playbook apply 1 [--auto] [--to M] [--dwell S] [--interval S] [--no-rollback]
    strangler playbook verify 1                   every gate, with its figure and limit
    strangler playbook rollback 1                 traffic back to the monolith, no lost write
    strangler playbook table --step 1 --output F  write the proxy's table for a step (strangler up)
    strangler playbook diff 1 2 [--json]          what changes from step 1 to step 2, for review

Common options: `--proxy URL` (default $STRANGLER_PROXY_URL or http://127.0.0.1:8000) and
`--var-dir DIR` (default $STRANGLER_VAR_DIR or ./var; the playbook's state lives there).
Exit status: 0 done, 1 a gate failed or the step could not go on, 2 bad arguments or step files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .admin import AdminCallError, ProxyAdmin, default_proxy_url
from .engine import Engine, PlaybookError
from .state import StateBusy
from .stepdiff import diff_lines, steps_diff
from .stepfile import STEPS_DIR, StepFileError, steps_load
from .table import table_write


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--proxy", metavar="URL", help="the proxy (default: $STRANGLER_PROXY_URL or :8000)"
    )
    common.add_argument(
        "--var-dir",
        metavar="DIR",
        help="where the playbook keeps its state (default: $STRANGLER_VAR_DIR or ./var)",
    )
    common.add_argument("--steps-dir", metavar="DIR", help=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="strangler playbook", description="Walk the migration one verified step at a time."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", parents=[common], help="list the steps")
    sub.add_parser("status", parents=[common], help="where each route and service stands")
    for name, text in (
        ("plan", "print what apply would do"),
        ("apply", "apply a step (resumable, idempotent)"),
    ):
        command = sub.add_parser(name, parents=[common], help=text)
        command.add_argument("step", type=int, metavar="N")
        command.add_argument(
            "--auto",
            action="store_true",
            help="walk every stage, watching each for its dwell time; roll back on a failure",
        )
        command.add_argument("--to", metavar="MODE", help="stop at this rollout stage")
        command.add_argument(
            "--dwell",
            type=float,
            metavar="SECONDS",
            help="watch each stage this long instead of its dwell_s",
        )
        command.add_argument(
            "--interval", type=float, default=5.0, metavar="SECONDS", help="watch period (5)"
        )
        command.add_argument(
            "--no-rollback",
            action="store_true",
            help="with --auto: stop on a failed gate instead of rolling back",
        )
    for name, text in (
        ("verify", "evaluate every gate of a step"),
        ("rollback", "return a step's routes to the monolith"),
    ):
        command = sub.add_parser(name, parents=[common], help=text)
        command.add_argument("step", type=int, metavar="N")
    diff = sub.add_parser(
        "diff", parents=[common], help="what changes between two steps (review before apply)"
    )
    diff.add_argument("before", type=int, metavar="A")
    diff.add_argument("after", type=int, metavar="B")
    diff.add_argument("--json", action="store_true", help="print the changes as JSON")
    table = sub.add_parser("table", parents=[common], help="write the proxy's table for a step")
    table.add_argument("--step", type=int, required=True, metavar="N")
    table.add_argument("--output", required=True, metavar="FILE")
    table.add_argument(
        "--service-url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="where a service listens (default http://127.0.0.1:<its port>)",
    )
    return parser


def _say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run `strangler playbook ...`; return the exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ)
    var_dir = Path(args.var_dir or environ.get("STRANGLER_VAR_DIR") or "var").resolve()
    try:
        steps = steps_load(Path(args.steps_dir) if args.steps_dir else STEPS_DIR)
    except StepFileError as exc:
        print(f"strangler playbook: invalid step file:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "list":
        for number, step in steps.items():
            stages = " -> ".join(s.mode for s in step.rollout) or "nothing moves"
            print(f"{number}  {step.name:<20} {step.title}  [{stages}]  {step.chapter}")
        return 0
    if args.command == "diff":
        try:
            changes = steps_diff(steps, args.before, args.after)
        except KeyError as exc:
            print(f"strangler playbook diff: {exc.args[0]}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps([c.as_dict() for c in changes], indent=2))
        else:
            print("\n".join(diff_lines(changes, args.before, args.after)))
        return 0
    if args.command == "table":
        if args.step not in steps:
            print(f"strangler playbook: unknown step {args.step}", file=sys.stderr)
            return 2
        urls = dict(item.split("=", 1) for item in args.service_url if "=" in item)
        table = table_write(
            path=Path(args.output), steps=steps, upto=args.step, var_dir=var_dir,
            service_urls=urls,
        )  # fmt: skip
        modes = ", ".join(f"{r['name']}={r['mode']}" for r in table["routes"])
        print(f"route table for step {args.step} written to {args.output}: {modes}")
        return 0
    proxy = ProxyAdmin(args.proxy or default_proxy_url(environ), environ=environ, var_dir=var_dir)
    engine = Engine(steps=steps, proxy=proxy, var_dir=var_dir, environ=environ, say=_say)
    try:
        if args.command == "status":
            for line in engine.status():
                print(line)
            return 0
        if args.command == "plan":
            actions = engine.plan(args.step, to=args.to, auto=args.auto)
            if not actions:
                print(f"step {args.step}: nothing to do")
            for position, action in enumerate(actions, 1):
                print(f"{position}. {action.describe()}")
            return 0
        if args.command == "apply":
            ok = engine.apply(
                args.step,
                to=args.to,
                auto=args.auto,
                dwell=args.dwell,
                interval=args.interval,
                rollback_on_failure=args.auto and not args.no_rollback,
            )
            return 0 if ok else 1
        if args.command == "verify":
            return 0 if engine.verify(args.step) else 1
        if args.command == "rollback":
            return 0 if engine.rollback(args.step) else 1
    except (PlaybookError, AdminCallError, StateBusy) as exc:
        print(f"strangler playbook: {exc}", file=sys.stderr)
        return 1
    return 2
