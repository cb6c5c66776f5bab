"""Shadow traffic: mirror safe requests to the candidate off the request path and compare.

* Supports: GET, HEAD, OPTIONS only (writes reach the new half through events, never blindly).
* Off the request path: the client already has the monolith's answer when the mirror starts.
* On callbacks: a GET/OPTIONS mirror with an idle pooled connection to the candidate (and, for a
  noise sample, to the monolith) is sent and read on the connection's callbacks (fastclient
  ``Collected``), like the fast path: no task. Answers that are not small and framed, settling,
  and mirrors without an idle connection run in a task (``Upstreams.fetch``).
* Bounded: at most `concurrency` mirrors in flight, each counted until it is done, its settle
  retries included; beyond that a mirror is skipped and counted, so a slow candidate never
  slows users or piles up work.
* Noise learning: a sample (``compare.noise_sample``) of requests also goes a second time to the
  monolith; paths that differ between the two monolith answers are learned as the route's noise.
* Settling (``compare.settle_ms``): a differing answer is asked of both halves again after that
  delay and recorded only if it still differs, so a read that overtook its write's event (the
  candidate learns writes through events) is not counted against the candidate.
* Diffs are kept in memory (diffs.py), the latest 100 per route, after the route's deny-list
  is applied. Comparison itself runs on the answers as they came.
* The candidate receives an identity signed for itself, never the monolith's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from .compare import compare_responses, generalise
from .diffs import Diff, DiffStore, answer_dict
from .fastclient import FAST_METHODS, Collected, FastPool, LinesHeaders
from .headers import SHADOW
from .interfaces import Answer3 as Answer
from .interfaces import Upstreams
from .metrics import Metrics
from .redaction import Redactor
from .routes import MONOLITH, Route
from .upstreams import CLOSED, Instance, NoInstance, UpstreamPools

#: How many times a differing answer is asked again within its route's `settle_ms`.
SETTLE_TRIES = 3
_SHADOW_LINE = f"{SHADOW}: 1\r\n".encode()
_SHADOW_NAME = SHADOW.lower()


class ShadowRunner:
    """Schedule mirrors within a concurrency cap and record their comparisons."""

    def __init__(
        self, *, upstreams: Upstreams, metrics: Metrics, redactors: Callable[[Route], Redactor],
        monolith_url: Callable[[], str], concurrency: int, pools: UpstreamPools | None = None,
        fast: FastPool | None = None, body_limit: int = 1 << 20,
    ):  # fmt: skip
        self.upstreams, self.metrics = upstreams, metrics
        self.redactors, self.monolith_url = redactors, monolith_url
        self.concurrency = concurrency
        self.pools, self.fast, self.body_limit = pools, fast, body_limit
        self.in_flight = 0
        self.noise: dict[str, set[str]] = {}
        self.store = DiffStore()
        self._tasks: set[asyncio.Task] = set()
        self._asked: set[_Asked] = set()  # mirrors on callbacks, awaiting an answer
        self.on_callbacks = 0  # mirrors sent on callbacks (tests read it)

    def submit(self, *, route: Route, method: str, target: str, headers, primary: Answer) -> str:
        """Start a mirror of the request unless the cap is reached; return the outcome."""
        if self.in_flight >= self.concurrency:
            self.metrics.shadow[(route.name, "skipped")] += 1
            return "skipped"
        self.in_flight += 1
        if not self._on_callbacks(route, method, target, headers, primary):
            self._spawn(
                self._run(
                    route=route, method=method, target=target, headers=headers, primary=primary
                )
            )
        return "mirrored"

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for mirrors in flight (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while (self._tasks or self._asked) and time.monotonic() < deadline:
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=deadline - time.monotonic())
            else:
                await asyncio.sleep(0.01)

    def expire(self) -> None:
        """Give up on mirrors on callbacks whose answer is later than their route allows."""
        now = time.perf_counter()
        for asked in list(self._asked):
            if now - asked.sent.started > asked.mirror.route.timeout:
                asked.sent.fail(TimeoutError("the mirror's answer came too late"))

    def abandon(self) -> None:
        """Give up on every mirror still waiting for an answer on callbacks (closing)."""
        for asked in list(self._asked):
            asked.sent.fail(ConnectionAbortedError("the proxy is closing"))

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ on callbacks
    def _on_callbacks(self, route: Route, method: str, target: str, headers, primary) -> bool:
        """Send the mirror on idle pooled connections; return False (nothing sent) if it cannot."""
        fast, pools = self.fast, self.pools
        if fast is None or pools is None or method not in FAST_METHODS:
            return False
        block, retarget = getattr(headers, "block", None), getattr(headers, "retarget", None)
        pool = pools.get(route.service)
        if block is None or retarget is None or pool is None:
            return False
        candidate = _idle_instance(pool)
        if candidate is None:
            return False
        again = None
        if route.compare.noise_sample and random.random() < route.compare.noise_sample:
            again = _idle_instance(pools.get(MONOLITH))
            if again is None:
                return False
        first = b"%s %s HTTP/1.1\r\n" % (method.encode(), target.encode("latin-1"))
        preserve = headers.preserve_host
        mirror = _Mirror(self, route, method, target, headers, primary)
        started = time.perf_counter()
        head = b"".join(
            (first, b"" if preserve else candidate.host_line, retarget(route.service).block(),
             _SHADOW_LINE, b"\r\n")
        )  # fmt: skip
        if not mirror.ask("candidate", candidate, head, started):
            return False
        if again is not None:
            head = b"".join(
                (first, b"" if preserve else again.host_line, block(), _SHADOW_LINE, b"\r\n")
            )  # fmt: skip
            if not mirror.ask("again", again, head, started):
                mirror.waiting.discard("again")  # no idle connection after all: no sample now
        mirror.asked = True
        self.on_callbacks += 1
        return True

    # ------------------------------------------------------------------ in a task
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
        # The identity, if any, was signed for the monolith: the candidate gets its own.
        retarget = getattr(headers, "retarget", None)
        candidate_headers = (retarget(route.service) if retarget else headers).copy()
        candidate_headers[SHADOW] = "1"
        headers = headers.copy()
        headers[SHADOW] = "1"
        again = None
        try:
            if route.compare.noise_sample and random.random() < route.compare.noise_sample:
                again, _ = await self.upstreams.fetch(
                    service=MONOLITH, method=method, target=target, headers=headers, route=route
                )
            candidate, candidate_url = await self.upstreams.fetch(
                service=route.service, method=method, target=target, headers=candidate_headers,
                route=route,
            )  # fmt: skip
        except Exception:  # a failing candidate is an outcome to count, never the user's problem
            self.metrics.shadow[(route.name, "error")] += 1
            return
        found = self._compare(route, primary, candidate, candidate_url, again)
        if found is not None:
            await self._settle_and_record(route, method, target, headers, candidate_headers, found)

    # ------------------------------------------------------------------ either way
    def _compare(self, route: Route, primary, candidate, candidate_url: str, again):
        """Learn noise from `again`, compare; count a match and return None, else what differs."""
        rules = route.compare
        noise = self.noise.setdefault(route.name, set())
        if again is not None:
            learned, _ = compare_responses(rules=rules, expected=primary, actual=again)
            noise.update(generalise(p) for p in learned if p != "status")
        try:
            paths, noisy = compare_responses(
                rules=rules, noise=noise, expected=primary, actual=candidate
            )
        except Exception:  # an answer the comparison cannot read is counted, never raised
            self.metrics.shadow[(route.name, "error")] += 1
            return None
        if not paths:
            self.metrics.shadow[(route.name, "same")] += 1
            return None
        return paths, noisy, primary, candidate, candidate_url

    async def _settle_and_record(
        self, route: Route, method: str, target: str, headers, candidate_headers, found
    ) -> None:
        paths, noisy, primary, candidate, candidate_url = found
        if route.compare.settle_ms:
            noise = self.noise.setdefault(route.name, set())
            paths, primary, candidate, candidate_url = await self._settled(
                route=route, method=method, target=target, headers=headers,
                candidate_headers=candidate_headers, noise=noise,
                found=(paths, primary, candidate, candidate_url),
            )  # fmt: skip
            if not paths:
                self.metrics.shadow[(route.name, "same")] += 1
                return
        self._record(route, method, target, headers, (paths, noisy, primary, candidate,
                                                      candidate_url))  # fmt: skip

    def _record(self, route: Route, method: str, target: str, headers, found) -> None:
        paths, noisy, primary, candidate, candidate_url = found
        self.metrics.shadow[(route.name, "diff")] += 1
        redactor = self.redactors(route)
        self.store.add(
            Diff(
                id=self.store.next_id(), route=route.name, at=time.time(), method=method,
                target=target,
                headers=redactor.header_pairs(
                    (k, v) for k, v in headers.items() if k.lower() != _SHADOW_NAME
                ),
                monolith_url=self.monolith_url(), candidate_url=candidate_url,
                monolith=answer_dict(primary, redactor), candidate=answer_dict(candidate, redactor),
                paths=paths, noise=noisy,
            )
        )  # fmt: skip

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


def _idle_instance(pool) -> Instance | None:
    """Return the instance a mirror goes to if it can go on callbacks (breaker closed), or None."""
    if pool is None:
        return None
    try:
        instance = pool.pick()
    except NoInstance:
        return None
    if instance.breaker.state != CLOSED:
        instance.breaker.probing = False  # pick() claimed a probe: the task path sends it
        return None
    return instance


class _Asked:
    """One request of a mirror on callbacks: which answer it is, to whom, on what."""

    __slots__ = ("instance", "mirror", "sent", "which")

    def __init__(self, mirror: _Mirror, which: str, instance: Instance):
        self.mirror, self.which, self.instance = mirror, which, instance
        self.sent: Collected | None = None

    def answered(self, status: int | None, lines, body) -> None:
        """The connection's verdict (fastclient.Collected): an answer, a response, an error."""
        mirror, runner = self.mirror, self.mirror.runner
        runner._asked.discard(self)
        instance = self.instance
        if status is None:  # no answer: the mirror is an error
            instance.outstanding -= 1
            instance.breaker.record(False, time.monotonic())
            kind = "timeout" if isinstance(body, TimeoutError) else "connect"
            runner.metrics.errors[(mirror.route.name, mirror.service(self.which), kind)] += 1
            return mirror.failed(self.which)
        if lines is None:  # an answer to read on (large or streamed): in a task
            return runner._spawn(self._read_rest(status, body))
        instance.outstanding -= 1
        if instance.judge(status):
            runner.metrics.errors[(mirror.route.name, mirror.service(self.which), "5xx")] += 1
        mirror.got(self.which, (status, LinesHeaders(lines), body), instance.url)

    async def _read_rest(self, status: int, response) -> None:
        mirror, instance = self.mirror, self.instance
        try:
            body = await response.read(mirror.runner.body_limit + 1)
            headers = {k.lower(): v for k, v in response.headers.items()}
        except Exception:
            response.release()
            instance.outstanding -= 1
            return mirror.failed(self.which)
        response.release()
        instance.outstanding -= 1
        if instance.judge(status):
            errors = mirror.runner.metrics.errors
            errors[(mirror.route.name, mirror.service(self.which), "5xx")] += 1
        mirror.got(self.which, (status, headers, body), instance.url)


class _Mirror:
    """A mirror on callbacks: the candidate's answer (and the monolith's again, for noise)."""

    __slots__ = ("answers", "asked", "candidate_url", "failure", "headers", "method", "primary",
                 "route", "runner", "target", "waiting")  # fmt: skip

    def __init__(self, runner: ShadowRunner, route: Route, method: str, target: str, headers,
                 primary):  # fmt: skip
        self.runner, self.route, self.method, self.target = runner, route, method, target
        self.headers, self.primary = headers, primary
        self.answers: dict[str, Any] = {}
        self.waiting: set[str] = set()
        self.candidate_url = ""
        self.failure = False
        self.asked = False  # every request is sent: the last answer decides

    def service(self, which: str) -> str:
        return self.route.service if which == "candidate" else MONOLITH

    def ask(self, which: str, instance: Instance, head: bytes, started: float) -> bool:
        """Send one request on an idle connection; return False if none was idle."""
        asked = _Asked(self, which, instance)
        self.waiting.add(which)
        runner = self.runner
        sent = runner.fast.send(
            instance.url, head, limit=min(runner.body_limit, 64 * 1024),
            read_timeout=self.route.timeout, done=asked.answered, started=started,
        )  # fmt: skip
        if sent is None:
            self.waiting.discard(which)
            return False
        instance.outstanding += 1
        asked.sent = sent
        runner._asked.add(asked)
        return True

    def got(self, which: str, answer, url: str) -> None:
        self.answers[which] = answer
        if which == "candidate":
            self.candidate_url = url
        self.waiting.discard(which)
        self.maybe_done()

    def failed(self, which: str) -> None:
        self.failure = self.failure or which == "candidate"
        self.waiting.discard(which)
        self.maybe_done()

    def maybe_done(self) -> None:
        if self.waiting or not self.asked:
            return
        runner, route = self.runner, self.route
        self.asked = False  # once
        if self.failure:
            runner.metrics.shadow[(route.name, "error")] += 1
            runner.in_flight -= 1
            return
        found = runner._compare(
            route, self.primary, self.answers["candidate"], self.candidate_url,
            self.answers.get("again"),
        )  # fmt: skip
        if found is None:
            runner.in_flight -= 1
            return
        runner._spawn(self._finish(found))

    async def _finish(self, found) -> None:
        runner = self.runner
        try:
            headers = self.headers.copy()
            headers[SHADOW] = "1"
            candidate_headers = self.headers.retarget(self.route.service).copy()
            candidate_headers[SHADOW] = "1"
            await runner._settle_and_record(
                self.route, self.method, self.target, headers, candidate_headers, found
            )
        finally:
            runner.in_flight -= 1
