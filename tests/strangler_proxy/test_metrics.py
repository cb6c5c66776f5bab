"""Metrics across worker processes: snapshots summed into one exposition."""

from __future__ import annotations

import json

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
    merged = Metrics.merged(first, [json.loads(json.dumps(second.snapshot()))])
    assert merged.render() == alone.render()
    assert merged.requests[("orders", "monolith", "2xx")] == 3
    assert merged.diff_rate("orders") == 2 / 8


def test_a_malformed_snapshot_entry_is_skipped_and_the_rest_counted():
    own = Metrics()
    own.observe("orders", "monolith", 200, 0.001)
    broken = {
        "latency": [
            ["orders", "monolith", [1, 2], 0.1, [0, 1, 0, 0, 0]],
            ["orders", "monolith", [1] * 15, "slow", [0, 1, 0, 0, 0]],
            "not a list",
        ],
        "errors": [["orders", "orders", "timeout", "many"], ["orders", "orders", "connect", 2]],
        "retries": [["orders"]],
        "shadow": None,
    }
    merged = Metrics.merged(own, [broken])
    assert merged.requests == {("orders", "monolith", "2xx"): 1}
    assert dict(merged.errors) == {("orders", "orders", "connect"): 2}
    assert dict(merged.retries) == {}
