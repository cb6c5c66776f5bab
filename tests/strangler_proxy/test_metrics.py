"""Metrics across worker processes: snapshots summed into one exposition."""

from __future__ import annotations

import json

import pytest

from strangler_proxy.metrics import Metrics


def observe_some(metrics: Metrics, statuses: list[int]) -> None:
    for i, status in enumerate(statuses):
        metrics.observe("orders", "monolith", status, 0.002 * (i + 1))
    metrics.errors[("orders", "orders", "timeout")] += len(statuses)
    metrics.retries["orders"] += 1
    metrics.shadow[("orders", "diff")] += 1
    metrics.shadow[("orders", "same")] += 3


def test_workers_snapshots_sum_to_what_one_process_would_have_counted():
    first, second, alone = Metrics(), Metrics(), Metrics()
    observe_some(first, [200, 201, 404])
    observe_some(second, [503, 200])
    observe_some(alone, [200, 201, 404])
    observe_some(alone, [503, 200])
    # Through JSON, as a worker's file carries it.
    theirs = Metrics.from_snapshot(json.loads(json.dumps(second.snapshot())))
    merged = Metrics.merged(first, [theirs])
    assert merged.render() == alone.render()
    assert merged.requests[("orders", "monolith", "2xx")] == 3
    assert merged.diff_rate("orders") == 2 / 8
    assert first.requests[("orders", "monolith", "2xx")] == 2  # the parts are left alone


GOOD_LATENCY = ["orders", "monolith", [1] + [0] * 14, 0.001, [0, 1, 0, 0, 0]]


@pytest.mark.parametrize(
    ("snapshot", "problem"),
    [
        ({"latency": [GOOD_LATENCY, ["orders", "monolith", [1, 2], 0.1, [0] * 5]]}, "buckets"),
        ({"latency": [["orders", "monolith", [1] * 15, "slow", [0] * 5]]}, "slow"),
        ({"latency": [["orders", "monolith", [1] * 15, 1e400, [0] * 5]]}, "finite"),
        ({"latency": "not a list"}, "latency"),
        ({"retries": 5}, "retries"),
        ({"retries": [["orders", float("inf")]]}, "count"),
        ({"errors": [["orders", "orders", "timeout", -3]]}, "count"),
        ({"errors": [["orders", "orders", 7]]}, "wrong length"),
        ({"shadow": [["orders", "diff", True]]}, "count"),
        (["not", "an", "object"], "object"),
    ],
)
def test_a_malformed_snapshot_is_refused_whole_naming_the_problem(snapshot, problem):
    with pytest.raises(ValueError, match=r"malformed metrics snapshot|must be an object") as err:
        Metrics.from_snapshot(snapshot)
    assert problem in str(err.value)


def test_labels_read_from_a_snapshot_are_strings_so_rendering_never_fails():
    theirs = Metrics.from_snapshot({"retries": [[7, 2]], "shadow": [[None, "same", 1]]})
    merged = Metrics.merged(Metrics(), [theirs])
    assert 'strangler_retries_total{route="7"} 2' in merged.render()
    assert dict(merged.shadow) == {("None", "same"): 1}
