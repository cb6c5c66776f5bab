"""The report: a side-by-side text table and one self-contained HTML page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from migrations_playbook.compare.evidence import Evidence, MovedRoute
from migrations_playbook.compare.report import html_report, text_table
from migrations_playbook.compare.results import RunResult, TestResult, comparison_build


def _run(label: str, **outcomes: tuple[str, float]) -> RunResult:
    tests = {
        f"tests.contract.test_payments::{name}": TestResult(
            f"tests.contract.test_payments::{name}", outcome, seconds, "assert 402 == 400"
        )
        for name, (outcome, seconds) in outcomes.items()
    }
    return RunResult(
        label=label,
        target=f"step at http://{label}",
        tests=tests,
        duration=3.5,
        junit=[f"/out/{label}.xml"],
    )


def _comparison():
    before = _run("before", test_pay=("passed", 0.25), test_refund=("passed", 0.5))
    after = _run("after", test_pay=("failed", 0.75), test_refund=("passed", 0.5))
    return comparison_build(before=before, after=after)


def _evidence() -> Evidence:
    shadow = MovedRoute(
        name="payments",
        match="/api/payments/",
        service="payments",
        before_mode="monolith",
        after_mode="extracted",
        source="step data",
        step=1,
        shadow={
            "compared": 49,
            "diffs": 3,
            "errors": 0,
            "skipped": 1,
            "diff_rate": 3 / 49,
            "top_paths": [["/results/0/created_at", 2]],
            "proxy": "http://p",
        },
        reconcile={
            "exact": False,
            "monolith_count": 10,
            "service_count": 9,
            "differences": [{"kind": "missing", "payment_id": "p-1"}],
        },
    )
    bare = MovedRoute(
        name="users",
        match="/api/users/",
        service="users",
        before_mode="monolith",
        after_mode="shadow",
        source="proxy route tables",
        shadow_note="no shadow figures: http://a has no proxy admin API",
        reconcile_note="step 2 declares no reconcile gate",
    )
    return Evidence(routes=[shadow, bare], notes=["staff-only tests were skipped <on both>"])


def test_the_text_table_shows_each_test_with_both_outcomes_times_and_verdict():
    table = text_table(_comparison())

    lines = table.splitlines()
    assert lines[0].split() == ["verdict", "test", "before", "after"]
    assert re.search(r"regressed\s+test_payments::test_pay\s+passed 0.25s\s+failed 0.75s", table)
    assert re.search(r"same\s+test_payments::test_refund\s+passed 0.50s\s+passed 0.50s", table)


def test_only_changes_hides_the_same_tests_and_says_how_many():
    table = text_table(_comparison(), only_changes=True)

    assert "test_refund" not in table
    assert "(1 tests with verdict 'same' not shown)" in table


class _Assets(HTMLParser):
    """Collect every attribute that could fetch something from elsewhere."""

    def __init__(self):
        super().__init__()
        self.fetching: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "srcset", "data"} or (value or "").startswith("url("):
                self.fetching.append((tag, name, value or ""))


def test_the_html_report_is_self_contained():
    page = html_report(_comparison(), _evidence(), title="step 0 vs step 1")

    parser = _Assets()
    parser.feed(page)
    assert parser.fetching == []
    assert "link" not in parser.tags and "script" not in parser.tags
    assert "style" in parser.tags
    assert "@import" not in page and "url(" not in page


def test_the_html_report_answers_first_then_shows_sides_routes_and_every_test():
    page = html_report(_comparison(), _evidence(), title="step 0 vs step 1")

    assert "1 test(s) regressed" in page
    assert "REGRESSED (2 tests): 1 regressed, 0 fixed, 0 flaky, 0 new, 0 gone, 1 same" in page
    assert "step at http://before" in page and "before.xml" in page
    regressed_row = re.search(r'<tr><td><span class="v v-regressed">.*?</tr>', page).group(0)
    assert "o-failed" in regressed_row and "0.75&nbsp;s" in regressed_row
    assert "<code>test_payments::test_pay</code>" in regressed_row
    assert "assert 402 == 400" in page
    # The moved route with figures: compared, diffs, rate, the differing path, reconciliation.
    assert "<td class='num'>49</td>" in page and "6.12%" in page
    assert "/results/0/created_at" in page
    assert "reconcile: 1 difference(s)" in page and "monolith 10 rows, service 9 rows" in page
    # The route whose sources are missing says so, instead of showing nothing.
    assert "no shadow figures: http://a has no proxy admin API" in page
    assert "step 2 declares no reconcile gate" in page


def test_the_html_report_escapes_what_it_shows():
    page = html_report(_comparison(), _evidence(), title="<b>x</b>")

    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "skipped &lt;on both&gt;" in page


def test_a_report_without_moved_routes_or_regressions_says_so():
    before = _run("before", test_pay=("passed", 0.1))
    after = _run("after", test_pay=("passed", 0.1))

    page = html_report(comparison_build(before=before, after=after), Evidence(), title="t")

    assert "no regression: B is as good as A on 1 tests" in page
    assert "No route moved between the two sides." in page
