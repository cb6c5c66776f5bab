"""Show a comparison: the side-by-side text table, and one self-contained HTML page.

The HTML report has no external assets (inline CSS, no scripts, no fonts or images fetched), so
it can be attached to a ticket or archived as it is.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .evidence import Evidence, MovedRoute
from .results import Comparison, RunResult, TestResult

SHORT_PREFIX = "tests.contract."


def short_id(test_id: str) -> str:
    """Return a test id without the suite's package prefix, for narrow tables."""
    return test_id.removeprefix(SHORT_PREFIX)


def _cell(result: TestResult | None) -> str:
    if result is None:
        return "-"
    return f"{result.outcome} {result.duration:.2f}s"


def text_table(comparison: Comparison, *, only_changes: bool = False) -> str:
    """Return the side-by-side table: verdict, test, before and after (outcome and time)."""
    rows = [r for r in comparison.rows if not only_changes or r.verdict != "same"]
    header = ("verdict", "test", comparison.before.label, comparison.after.label)
    body = [(r.verdict, short_id(r.test_id), _cell(r.before), _cell(r.after)) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(4)]
    widths[1] = min(widths[1], 100)

    def fmt(line: tuple[str, ...]) -> str:
        test = line[1] if len(line[1]) <= widths[1] else line[1][: widths[1] - 1] + "…"
        cells = (line[0], test, line[2], line[3])
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    lines = [fmt(header), fmt(tuple("-" * w for w in widths))]
    lines += [fmt(line) for line in body]
    if only_changes and len(rows) < len(comparison.rows):
        lines.append(f"({len(comparison.rows) - len(rows)} tests with verdict 'same' not shown)")
    return "\n".join(lines)


def side_line(run: RunResult) -> str:
    """Return one line about a side: where it ran, how long, what its tests did."""
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(run.counts().items()))
    text = f"{run.label}: {run.target}: {len(run.tests)} tests in {run.duration:.1f} s ({counts})"
    return text + (f"; RUN FAILED: {run.error.splitlines()[0]}" if run.error else "")


# ---------------------------------------------------------------------------------- HTML

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#1d232a}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .5em}
.answer{font-size:1.2em;padding:.6em 1em;border-radius:6px;display:inline-block}
.ok{background:#e3f6e8;color:#165c2c}.bad{background:#fde4e4;color:#8a1c1c}
table{border-collapse:collapse;margin:.4em 0;width:100%}
th,td{border-bottom:1px solid #e4e7eb;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f5f7f9;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}
.v{font-weight:600;border-radius:4px;padding:.05em .45em;white-space:nowrap}
.v-regressed{background:#fbd5d5;color:#8a1c1c}.v-fixed{background:#d7f2df;color:#165c2c}
.v-flaky{background:#fdf0c8;color:#7a5a00}.v-new{background:#dde8fb;color:#1d4690}
.v-gone{background:#ece3f8;color:#5a2d91}.v-same{background:#eef0f2;color:#4a5560}
.o-failed,.o-error{color:#a21b1b;font-weight:600}.o-flaky{color:#7a5a00;font-weight:600}
.note{color:#5b6570}details summary{cursor:pointer;color:#5b6570}
pre{white-space:pre-wrap;margin:.3em 0;max-width:70em}
td.test{word-break:break-all}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _result_cell(result: TestResult | None) -> str:
    if result is None:
        return '<td class="note">did not run</td><td></td>'
    message = ""
    if result.message:
        message = f"<details><summary>why</summary><pre>{_e(result.message)}</pre></details>"
    return (
        f'<td><span class="o-{_e(result.outcome)}">{_e(result.outcome)}</span>{message}</td>'
        f'<td class="num">{result.duration:.2f}&nbsp;s</td>'
    )


def _sides(comparison: Comparison) -> str:
    rows = []
    for run in (comparison.before, comparison.after):
        counts = ", ".join(f"{n} {o}" for o, n in sorted(run.counts().items()))
        files = ", ".join(f"<code>{_e(Path(p).name)}</code>" for p in run.junit)
        error = f'<pre class="o-error">{_e(run.error)}</pre>' if run.error else ""
        rows.append(
            f"<tr><th>{_e(run.label)}</th><td><code>{_e(run.target)}</code></td>"
            f'<td class="num">{len(run.tests)}</td><td>{_e(counts)}{error}</td>'
            f'<td class="num">{run.duration:.1f}&nbsp;s</td><td>{files}</td></tr>'
        )
    return (
        "<table><tr><th>side</th><th>target</th><th>tests</th><th>outcomes</th>"
        "<th>time</th><th>JUnit XML</th></tr>" + "".join(rows) + "</table>"
    )


def _route_section(route: MovedRoute) -> str:
    head = (
        f"<h3><code>{_e(route.name)}</code> <span class='mono'>{_e(route.match)}</span>: "
        f"{_e(route.before_mode)} &rarr; {_e(route.after_mode)} "
        f"(service <code>{_e(route.service)}</code>; from {_e(route.source)})</h3>"
    )
    if route.shadow:
        shadow = route.shadow
        paths = "".join(
            f"<tr><td><code>{_e(p)}</code></td><td class='num'>{n}</td></tr>"
            for p, n in shadow.get("top_paths", [])
        )
        rate = shadow.get("diff_rate")
        shadow_html = (
            "<table><tr><th class='num'>compared</th><th class='num'>diffs</th>"
            "<th class='num'>diff rate</th><th class='num'>errors</th>"
            "<th class='num'>skipped</th><th>proxy</th></tr>"
            f"<tr><td class='num'>{_e(shadow.get('compared', 0))}</td>"
            f"<td class='num'>{_e(shadow.get('diffs', 0))}</td>"
            f"<td class='num'>{'-' if rate is None else f'{rate:.2%}'}</td>"
            f"<td class='num'>{_e(shadow.get('errors', 0))}</td>"
            f"<td class='num'>{_e(shadow.get('skipped', 0))}</td>"
            f"<td><code>{_e(shadow.get('proxy', ''))}</code></td></tr></table>"
        )
        if paths:
            shadow_html += (
                "<details><summary>differing paths (stored diffs)</summary><table>"
                f"<tr><th>path</th><th>diffs</th></tr>{paths}</table></details>"
            )
    else:
        shadow_html = f"<p class='note'>{_e(route.shadow_note or 'no shadow figures')}</p>"
    if route.reconcile is not None:
        report = route.reconcile
        exact = report.get("exact")
        verdict = "exact" if exact else f"{len(report.get('differences') or [])} difference(s)"
        css = "ok" if exact else "bad"
        reconcile_html = (
            f"<p><span class='answer {css}'>reconcile: {_e(verdict)}</span> "
            f"monolith {_e(report.get('monolith_count', '?'))} rows, "
            f"service {_e(report.get('service_count', '?'))} rows</p>"
        )
        if report.get("differences"):
            listed = json.dumps(report["differences"][:50], indent=1, default=str)
            reconcile_html += (
                f"<details><summary>differences</summary><pre>{_e(listed)}</pre></details>"
            )
    else:
        reconcile_html = f"<p class='note'>{_e(route.reconcile_note or 'no reconciliation')}</p>"
    return head + "<h4>Shadow diffs</h4>" + shadow_html + "<h4>Reconciliation</h4>" + reconcile_html


def html_report(comparison: Comparison, evidence: Evidence, *, title: str) -> str:
    """Return the whole report as one HTML document with inline CSS and no external assets."""
    counts = comparison.counts()
    regressed = bool(counts.get("regressed"))
    broken = [run.label for run in (comparison.before, comparison.after) if run.error]
    if broken:
        regressed = True
        answer = f"inconclusive: {' and '.join(broken)} could not be run (see below)"
    elif regressed:
        answer = f"{counts['regressed']} test(s) regressed"
    else:
        answer = f"no regression: B is as good as A on {len(comparison.rows)} tests"
    chips = " ".join(
        f'<span class="v v-{v}">{counts.get(v, 0)} {v}</span>'
        for v in ("regressed", "fixed", "flaky", "new", "gone", "same")
    )
    # The test's name goes last: parametrised ids are long and must not push outcomes away.
    rows = "".join(
        f'<tr><td><span class="v v-{row.verdict}">{row.verdict}</span></td>'
        f"{_result_cell(row.before)}{_result_cell(row.after)}"
        f'<td class="test"><code>{_e(short_id(row.test_id))}</code></td></tr>'
        for row in comparison.rows
    )
    if evidence.routes:
        routes = "".join(_route_section(route) for route in evidence.routes)
    else:
        routes = "<p class='note'>No route moved between the two sides.</p>"
    notes = "".join(f"<li>{_e(note)}</li>" for note in evidence.notes)
    shadow_run = ""
    if evidence.shadow_run:
        run = evidence.shadow_run
        shadow_run = (
            "<p class='note'>The shadow figures below come from one contract run through the "
            f"proxy with the moved routes in shadow mode ({run['tests']} tests in "
            f"{run['seconds']:.1f} s, {_e(', '.join(run['junit']))}), just before the measured "
            "run with the routes at the end of their rollout.</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="answer {"bad" if regressed else "ok"}">{_e(answer)}</p>
<p>{chips}</p>
<p class="mono">{_e(comparison.summary())}</p>
<h2>The two sides</h2>
{_sides(comparison)}
<h2>Routes moved between the sides</h2>
{shadow_run}{routes}
<h2>Every test, worst first</h2>
<table><tr><th>verdict</th><th>before</th><th>time</th><th>after</th><th>time</th><th>test</th></tr>
{rows}</table>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<p class="note">Verdicts: regressed = good before, failing after; fixed = the reverse; flaky =
failed then passed on a retry, on either side; new / gone = the test ran on one side only;
same = the same on both sides. Skipped and expected failures count as good.</p>
</body></html>
"""
