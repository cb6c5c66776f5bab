"""JUnit XML from a real pytest run, and one retry of the failures, become one outcome per test."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from migrations_playbook.compare.junit import JUnitError, junit_merge, junit_parse
from migrations_playbook.compare.results import TestResult
from migrations_playbook.compare.suite import suite_run

# A suite with one test of every kind; `test_flaky` fails the first time it runs in a directory
# and passes after, `test_broken_fixture` errors in setup every time.
SAMPLE = """
import pytest
from pathlib import Path

MARK = Path(__file__).with_name("ran-once")


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


def test_passes():
    assert True


def test_fails():
    assert 1 == 2, "one is not two"


def test_broken_fixture(broken):
    pass


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


@pytest.mark.xfail(strict=True, reason="known bug")
def test_expected_failure():
    assert False


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1


def test_flaky():
    if not MARK.exists():
        MARK.write_text("x")
        assert False, "first time"
"""


# Each suite run is a pytest process (seconds): the sample suite runs once for this module.
@pytest.fixture(scope="module")
def sample_suite(tmp_path_factory) -> Path:
    suite = tmp_path_factory.mktemp("suite")
    (suite / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    return suite


@pytest.fixture(scope="module")
def sample_run(sample_suite, tmp_path_factory):
    seen: list[tuple] = []
    run = suite_run(
        label="before",
        base_url="http://127.0.0.1:9",
        out_dir=tmp_path_factory.mktemp("out"),
        tests=[str(sample_suite)],
        progress=lambda *args: seen.append(args),
    )
    return run, seen


def test_a_real_pytest_run_is_read_test_by_test_and_its_retry_marks_the_flaky_one(sample_run):
    run, seen = sample_run

    assert run.error is None
    outcomes = {test_id.split("::")[-1]: r.outcome for test_id, r in run.tests.items()}
    assert outcomes == {
        "test_passes": "passed",
        "test_fails": "failed",
        "test_broken_fixture": "error",
        "test_skipped": "skipped",
        "test_expected_failure": "xfailed",
        "test_param[1]": "passed",
        "test_param[2]": "failed",
        "test_flaky": "flaky",
    }
    assert [Path(p).name for p in run.junit] == ["before.xml", "before-retry.xml"]
    failing = next(r for t, r in run.tests.items() if t.endswith("::test_fails"))
    assert "one is not two" in failing.message
    assert all(r.duration >= 0 for r in run.tests.values())
    # Progress: the first run's final count, then the retry of the four failures.
    assert ("before", 8, 8, 4) in seen
    assert ("before (retry)", 4, 4, 3) in seen


def test_without_retry_a_failure_stays_a_failure_and_ids_line_up_with_another_run(
    sample_suite, sample_run, tmp_path
):
    run = suite_run(
        label="after",
        base_url="http://127.0.0.1:9",
        out_dir=tmp_path,
        tests=[str(sample_suite)],
        retry=False,
    )

    flaky_id = next(t for t in run.tests if t.endswith("::test_flaky"))
    assert run.tests[flaky_id].outcome == "passed"  # it ran before in this directory
    assert run.tests[next(t for t in run.tests if t.endswith("::test_fails"))].outcome == "failed"
    assert len(run.junit) == 1
    # Ids come from the test, not from the side: both runs line up test by test.
    assert set(run.tests) == set(sample_run[0].tests)


def test_a_suite_that_cannot_be_collected_is_a_failed_run_not_an_empty_one(tmp_path):
    (tmp_path / "test_bad.py").write_text("import no_such_module_here\n")

    run = suite_run(label="a", base_url="http://x", out_dir=tmp_path / "o", tests=[str(tmp_path)])

    assert run.error is not None


def test_a_missing_or_foreign_file_is_named_in_the_error(tmp_path):
    with pytest.raises(JUnitError, match="no JUnit file"):
        junit_parse(tmp_path / "none.xml")
    (tmp_path / "other.xml").write_text("<html></html>")
    with pytest.raises(JUnitError, match="found <html>"):
        junit_parse(tmp_path / "other.xml")


def test_a_teardown_error_after_a_pass_makes_the_test_an_error(tmp_path):
    path = tmp_path / "j.xml"
    path.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="m" name="t" time="0.5"/>'
        '<testcase classname="m" name="t" time="0.25"><error message="teardown broke"/></testcase>'
        "</testsuite></testsuites>"
    )

    assert junit_parse(path) == {"m::t": TestResult("m::t", "error", 0.75, "teardown broke")}


def test_merging_a_retry_keeps_a_failure_that_failed_again_and_leaves_passes_alone():
    first = {
        "a": TestResult("a", "failed", 1.0, "first"),
        "b": TestResult("b", "passed", 1.0),
        "c": TestResult("c", "error", 1.0, "setup"),
    }
    retry = {"a": TestResult("a", "failed", 2.0, "again"), "c": TestResult("c", "passed", 0.1)}

    merged = junit_merge(first, retry)

    assert merged["a"] == TestResult("a", "failed", 1.0, "again")
    assert merged["b"] == first["b"]
    assert merged["c"].outcome == "flaky"
    assert merged["c"].duration == 1.0
