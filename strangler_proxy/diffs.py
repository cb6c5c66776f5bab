"""Shadow diffs: the latest per route, each with the request, both answers and where they differ.

A diff is stored after the route's deny-list (redaction.py) is applied: a stored diff, and the
curl command that replays it, never hold a token, a cookie, a signed identity or a secret body
field.
"""

from __future__ import annotations

import itertools
import shlex
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from .redaction import Redactor


@dataclass(slots=True)
class Diff:
    """One shadow comparison whose answers differed."""

    id: int
    route: str
    at: float
    method: str
    target: str
    headers: list[tuple[str, str]]
    monolith_url: str
    candidate_url: str
    monolith: dict[str, Any]
    candidate: dict[str, Any]
    paths: list[str]
    noise: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def curl(self) -> dict[str, str]:
        """Return curl commands that replay the request against each side.

        The headers are the stored ones: a redacted ``Authorization: Bearer <redacted>`` needs a
        token of the operator's own put in its place.
        """

        def command(base: str) -> str:
            parts = ["curl", "-sS", "-i", "-X", self.method]
            for name, value in self.headers:
                parts += ["-H", f"{name}: {value}"]
            parts.append(base + self.target)
            return " ".join(shlex.quote(p) for p in parts)

        return {"monolith": command(self.monolith_url), "candidate": command(self.candidate_url)}


def answer_dict(answer: tuple[int, Any, bytes], redactor: Redactor) -> dict[str, Any]:
    status, headers, body = answer
    text = body.decode("utf-8", errors="replace")
    return {"status": status, "headers": redactor.header_dict(headers), "body": redactor.body(text)}


class DiffStore:
    """The latest diffs per route, and lookup by id."""

    def __init__(self, per_route: int = 100):
        self.per_route = per_route
        self._by_route: dict[str, deque[Diff]] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, diff: Diff) -> None:
        self._by_route.setdefault(diff.route, deque(maxlen=self.per_route)).append(diff)

    def list(self, route: str | None = None) -> list[Diff]:
        if route is not None:
            return list(self._by_route.get(route, ()))
        return [d for q in self._by_route.values() for d in q]

    def get(self, diff_id: int) -> Diff | None:
        for queue in self._by_route.values():
            for diff in queue:
                if diff.id == diff_id:
                    return diff
        return None
