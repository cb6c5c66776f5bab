"""Recorded traffic as contract tests: each saved case is a request and the answer it must get.

`strangler compare --against URL_A URL_B --replay FILE --save-cases DIR` writes one JSON file
per request whose answers differed between A and B (docs/compare.md has the format); this
module runs every case of a directory against the deployment under test:

    STRANGLER_CONTRACT_CASES=var/cases STRANGLER_CONTRACT_URL=http://127.0.0.1:8000 \
        pytest tests/contract/test_recorded_cases.py

It expects A's status, and A's JSON body except at the case's ``ignore`` pointers (segments
may be globs; a pointer covers everything below it) with the lists at ``unordered`` compared
in any order, and numbers compared by value ("12.50" == 12.5). Recorded requests carry the
tokens and ids of the deployment they were recorded on, so cases belong with that deployment's
data (a staging copy, a replayed snapshot). Without STRANGLER_CONTRACT_CASES, the cases in
tests/contract/cases/ run, if that directory exists.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.contract

CASES_ENV = "STRANGLER_CONTRACT_CASES"
DEFAULT_DIR = Path(__file__).resolve().parent / "cases"
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
MISSING = object()


def _case_files() -> list[Path]:
    directory = Path(os.environ.get(CASES_ENV) or DEFAULT_DIR)
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def _params() -> list:
    files = _case_files()
    if files:
        return [pytest.param(path, id=path.stem) for path in files]
    reason = (
        f"no recorded cases: set {CASES_ENV} to a directory `strangler compare --save-cases` wrote"
    )
    return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-cases")]


def _covered(path: str, patterns: list[str]) -> bool:
    have = path.split("/")[1:] if path else []
    for pattern in patterns:
        want = pattern.split("/")[1:] if pattern not in ("", "/") else []
        if len(have) >= len(want) and all(
            fnmatchcase(h, w) for h, w in zip(have, want, strict=False)
        ):
            return True
    return False


def _comparable(value: Any) -> Any:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or (isinstance(value, str) and NUMBER.match(value)):
        try:
            return Decimal(str(value)).normalize()
        except InvalidOperation:
            return value
    return value


def _differences(expected: Any, actual: Any, case: dict, path: str = "") -> list[str]:
    """Return the JSON pointers where `actual` is not what the case expects."""
    ignore, unordered = case["expect"].get("ignore", []), case["expect"].get("unordered", [])
    if _covered(path, ignore):
        return []
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            child = f"{path}/{key.replace('~', '~0').replace('/', '~1')}"
            out += _differences(expected.get(key, MISSING), actual.get(key, MISSING), case, child)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [path or "/"]
        if any(_covered(path, [p]) and p.count("/") == path.count("/") for p in unordered):
            key = lambda item: json.dumps(item, sort_keys=True, default=str)  # noqa: E731
            expected, actual = sorted(expected, key=key), sorted(actual, key=key)
        out = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            out += _differences(left, right, case, f"{path}/{index}")
        return out
    if _comparable(expected) != _comparable(actual):  # MISSING equals only itself
        return [path or "/"]
    return []


@pytest.mark.parametrize("case_path", _params())
def test_a_recorded_request_gets_the_answer_it_was_saved_with(api, case_path):
    case = json.loads(case_path.read_text())
    request = case["request"]
    target = request["path"] + (f"?{request['query']}" if request.get("query") else "")
    body = request.get("body")

    response = api.request(
        request["method"],
        target,
        headers=request.get("headers") or {},
        data=body.encode() if body is not None else None,
        allow_redirects=False,
    )

    expect = case["expect"]
    assert response.status_code == expect["status"], f"{case['name']}: {response.text[:500]}"
    if expect.get("body_kind") == "json":
        differences = _differences(expect["body"], response.json(), case)
        assert differences == [], f"{case['name']}: differs at {differences}: {response.text[:500]}"
    elif not _covered("/", expect.get("ignore", [])):
        assert response.text == expect["body"], case["name"]
