"""A pytest plugin that reports progress to `strangler compare`, one JSON line per event.

Loaded with ``-p migrations_playbook.compare.pytest_progress`` in the suite's subprocess; it
writes to the file named by ``STRANGLER_COMPARE_PROGRESS`` (and does nothing without it):
``{"total": N}`` once collection is done, then ``{"outcome": "passed"|"failed"|"skipped"}``
per finished test.
"""

from __future__ import annotations

import json
import os

import pytest

PROGRESS_ENV = "STRANGLER_COMPARE_PROGRESS"


def _emit(document: dict) -> None:
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    with open(path, "a") as handle:
        handle.write(json.dumps(document) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    _emit({"total": len(session.items)})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A test ends at its call phase, or at setup when setup failed or skipped it.
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _emit({"outcome": report.outcome})
