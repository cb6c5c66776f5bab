"""Compare a candidate's response with the monolith's, the way a route's rules say.

* Bodies are compared as JSON when both parse, else byte for byte (path ``/``).
* ``ignore``: JSON pointers whose segments may be globs (``/created_at``, ``/results/*/id``);
  a pointer also ignores everything below it.
* ``unordered``: pointers to lists compared as multisets (sorted by canonical JSON).
* ``normalize_numbers``: ``12.5``, ``12.50`` and ``"12.50"`` are the same number.
* ``status``: a differing status is the difference ``status``; ``headers``: each chosen header
  that differs is ``headers/<name>``.
* Noise: paths that differ between two answers of the monolith itself (learned by the shadow
  runner) are reported as noise, not as differences. Array indices are generalised to ``*``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Any

from .routes import CompareRules

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_MISSING = object()


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def pointer_matches(pattern: str, path: str) -> bool:
    """Return whether JSON pointer `path` is `pattern` or lies below it (segments may be globs)."""
    want = pattern.split("/")[1:] if pattern else []
    have = path.split("/")[1:] if path else []
    if len(have) < len(want):
        return False
    return all(fnmatchcase(h, w) for h, w in zip(have, want, strict=False))


def generalise(path: str) -> str:
    """Return `path` with array indices replaced by ``*`` (for noise learned from samples)."""
    return "/".join("*" if part.isdigit() else part for part in path.split("/"))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def normalise(value: Any, rules: CompareRules, path: str = "") -> Any:
    """Return `value` with unordered lists sorted and numbers made comparable."""
    if isinstance(value, dict):
        return {k: normalise(v, rules, f"{path}/{_escape(k)}") for k, v in value.items()}
    if isinstance(value, list):
        items = [normalise(v, rules, f"{path}/{i}") for i, v in enumerate(value)]
        if any(
            pointer_matches(p, path) and len(p.split("/")) == len(path.split("/"))
            for p in rules.unordered
        ):
            items.sort(key=_canonical)
        return items
    numeric = isinstance(value, int | float) or (isinstance(value, str) and _DECIMAL.match(value))
    if rules.normalize_numbers and numeric and not isinstance(value, bool):
        try:
            return Decimal(str(value)).normalize()
        except InvalidOperation:
            return value
    return value


def json_diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Return the JSON pointers where `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += json_diff(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}/{_escape(key)}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [path or "/"]
        out = []
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            out += json_diff(x, y, f"{path}/{index}")
        return out
    if type(a) is not type(b) or a != b:
        return [path or "/"]
    return []


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _MISSING


def compare_responses(
    *,
    rules: CompareRules,
    noise: set[str] | frozenset[str] = frozenset(),
    expected: tuple[int, dict[str, str], bytes],
    actual: tuple[int, dict[str, str], bytes],
) -> tuple[list[str], list[str]]:
    """Return (differences, noise) between two (status, headers, body) answers."""
    if (
        expected[2] == actual[2]
        and expected[0] == actual[0]
        and all(expected[1].get(name) == actual[1].get(name) for name in rules.headers)
    ):
        return [], []  # the same bytes parse the same: nothing to normalise or compare
    paths: list[str] = []
    if rules.status and expected[0] != actual[0]:
        paths.append("status")
    for name in rules.headers:
        if expected[1].get(name) != actual[1].get(name):
            paths.append(f"headers/{name}")
    left, right = _parse(expected[2]), _parse(actual[2])
    if left is _MISSING or right is _MISSING:
        if expected[2] != actual[2]:
            paths.append("/")
    else:
        paths += json_diff(normalise(left, rules), normalise(right, rules))
    kept, noisy = [], []
    for path in paths:
        if any(pointer_matches(p, path) for p in rules.ignore):
            continue
        if generalise(path) in noise or any(pointer_matches(n, path) for n in noise):
            noisy.append(path)
        else:
            kept.append(path)
    return kept, noisy
