"""Decide which path a request names, refusing any that could escape the route table.

Routing matches the *decoded* path, while the upstream receives the raw path and query byte for
byte. That is safe only when both readings agree, so a path is refused (400) when decoding could
make it mean something else to the upstream: dot segments (``/a/../b``, ``/%2e%2e/``), encoded
slashes or backslashes (``%2f``, ``%5c``, ``\\``), double encoding (``%25``), NUL and control
characters, empty segments (``//``), invalid escapes (``%zz``, or bytes that are not UTF-8 such
as ``%ff``: a half would decode them its own way), or anything not starting with ``/``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .errors import PathRefused

_FORBIDDEN_ESCAPES = re.compile(r"%(2[fF]|5[cC]|25|0[0-9a-fA-F]|1[0-9a-fA-F]|7[fF])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def path_for_routing(raw_path: str) -> str:
    """Return the decoded path to match routes on, or raise PathRefused saying why."""
    if not raw_path.startswith("/"):
        raise PathRefused(f"path must start with '/', got {raw_path[:80]!r}")
    if (
        "%" not in raw_path
        and "/." not in raw_path
        and "\\" not in raw_path
        and "//" not in raw_path
    ):
        if _CONTROL.search(raw_path):
            raise PathRefused("path holds a control character")
        return raw_path  # the common case: nothing to decode, nothing to check
    if "\\" in raw_path:
        raise PathRefused("path holds a backslash")
    found = _FORBIDDEN_ESCAPES.search(raw_path)
    if found:
        raise PathRefused(f"path holds the escape {found.group(0)!r}")
    bad = _BAD_ESCAPE.search(raw_path)
    if bad:
        raise PathRefused(
            f"path holds an invalid escape {raw_path[bad.start() : bad.start() + 3]!r}"
        )
    try:
        decoded = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise PathRefused("path holds escapes that are not UTF-8 (such as '%ff')") from None
    if _CONTROL.search(decoded):
        raise PathRefused("path holds a control character")
    segments = decoded.split("/")[1:]
    for index, segment in enumerate(segments):
        if segment in {".", ".."}:
            raise PathRefused(f"path holds the dot segment {segment!r}")
        if segment == "" and index != len(segments) - 1:
            raise PathRefused("path holds an empty segment ('//')")
    return decoded
