"""The suite's own rules: black box (no project imports) and bounded waits (no bare sleeps).

These run without a server; they keep the suite honest as tests are added.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from .helpers import eventually

pytestmark = pytest.mark.contract

CONTRACT_DIR = Path(__file__).resolve().parent
# The project's own packages, and the frameworks only a server has any business importing.
FORBIDDEN = {
    "monolith",
    "extracted",
    "service_kit",
    "outbox",
    "strangler_proxy",
    "migrations_playbook",
    "django",
    "rest_framework",
    "drf_spectacular",
    "celery",
    "kombu",
}
# The one module that may sleep: `eventually` itself, and the server start-up poll.
MAY_SLEEP = {"helpers.py", "server.py"}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in CONTRACT_DIR.glob("*.py")]


def _imported_names(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    return names


def test_the_contract_suite_imports_no_project_code():
    offenders = [
        f"{path.name}: {name}"
        for path, tree in _modules()
        for name in _imported_names(tree)
        if name.split(".")[0] in FORBIDDEN
    ]

    assert offenders == [], "the contract suite is a black box; it imported " + ", ".join(offenders)


def test_the_import_check_catches_a_project_import():
    tree = ast.parse("import os\nfrom monolith.orders import models\nimport django.conf\n")

    assert [n for n in _imported_names(tree) if n.split(".")[0] in FORBIDDEN] == [
        "monolith.orders",
        "django.conf",
    ]


def test_no_test_sleeps_instead_of_waiting_for_an_effect():
    sleepers = [
        f"{path.name}:{node.lineno}"
        for path, tree in _modules()
        if path.name not in MAY_SLEEP
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and "sleep" in (getattr(node.func, "attr", None), getattr(node.func, "id", None))
    ]

    assert sleepers == [], "wait with eventually(), never sleep: " + ", ".join(sleepers)


def test_eventually_returns_as_soon_as_the_check_passes():
    calls = []

    def check() -> str:
        calls.append(1)
        assert len(calls) >= 3
        return "done"

    assert eventually(check, timeout=5, interval=0.001) == "done"
    assert len(calls) == 3


def test_eventually_gives_up_after_its_timeout_with_the_last_failure():
    started = time.monotonic()

    def never() -> None:
        raise AssertionError("order still pending")

    with pytest.raises(AssertionError, match=r"still failing after 0.2s .*order still pending"):
        eventually(never, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 1.0


def test_eventually_does_not_swallow_errors_other_than_assertions():
    def broken() -> None:
        raise KeyError("status")

    with pytest.raises(KeyError):
        eventually(broken, timeout=5)
