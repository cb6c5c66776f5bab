"""`strangler compare`: is B as good as A? The contract suite on both, side by side.

    strangler compare --before 0 --after 1            # starts each step's stack in turn
    strangler compare --against URL_A URL_B           # two deployments already running
    strangler compare --against URL_A URL_B --replay traffic.jsonl [--save-cases DIR]

Exit status: 0 no regression (no mismatch for --replay), 1 a regression (a mismatch), 2 bad
arguments, 3 a side could not be run (a stack that never became ready, a suite that crashed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from migrations_playbook.stepfile import steps_load

from . import evidence as ev
from .report import html_report, side_line, text_table
from .results import Comparison, RunResult, comparison_build
from .suite import DEFAULT_TESTS, Staff, suite_run

OK, REGRESSED, USAGE, BROKEN = 0, 1, 2, 3


class Progress:
    """Say what compare is doing, on stderr: one line per phase, a live count per test run."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.live = stream.isatty()
        self.last_step: dict[str, int] = {}
        self.shown: dict[str, tuple[int, int, int]] = {}
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(f"compare | {time.monotonic() - self.started:6.1f}s  {text}\n")
        self.stream.flush()

    def tests(self, label: str, done: int, total: int, failed: int) -> None:
        if not total or self.shown.get(label) == (done, total, failed):
            return  # the final count is reported twice: while polling and at the end
        self.shown[label] = (done, total, failed)
        text = f"{label}: {done}/{total} tests, {failed} failed"
        if self.live:
            self.stream.write(f"\r\033[Kcompare | {time.monotonic() - self.started:6.1f}s  {text}")
            self.stream.flush()
            if done == total:
                self.stream.write("\n")
            return
        # Not a terminal (CI logs): a line at every quarter, not one per test.
        quarter = done * 4 // total
        if quarter > self.last_step.get(label, -1):
            self.last_step[label] = quarter
            self.say(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler compare",
        description="Run the contract suite before and after a step (or against two "
        "deployments) and compare every test's outcome; exit 1 on any regression.",
    )
    sides = parser.add_mutually_exclusive_group(required=True)
    sides.add_argument("--before", type=int, metavar="A", help="playbook step of side A")
    sides.add_argument(
        "--against",
        nargs=2,
        metavar=("URL_A", "URL_B"),
        help="compare two running deployments instead of starting stacks",
    )
    parser.add_argument("--after", type=int, metavar="B", help="playbook step of side B")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where the JUnit XML, logs and report.html go "
        "(default: var/reports/compare-<timestamp>/)",
    )
    parser.add_argument(
        "--tests",
        action="append",
        metavar="PATH",
        help="test paths or node ids to run (repeatable; default: tests/contract)",
    )
    parser.add_argument(
        "--no-retry", action="store_true", help="do not retry failures (no flaky detection)"
    )
    parser.add_argument(
        "--no-shadow",
        action="store_true",
        help="with --before/--after: skip the shadow run that gives the moved routes' diff figures",
    )
    parser.add_argument(
        "--only-changes", action="store_true", help="print only the tests whose verdict is not same"
    )
    parser.add_argument(
        "--staff",
        nargs=2,
        metavar=("EMAIL", "PASSWORD"),
        help="with --against: a staff account of both deployments (default: "
        "$STRANGLER_CONTRACT_STAFF_EMAIL / _PASSWORD; staff-only tests skip without one)",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=120.0, metavar="S", help="per stack (default 120)"
    )
    parser.add_argument(
        "--suite-timeout", type=float, default=600.0, metavar="S", help="per run (default 600)"
    )
    parser.add_argument(
        "--replay", metavar="FILE", help="with --against: replay recorded requests (JSONL)"
    )
    parser.add_argument(
        "--save-cases", metavar="DIR", help="with --replay: write each mismatch as a contract case"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="with --replay: send this header instead of the recorded one (repeatable), e.g. "
        "'Authorization: Bearer <token>' for recordings whose credentials the proxy redacted",
    )
    return parser


def _out_dir(raw: str | None) -> Path:
    if raw:
        return Path(raw)
    return Path("var") / "reports" / time.strftime("compare-%Y%m%d-%H%M%S")


def main(argv: list[str] | None = None) -> int:
    """Run `strangler compare`; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.before is not None and args.after is None:
        parser.error("--before needs --after")
    if args.against and args.after is not None:
        parser.error("--after goes with --before, not with --against")
    if (args.replay or args.save_cases) and not args.against:
        parser.error("--replay and --save-cases need --against URL_A URL_B")
    if args.save_cases and not args.replay:
        parser.error("--save-cases needs --replay FILE")
    out = _out_dir(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(sys.stderr)
    if args.replay:
        from .replay_cli import replay_main

        return replay_main(args, out, progress)
    tests = tuple(args.tests or DEFAULT_TESTS)
    try:
        if args.against:
            comparison, evidence = _against(args, out, tests, progress)
        else:
            comparison, evidence = _stacks(args, out, tests, progress)
    except ValueError as exc:  # an unknown step, an invalid step file
        print(f"strangler compare: {exc}", file=sys.stderr)
        return USAGE
    return _finish(comparison, evidence, out, args, progress)


def _staff(args: argparse.Namespace) -> Staff | None:
    import os

    if args.staff:
        return Staff(*args.staff)
    email = os.environ.get("STRANGLER_CONTRACT_STAFF_EMAIL")
    password = os.environ.get("STRANGLER_CONTRACT_STAFF_PASSWORD")
    return Staff(email, password) if email and password else None


def _run(label: str, url: str, staff, args, out: Path, tests, progress: Progress) -> RunResult:
    progress.say(f"{label}: contract suite against {url}")
    run = suite_run(
        label=label,
        base_url=url,
        out_dir=out,
        tests=tests,
        staff=staff,
        retry=not args.no_retry,
        timeout=args.suite_timeout,
        progress=progress.tests,
    )
    progress.say(side_line(run))
    return run


def _against(args, out: Path, tests, progress: Progress) -> tuple[Comparison, ev.Evidence]:
    url_a, url_b = (u.rstrip("/") for u in args.against)
    staff = _staff(args)
    before = _run("before", url_a, staff, args, out, tests, progress)
    after = _run("after", url_b, staff, args, out, tests, progress)
    evidence = ev.Evidence()
    if staff is None:
        evidence.notes.append(
            "no staff account given (--staff or STRANGLER_CONTRACT_STAFF_*): "
            "the staff-only tests were skipped on both sides"
        )
    table_a, table_b = ev.proxy_routes(url_a), ev.proxy_routes(url_b)
    if table_a is None or table_b is None:
        missing = " and ".join(u for u, t in ((url_a, table_a), (url_b, table_b)) if t is None)
        evidence.notes.append(
            f"moved routes unknown: {missing} has no proxy admin API (/_strangler/routes)"
        )
    else:
        evidence.routes = ev.routes_moved_by_tables(table_a, table_b)
    for route in evidence.routes:
        route.shadow, route.shadow_note = ev.shadow_figures(url_b, route.name)
        if route.shadow is None:
            figures, _ = ev.shadow_figures(url_a, route.name)
            if figures is not None:
                route.shadow, route.shadow_note = figures, ""
        route.reconcile_note = (
            "not run: with --against, compare does not know the deployments' databases; run "
            "the step's reconcile command (e.g. manage.py payments_reconcile) there"
        )
    return comparison_build(before=before, after=after), evidence


def _stacks(args, out: Path, tests, progress: Progress) -> tuple[Comparison, ev.Evidence]:
    from migrations_playbook.processes import processes_for

    from .stack import StackFailed, stack_started

    # Both steps are checked before anything starts: a typo must not cost a whole first side.
    processes_for(args.before)
    processes_for(args.after)
    steps = steps_load()
    evidence = ev.Evidence()
    evidence.routes = ev.routes_moved_by_steps(steps, args.before, args.after)
    moved_side = max(args.before, args.after)
    runs: dict[str, RunResult] = {}
    for label, step in (("before", args.before), ("after", args.after)):
        try:
            with stack_started(
                step=step,
                label=label,
                out_dir=out,
                ready_timeout=args.ready_timeout,
                say=progress.say,
            ) as stack:
                if step == moved_side and evidence.routes and not args.no_shadow:
                    _shadow_pass(stack, label, evidence, args, out, tests, progress)
                runs[label] = _run(label, stack.url, stack.staff, args, out, tests, progress)
                runs[label].target = f"step {step} at {stack.url}"
                death = stack.check_alive()
                if death:
                    # Its verdicts would blame the code for a crash of the stack: no verdicts.
                    runs[label].error = f"{death} (see {stack.log})"
                    progress.say(f"{label}: {death}")
                if step == moved_side:
                    _reconcile(stack, steps, evidence, progress)
            evidence.notes += [f"{label} (step {step}): {note}" for note in stack.notes]
        except StackFailed as exc:
            progress.say(f"{label}: the stack of step {step} failed: {str(exc).splitlines()[0]}")
            runs[label] = RunResult(label=label, target=f"step {step}", error=str(exc))
    if args.no_shadow:
        for route in evidence.routes:
            route.shadow_note = "shadow run skipped (--no-shadow)"
    return comparison_build(before=runs["before"], after=runs["after"]), evidence


def _shadow_pass(stack, label, evidence: ev.Evidence, args, out, tests, progress) -> None:
    """Run the suite once with the moved routes in shadow mode; keep the proxy's figures."""
    final = {
        route.name: route.after_mode if label == "after" else route.before_mode
        for route in evidence.routes
    }
    # The stack's proxy has the token its runner made in the stack's var dir.
    token = ev.admin_token(environ=stack.env, var_dir=stack.var_dir)
    for route in evidence.routes:
        problem = ev.set_route_mode(stack.url, route.name, "shadow", token=token)
        if problem:
            route.shadow_note = f"no shadow run: {problem}"
            return
    progress.say(f"{label}: shadow run (moved routes in shadow mode) for the proxy's diff figures")
    run = suite_run(
        label=f"{label}-shadow",
        base_url=stack.url,
        out_dir=out,
        tests=tests,
        staff=stack.staff,
        retry=False,
        timeout=args.suite_timeout,
        progress=progress.tests,
    )
    evidence.shadow_run = {
        "tests": len(run.tests),
        "seconds": run.duration,
        "junit": [Path(p).name for p in run.junit],
    }
    for route in evidence.routes:
        route.shadow, route.shadow_note = ev.shadow_figures(stack.url, route.name, token=token)
        problem = ev.set_route_mode(stack.url, route.name, final[route.name], token=token)
        if problem:
            evidence.notes.append(
                f"could not put {route.name} back to {final[route.name]}: {problem}"
            )


def _reconcile(stack, steps, evidence: ev.Evidence, progress: Progress) -> None:
    for route in evidence.routes:
        step = steps.get(route.step) if route.step is not None else None
        if step is None:
            route.reconcile_note = "no step data for this route"
            continue
        route.reconcile, route.reconcile_note = ev.reconcile_run(
            step=step, env=stack.env, var_dir=stack.var_dir
        )
        verdict = (
            ("exact" if route.reconcile.get("exact") else "DIFFERENT")
            if route.reconcile
            else route.reconcile_note
        )
        progress.say(f"reconcile of {route.name}: {verdict}")


def _finish(
    comparison: Comparison, evidence: ev.Evidence, out: Path, args, progress: Progress
) -> int:
    title = (
        f"strangler compare: {args.against[0]} vs {args.against[1]}"
        if args.against
        else f"strangler compare: step {args.before} vs step {args.after}"
    )
    report = out / "report.html"
    report.write_text(html_report(comparison, evidence, title=title))
    (out / "summary.json").write_text(json.dumps(_summary(comparison, evidence), indent=2) + "\n")
    print(text_table(comparison, only_changes=args.only_changes))
    print()
    for run in (comparison.before, comparison.after):
        print(side_line(run))
    for route in evidence.routes:
        print(_route_line(route))
    print(f"report: {report}")
    print(comparison.summary())
    if comparison.before.error or comparison.after.error:
        for run in (comparison.before, comparison.after):
            if run.error:
                print(f"{run.label} could not be run:\n{run.error}", file=sys.stderr)
        return BROKEN
    return REGRESSED if comparison.regressed else OK


def _route_line(route: ev.MovedRoute) -> str:
    shadow = (
        f"shadow {route.shadow.get('diffs', 0)}/{route.shadow.get('compared', 0)} differed"
        if route.shadow
        else route.shadow_note
    )
    reconcile = (
        ("reconcile exact" if route.reconcile.get("exact") else "reconcile DIFFERENT")
        if route.reconcile
        else route.reconcile_note
    )
    return f"route {route.name}: {route.before_mode} -> {route.after_mode}; {shadow}; {reconcile}"


def _summary(comparison: Comparison, evidence: ev.Evidence) -> dict:
    return {
        "summary": comparison.summary(),
        "counts": dict(comparison.counts()),
        "sides": [
            {
                "label": run.label,
                "target": run.target,
                "seconds": run.duration,
                "outcomes": dict(run.counts()),
                "junit": run.junit,
                "error": run.error,
            }
            for run in (comparison.before, comparison.after)
        ],
        "tests": [
            {
                "test": row.test_id,
                "verdict": row.verdict,
                "before": row.before.outcome if row.before else None,
                "after": row.after.outcome if row.after else None,
            }
            for row in comparison.rows
        ],
        "evidence": evidence.as_dict(),
    }
