"""Verdicts: how one test's two outcomes compare, and how a comparison is summed up."""

from __future__ import annotations

import pytest

from migrations_playbook.compare.results import (
    RunResult,
    TestResult,
    comparison_build,
    verdict_for,
)


def result(outcome: str, test_id: str = "tests.contract.test_x::test_y") -> TestResult:
    return TestResult(test_id, outcome, 0.1)


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        ("passed", "passed", "same"),
        ("failed", "failed", "same"),
        ("error", "failed", "same"),
        ("xfailed", "xfailed", "same"),
        ("skipped", "passed", "same"),
        ("passed", "xfailed", "same"),
        ("passed", "failed", "regressed"),
        ("passed", "error", "regressed"),
        ("skipped", "failed", "regressed"),
        ("xfailed", "failed", "regressed"),
        ("failed", "passed", "fixed"),
        ("error", "skipped", "fixed"),
        ("passed", "flaky", "flaky"),
        ("flaky", "passed", "flaky"),
        ("failed", "flaky", "flaky"),
        ("flaky", "flaky", "flaky"),
    ],
)
def test_a_tests_verdict_follows_its_two_outcomes(before, after, verdict):
    assert verdict_for(result(before), result(after)) == verdict


def test_a_test_only_after_is_new_and_only_before_is_gone():
    assert verdict_for(None, result("passed")) == "new"
    assert verdict_for(None, result("failed")) == "new"
    assert verdict_for(result("passed"), None) == "gone"


def test_a_test_that_ran_nowhere_is_refused():
    with pytest.raises(ValueError, match="at least one side"):
        verdict_for(None, None)


def run(label: str, **outcomes: str) -> RunResult:
    return RunResult(
        label=label,
        target=f"http://{label}",
        tests={name: result(outcome, name) for name, outcome in outcomes.items()},
    )


def test_a_comparison_pairs_tests_by_id_and_lists_regressions_first():
    before = run("before", a="passed", b="failed", c="passed", d="passed", gone="passed")
    after = run("after", a="passed", b="passed", c="failed", d="flaky", new="passed")

    comparison = comparison_build(before=before, after=after)

    assert [(row.test_id, row.verdict) for row in comparison.rows] == [
        ("c", "regressed"),
        ("b", "fixed"),
        ("d", "flaky"),
        ("new", "new"),
        ("gone", "gone"),
        ("a", "same"),
    ]
    assert [row.test_id for row in comparison.regressed] == ["c"]
    assert comparison.summary() == (
        "REGRESSED (6 tests): 1 regressed, 1 fixed, 1 flaky, 1 new, 1 gone, 1 same"
    )


def test_a_comparison_without_regression_says_so():
    comparison = comparison_build(before=run("before", a="passed"), after=run("after", a="passed"))

    assert comparison.summary().startswith("no regression (1 tests)")
    assert comparison.regressed == []


def test_a_side_that_could_not_run_makes_the_comparison_inconclusive():
    after = run("after")
    after.error = "the stack stopped during the run"

    comparison = comparison_build(before=run("before", a="passed"), after=after)

    assert comparison.summary().startswith("INCONCLUSIVE, after could not be run")
