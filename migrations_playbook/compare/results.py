"""What one contract run produced, and how two runs of one test compare.

Outcomes per test and side (from JUnit XML, after one retry of the failures):

| outcome | meaning | counts as |
|---|---|---|
| ``passed`` | passed the first time | good |
| ``xfailed`` | an expected failure failed, as declared | good |
| ``skipped`` | skipped (e.g. no staff account was given) | good: it proves nothing, fails nothing |
| ``failed`` | an assertion failed, on the first run and on the retry | bad |
| ``error`` | setup or teardown broke, on the first run and on the retry | bad |
| ``flaky`` | failed, then passed on the retry | neither: not trusted |

Verdicts, before -> after:

| verdict | when |
|---|---|
| ``new`` | the test exists only after |
| ``gone`` | the test exists only before |
| ``flaky`` | either side is flaky |
| ``regressed`` | good before, bad after |
| ``fixed`` | bad before, good after |
| ``same`` | good on both sides, or bad on both |
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

GOOD = frozenset({"passed", "xfailed", "skipped"})
BAD = frozenset({"failed", "error"})
OUTCOMES = ("passed", "xfailed", "skipped", "failed", "error", "flaky")
VERDICTS = ("regressed", "fixed", "flaky", "new", "gone", "same")


@dataclass(frozen=True)
class TestResult:
    """One test's outcome on one side, how long it took, and the failure message if any."""

    __test__ = False  # not a pytest test class, whatever its name says

    test_id: str
    outcome: str
    duration: float = 0.0
    message: str = ""


@dataclass
class RunResult:
    """One side's contract run: where it pointed, what each test did, where the evidence is."""

    label: str
    target: str
    tests: dict[str, TestResult] = field(default_factory=dict)
    duration: float = 0.0
    junit: list[str] = field(default_factory=list)
    log: str | None = None
    error: str | None = None

    def counts(self) -> Counter:
        """Return how many tests ended with each outcome."""
        return Counter(result.outcome for result in self.tests.values())


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side table."""

    test_id: str
    before: TestResult | None
    after: TestResult | None
    verdict: str


@dataclass
class Comparison:
    """Every test of both runs with its verdict, regressions first."""

    before: RunResult
    after: RunResult
    rows: list[Row]

    def counts(self) -> Counter:
        """Return how many tests got each verdict."""
        return Counter(row.verdict for row in self.rows)

    @property
    def regressed(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "regressed"]

    def summary(self) -> str:
        """Return the one summary line: every verdict's count, and the overall answer."""
        counts = self.counts()
        parts = [f"{counts.get(v, 0)} {v}" for v in VERDICTS]
        broken = [run.label for run in (self.before, self.after) if run.error]
        if broken:
            answer = f"INCONCLUSIVE, {' and '.join(broken)} could not be run"
        else:
            answer = "REGRESSED" if counts.get("regressed") else "no regression"
        answer += f" ({len(self.rows)} tests)"
        return f"{answer}: " + ", ".join(parts)


def verdict_for(before: TestResult | None, after: TestResult | None) -> str:
    """Return the verdict of one test from its two outcomes (None: it did not run on that side)."""
    if before is None and after is None:
        raise ValueError("a test must have run on at least one side")
    if before is None:
        return "new"
    if after is None:
        return "gone"
    if "flaky" in (before.outcome, after.outcome):
        return "flaky"
    before_good, after_good = before.outcome in GOOD, after.outcome in GOOD
    if before_good and not after_good:
        return "regressed"
    if after_good and not before_good:
        return "fixed"
    return "same"


def comparison_build(*, before: RunResult, after: RunResult) -> Comparison:
    """Pair every test of both runs, give each a verdict, and order them worst first."""
    order = {verdict: index for index, verdict in enumerate(VERDICTS)}
    rows = []
    for test_id in sorted(set(before.tests) | set(after.tests)):
        left, right = before.tests.get(test_id), after.tests.get(test_id)
        rows.append(Row(test_id, left, right, verdict_for(left, right)))
    rows.sort(key=lambda row: (order[row.verdict], row.test_id))
    return Comparison(before=before, after=after, rows=rows)
