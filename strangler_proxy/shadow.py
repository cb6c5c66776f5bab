"""Shadow traffic: mirror safe requests to the candidate off the request path and compare.

* Supports: GET, HEAD, OPTIONS only (writes reach the new half through events, never blindly).
* Off the request path: the client already has the monolith's answer when the mirror starts.
* Bounded: at most `concurrency` mirrors in flight, each counted until it is done, its settle
  retries included; beyond that a mirror is skipped and counted, so a slow candidate never
  slows users or piles up work.
* Noise learning: a sample (``compare.noise_sample``) of requests also goes a second time to the
  monolith; paths that differ between the two monolith answers are learned as the route's noise.
* Settling (``compare.settle_ms``): a differing answer is asked of both halves again after that
  delay and recorded only if it still differs, so a read that overtook its write's event (the
  candidate learns writes through events) is not counted against the candidate.
* Diffs are kept in memory, the latest ``per_route`` per route, with the request, both answers
  and the differing paths, after the route's deny-list (redaction.py) is applied: a stored diff,
  and the curl command that replays it, never hold a token, a cookie, a signed identity or a
  secret body field. Comparison itself runs on the answers as they came.
* The candidate receives an identity signed for itself, never the monolith's.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shlex
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .compare import compare_responses, generalise
from .headers import SHADOW
from .interfaces import Answer3 as Answer
from .interfaces import Upstreams
from .metrics import Metrics
from .redaction import Redactor
from .routes import MONOLITH, Route


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


def _answer_dict(answer: Answer, redactor: Redactor) -> dict[str, Any]:
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


#: How many times a differing answer is asked again within its route's `settle_ms`.
SETTLE_TRIES = 3


class ShadowRunner:
    """Schedule mirrors within a concurrency cap and record their comparisons."""

    def __init__(
        self, *, upstreams: Upstreams, metrics: Metrics, redactors: Callable[[Route], Redactor],
        monolith_url: Callable[[], str], concurrency: int,
    ):  # fmt: skip
        self.upstreams, self.metrics = upstreams, metrics
        self.redactors, self.monolith_url = redactors, monolith_url
        self.concurrency = concurrency
        self.in_flight = 0
        self.noise: dict[str, set[str]] = {}
        self.store = DiffStore()
        self._tasks: set[asyncio.Task] = set()

    def submit(self, *, route: Route, method: str, target: str, headers, primary: Answer) -> str:
        """Start a mirror of the request unless the cap is reached; return the outcome."""
        metrics = self.metrics
        if self.in_flight >= self.concurrency:
            metrics.shadow[(route.name, "skipped")] += 1
            return "skipped"
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(
            self._run(route=route, method=method, target=target, headers=headers, primary=primary)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return "mirrored"

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for mirrors in flight (tests and shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def _settled(self, *, route: Route, method, target, headers, candidate_headers, noise,
                       found):  # fmt: skip
        """Ask again within `settle_ms`; return what still differs (nothing if it caught up).

        The candidate learns writes late, and meanwhile the monolith may take new ones: it has
        caught up when an answer of it matches any answer the monolith gave in the window (the
        one the client got, or a later one). A wrong answer matches none of them.
        """
        paths, first, candidate, candidate_url = found
        seen = [first]
        for _ in range(SETTLE_TRIES):
            await asyncio.sleep(route.compare.settle_ms / 1000 / SETTLE_TRIES)
            try:
                candidate, candidate_url = await self.upstreams.fetch(
                    service=route.service, method=method, target=target,
                    headers=candidate_headers, route=route,
                )  # fmt: skip
                for primary in seen:
                    if not compare_responses(
                        rules=route.compare, noise=noise, expected=primary, actual=candidate
                    )[0]:
                        return [], primary, candidate, candidate_url
                primary, _ = await self.upstreams.fetch(
                    service=MONOLITH, method=method, target=target, headers=headers, route=route
                )
            except Exception:  # what was found stands when asking again fails
                return found
            seen.append(primary)
            paths, _ = compare_responses(
                rules=route.compare, noise=noise, expected=primary, actual=candidate
            )
            if not paths:
                return paths, primary, candidate, candidate_url
        return paths, seen[-1], candidate, candidate_url

    async def _run(
        self, *, route: Route, method: str, target: str, headers, primary: Answer
    ) -> None:
        try:
            await self._mirror(
                route=route, method=method, target=target, headers=headers, primary=primary
            )
        finally:
            self.in_flight -= 1  # only now: the cap holds for settle retries too

    async def _mirror(
        self, *, route: Route, method: str, target: str, headers, primary: Answer
    ) -> None:
        metrics = self.metrics
        # The identity, if any, was signed for the monolith: the candidate gets its own.
        retarget = getattr(headers, "retarget", None)
        candidate_headers = (retarget(route.service) if retarget else headers).copy()
        candidate_headers[SHADOW] = "1"
        headers = headers.copy()
        headers[SHADOW] = "1"
        try:
            noise = self.noise.setdefault(route.name, set())
            if route.compare.noise_sample and random.random() < route.compare.noise_sample:
                again, _ = await self.upstreams.fetch(
                    service=MONOLITH, method=method, target=target, headers=headers, route=route
                )
                learned, _ = compare_responses(rules=route.compare, expected=primary, actual=again)
                noise.update(generalise(p) for p in learned if p != "status")
            candidate, candidate_url = await self.upstreams.fetch(
                service=route.service, method=method, target=target, headers=candidate_headers,
                route=route,
            )  # fmt: skip
            paths, noisy = compare_responses(
                rules=route.compare, noise=noise, expected=primary, actual=candidate
            )
        except Exception:  # a failing candidate is an outcome to count, never the user's problem
            metrics.shadow[(route.name, "error")] += 1
            return
        if paths and route.compare.settle_ms:
            paths, primary, candidate, candidate_url = await self._settled(
                route=route, method=method, target=target, headers=headers,
                candidate_headers=candidate_headers, noise=noise,
                found=(paths, primary, candidate, candidate_url),
            )  # fmt: skip
        if not paths:
            metrics.shadow[(route.name, "same")] += 1
            return
        metrics.shadow[(route.name, "diff")] += 1
        redactor = self.redactors(route)
        shadow_header = SHADOW.lower()
        self.store.add(
            Diff(
                id=self.store.next_id(),
                route=route.name,
                at=time.time(),
                method=method,
                target=target,
                headers=redactor.header_pairs(
                    (k, v) for k, v in headers.items() if k.lower() != shadow_header
                ),
                monolith_url=self.monolith_url(),
                candidate_url=candidate_url,
                monolith=_answer_dict(primary, redactor),
                candidate=_answer_dict(candidate, redactor),
                paths=paths,
                noise=noisy,
            )
        )
