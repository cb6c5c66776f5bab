"""Gate evaluators: the figure, the limit, by how much a failure missed, and what to look at."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

import pytest

from migrations_playbook.gates import GateContext, gate_evaluate
from migrations_playbook.stepfile import steps_load

STEP = steps_load()[1]


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    monkeypatch.setattr("migrations_playbook.gates.time.sleep", lambda seconds: None)


@dataclass
class FakeProxy:
    base_url: str = "http://proxy.test"
    figures: dict = field(default_factory=dict)

    def diffs(self, route):
        return self.figures


class ScriptedContext(GateContext):
    """A context whose half commands print scripted outputs, one per call."""

    def __init__(self, outputs: list[dict] | dict[str, dict], proxy=None):
        super().__init__(step=STEP, proxy=proxy or FakeProxy(), environ={}, var_dir="/tmp",
                         say=lambda line: None)  # fmt: skip
        self.outputs = outputs if isinstance(outputs, dict) else list(outputs)
        self.calls: list[tuple[str, list[str]]] = []

    def run_half(self, service, argv, **kwargs):
        self.calls.append((service, argv))
        # Halves may be asked side by side: a dict answers per half, a list in call order.
        output = self.outputs[service] if isinstance(self.outputs, dict) else self.outputs.pop(0)
        return subprocess.CompletedProcess(argv, 0, stdout=json.dumps(output), stderr="")


def _reconcile_report(*differences, monolith=10, service=10):
    return {
        "monolith_count": monolith,
        "service_count": service,
        "exact": not differences,
        "differences": [{"kind": kind, "payment_id": pk, "fields": {}} for kind, pk in differences],
    }


def _gate(name):
    return STEP.gates[name]


def test_shadow_diff_over_its_rate_says_by_how_much_and_where_the_diffs_are():
    proxy = FakeProxy(figures={"compared": 200, "diffs": 6, "diff_rate": 0.03, "latest": [
        {"id": 7, "method": "GET", "target": "/api/payments/", "paths": ["/results/0/status"]}
    ]})  # fmt: skip
    result = gate_evaluate(_gate("shadow_diff"), ScriptedContext([], proxy))
    assert not result.ok
    assert result.line() == (
        "FAIL shadow_diff  payments: diff rate 3.00% of 200  (limit: <= 1.00% over at least 20); "
        "over by 2.00 points (6 diffs)"
    )
    assert "diff #7 GET /api/payments/: /results/0/status" in result.details
    assert "http://proxy.test/_strangler/diffs?route=payments" in result.look_at


def test_shadow_diff_without_enough_comparisons_does_not_pass():
    proxy = FakeProxy(figures={"compared": 5, "diffs": 0, "diff_rate": 0.0})
    result = gate_evaluate(_gate("shadow_diff"), ScriptedContext([], proxy))
    assert not result.ok
    assert result.by == "15 more compared request(s) needed"


def test_shadow_diff_under_its_rate_with_enough_comparisons_passes():
    proxy = FakeProxy(figures={"compared": 40, "diffs": 0, "diff_rate": 0.0})
    assert gate_evaluate(_gate("shadow_diff"), ScriptedContext([], proxy)).ok


def test_reconcile_ignores_a_difference_that_settles_between_runs():
    ctx = ScriptedContext(
        [_reconcile_report(("missing_in_monolith", "p1"), service=11), _reconcile_report()]
    )
    result = gate_evaluate(_gate("reconcile"), ctx)
    assert result.ok
    assert len(ctx.calls) == 2
    assert ctx.calls[0] == ("payments", ["manage.py", "payments_reconcile", "--json"])


def test_reconcile_fails_on_a_difference_that_persists_and_names_the_row():
    stuck = ("missing_in_service", "p9")
    ctx = ScriptedContext([_reconcile_report(stuck, ("missing_in_monolith", f"new{i}"))
                           for i in range(3)])  # fmt: skip
    result = gate_evaluate(_gate("reconcile"), ctx)
    assert not result.ok
    assert result.figure == "1 difference(s) (monolith 10, payments 10)"
    assert result.details == ["missing_in_service: payment p9"]
    assert result.by == "1 row(s) differ after 3 runs"
    assert "payments_reconcile --settings extracted.payments.settings" in result.look_at


def test_reconcile_names_the_row_of_any_service_by_its_id_key():
    users = {"monolith_count": 4, "service_count": 3, "exact": False, "differences": [
        {"kind": "missing_in_service", "user_id": 1_000_000_007, "fields": {}}]}  # fmt: skip
    ctx = ScriptedContext([users] * 3)

    result = gate_evaluate(_gate("reconcile"), ctx)

    assert result.details == ["missing_in_service: user 1000000007"]


def test_outbox_lag_over_its_bound_names_each_backlog():
    ctx = ScriptedContext(
        {
            "monolith": {"pending": 150, "oldest_pending_age_s": 40.0, "queues": {
                "payments": 60, "monolith": 0, "notifications": 1, "analytics": None}},
            "payments": {"pending": 2, "oldest_pending_age_s": 0.5, "queues": {}},
        }
    )  # fmt: skip
    result = gate_evaluate(_gate("outbox_lag"), ctx)
    assert not result.ok
    assert result.by == "13 message(s) over; oldest unsent 10.0 s over"
    assert "unsent monolith 150, unsent payments 2, queue payments 60" in result.figure
    assert "queue analytics ?" in result.figure
    assert "outbox_status" in result.look_at


def test_a_gate_that_cannot_be_measured_fails_and_says_why():
    class Broken(ScriptedContext):
        def run_half(self, service, argv, **kwargs):
            return subprocess.CompletedProcess(argv, 1, stdout="", stderr="no such table")

    result = gate_evaluate(_gate("outbox_lag"), Broken([]))
    assert not result.ok
    assert result.figure == "could not be measured"
    assert "no such table" in result.by
