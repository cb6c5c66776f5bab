"""Read the JUnit XML pytest writes (``--junitxml``) into one TestResult per test.

A test's id is ``<classname>::<name>`` as pytest reports them, e.g.
``tests.contract.test_users::test_registration_returns_the_user`` (the same on both sides, so
runs against different deployments line up). A retry's file is folded in by ``junit_merge``:
a test that failed and then passed becomes ``flaky``; one that failed again keeps its outcome.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .results import BAD, TestResult


class JUnitError(ValueError):
    """A JUnit file is missing or is not JUnit XML; the message names the file."""


def _outcome(case: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("error", "error"), ("failure", "failed")):
        found = case.find(tag)
        if found is not None:
            message = found.get("message") or (found.text or "").strip().splitlines()[-1:]
            if isinstance(message, list):
                message = message[0] if message else ""
            return outcome, message
    skipped = case.find("skipped")
    if skipped is not None:
        kind = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        return kind, skipped.get("message") or ""
    return "passed", ""


def junit_parse(path: Path) -> dict[str, TestResult]:
    """Return every test case of the JUnit file at `path`, by test id."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 (our own pytest wrote it)
    except FileNotFoundError:
        raise JUnitError(f"{path}: no JUnit file (did pytest start at all?)") from None
    except ET.ParseError as exc:
        raise JUnitError(f"{path}: not XML ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"{path}: expected <testsuites> or <testsuite>, found <{root.tag}>")
    results: dict[str, TestResult] = {}
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = _outcome(case)
        duration = float(case.get("time") or 0.0)
        earlier = results.get(test_id)
        # pytest writes a second <testcase> for a teardown error of a test that passed: the
        # test as a whole broke, and its time is the sum.
        if earlier is not None:
            duration += earlier.duration
            if earlier.outcome in BAD:
                outcome, message = earlier.outcome, earlier.message
        results[test_id] = TestResult(test_id, outcome, round(duration, 3), message)
    return results


def junit_merge(
    first: dict[str, TestResult], retry: dict[str, TestResult]
) -> dict[str, TestResult]:
    """Return `first` with its failures replaced by their retry: passed on retry means flaky."""
    merged = dict(first)
    for test_id, result in first.items():
        if result.outcome not in BAD or test_id not in retry:
            continue
        again = retry[test_id]
        if again.outcome in BAD:
            merged[test_id] = TestResult(test_id, result.outcome, result.duration, again.message)
        else:
            message = f"failed, then {again.outcome} on retry: {result.message}"
            merged[test_id] = TestResult(test_id, "flaky", result.duration, message)
    return merged
