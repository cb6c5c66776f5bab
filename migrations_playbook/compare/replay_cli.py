"""`strangler compare --against URL_A URL_B --replay FILE [--save-cases DIR]`."""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections import Counter
from pathlib import Path

from .replay import (
    ReplayFileError,
    cases_save,
    headers_parse,
    record_with_headers,
    replay_load,
    replay_run,
    rules_from_proxies,
)
from .report import CSS

OK, MISMATCH, USAGE, BROKEN = 0, 1, 2, 3


def replay_main(args: argparse.Namespace, out: Path, progress) -> int:
    """Replay the file against both URLs; print, report and save cases; return the status."""
    url_a, url_b = (u.rstrip("/") for u in args.against)
    try:
        records = replay_load(Path(args.replay))
    except (OSError, ReplayFileError) as exc:
        print(f"strangler compare: {exc}", file=sys.stderr)
        return USAGE
    try:
        overrides = headers_parse(args.header)
    except ValueError as exc:
        print(f"strangler compare: {exc}", file=sys.stderr)
        return USAGE
    records = [record_with_headers(record, overrides) for record in records]
    rules = rules_from_proxies(url_a, url_b)
    progress.say(f"replaying {len(records)} requests against {url_a} and {url_b}; {rules.note}")
    results = replay_run(records=records, before_url=url_a, after_url=url_b, rules=rules)
    counts = Counter(result.verdict for result in results)
    for result in results:
        record = result.recorded
        status = (
            f"{result.before['status']} vs {result.after['status']}"
            if result.before and result.after
            else ""
        )
        detail = result.error or ", ".join(result.differences) or "-"
        where = f"line {record.line:<4} {record.method:<6} {record.target}"
        print(f"{result.verdict:<8}  {where}  {status}  {detail}")
    saved = []
    if args.save_cases:
        saved = cases_save(results, Path(args.save_cases))
        for path in saved:
            print(f"saved case {path}")
    report = out / "replay.html"
    report.write_text(_html(results, url_a, url_b, rules.note))
    (out / "replay.json").write_text(
        json.dumps(
            [
                {
                    "line": r.recorded.line,
                    "method": r.recorded.method,
                    "target": r.recorded.target,
                    "verdict": r.verdict,
                    "differences": r.differences,
                    "noise": r.noise,
                    "drift": r.drift,
                    "error": r.error,
                    "before": r.before,
                    "after": r.after,
                }
                for r in results
            ],
            indent=1,
        )
        + "\n"
    )
    print(f"report: {report}")
    print(
        f"replay: {len(results)} requests, {counts.get('same', 0)} same, "
        f"{counts.get('mismatch', 0)} mismatch, {counts.get('error', 0)} error"
        + (f"; {len(saved)} case(s) saved" if args.save_cases else "")
    )
    if counts.get("mismatch"):
        return MISMATCH
    return BROKEN if counts.get("error") else OK


def _html(results, url_a: str, url_b: str, note: str) -> str:
    e = html.escape
    rows = []
    for r in results:
        verdict = {"same": "same", "mismatch": "regressed", "error": "flaky"}[r.verdict]
        answers = ""
        if r.before and r.after:
            answers = (
                "<details><summary>answers</summary><pre>"
                f"A {r.before['status']}: {e(r.before['body'][:2000])}\n\n"
                f"B {r.after['status']}: {e(r.after['body'][:2000])}</pre></details>"
            )
        rows.append(
            f"<tr><td><span class='v v-{verdict}'>{e(r.verdict)}</span></td>"
            f"<td class='num'>{r.recorded.line}</td><td><code>{e(r.recorded.method)} "
            f"{e(r.recorded.target)}</code>{answers}</td>"
            f"<td><code>{e(', '.join(r.differences) or (r.error or '-'))}</code></td>"
            f"<td><code>{e(', '.join(r.noise) or '-')}</code></td>"
            f"<td><code>{e(', '.join(r.drift) or '-')}</code></td></tr>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>strangler compare: replay</title>
<style>{CSS}</style></head><body>
<h1>Replay: {e(url_a)} vs {e(url_b)}</h1>
<p class="note">{e(note)}. Noise: paths that differed between two answers of A to the same
safe request. Drift: where A's answer differs from the recorded one (informative only).</p>
<table><tr><th>verdict</th><th>line</th><th>request</th><th>differences</th><th>noise</th>
<th>drift from recording</th></tr>{"".join(rows)}</table>
</body></html>
"""
