"""`strangler compare --before 0 --after 1` on real stacks: started, compared, stopped, removed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from migrations_playbook.compare.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A few tests keep this quick; the proof and docs/compare.md cover the whole suite.
TESTS = [
    "tests/contract/test_service.py",
    "tests/contract/test_payments.py::test_paying_charges_the_orders_total_and_keeps_only_the_last_four_digits",
    "tests/contract/test_payments.py::test_the_list_filters_by_status_and_order",
]


def _compare_databases() -> set[str]:
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return set()
    import psycopg2

    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [f"{parts.path.lstrip('/')}_cmp%"],
            )
            return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def test_compare_0_to_1_runs_each_step_moves_payments_and_shows_shadow_and_reconcile(
    tmp_path, capsys
):
    databases_before = _compare_databases()
    args = ["--before", "0", "--after", "1", "--out", str(tmp_path)]
    for test in TESTS:
        args += ["--tests", test]

    status = main(args)

    printed = capsys.readouterr()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert status == 0, printed.out[-3000:] + printed.err[-3000:]
    assert {row["verdict"] for row in summary["tests"]} == {"same"}
    assert len(summary["tests"]) == 6
    before, after = summary["sides"]
    assert before["target"].startswith("step 0 at http://127.0.0.1:")
    assert after["target"].startswith("step 1 at http://127.0.0.1:")
    assert before["outcomes"] == after["outcomes"] == {"passed": 6}
    [route] = summary["evidence"]["routes"]
    assert (route["name"], route["before_mode"], route["after_mode"]) == (
        "payments",
        "monolith",
        "extracted",
    )
    # The shadow run compared the payments the suite read through the proxy.
    assert route["shadow"]["compared"] >= 1, route
    # Reconcile ran against step 1's two databases: the service holds the monolith's payments.
    assert route["reconcile"]["monolith_count"] == route["reconcile"]["service_count"] >= 1
    # Progress went to stderr while it ran; the table and the summary line to stdout.
    assert "step 1 ready in" in printed.err and "after-shadow:" in printed.err
    assert printed.out.rstrip().endswith(
        "no regression (6 tests): 0 regressed, 0 fixed, 0 flaky, 0 new, 0 gone, 6 same"
    )
    for name in ("before.xml", "after.xml", "after-shadow.xml", "report.html", "stack-before.log"):
        assert (tmp_path / name).exists(), name
    # Nothing is left behind: the stacks' databases are dropped, their var dirs removed.
    assert _compare_databases() == databases_before
    var_dirs = re.findall(r"\(var dir (\S+)\)", printed.err)
    assert len(var_dirs) == 2 and not any(Path(d).exists() for d in var_dirs)
