"""Gates: the evidence a rollout stage needs before traffic moves, each with figure and limit.

* `contract`: the black-box contract suite (`tests/contract`) run through the proxy; holds when
  failures <= `max_failures`. On failure: the failed tests, and the command to rerun them.
* `shadow_diff`: per route, the proxy's shadow comparisons (`/_strangler/diffs?route=R`); holds
  with at least `min_compared` compared and a diff rate <= `max_rate`. On failure: the latest
  diffs, and where to replay them (`/_strangler/diffs/ID/curl`).
* `reconcile`: the service's reconcile command (counts and a digest per row, both halves); holds
  when no difference persists over `attempts` runs `settle_s` apart. On failure: each row.
* `outbox_lag`: unsent outbox rows of each half plus the depth of each consumer's queue; holds
  with <= `max_messages` behind and the oldest unsent row <= `max_age_s` old. On failure:
  `manage.py outbox_status`, the relay and consumer logs, the dead letters.

Reconcile under traffic: a payment written a moment ago may not have crossed to the other half
yet. A difference counts only if it persists across consecutive runs (the same row, the same
kind), with the half's events given `settle_s` to land in between; a real gap persists, a
payment in flight does not. With no traffic the first exact run decides at once.

Every evaluation returns a `GateResult` with the figure, the threshold, by how much it missed,
and what to look at. Evaluators get a `GateContext`; tests swap `evaluate` for a fake.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .admin import AdminCallError, ProxyAdmin
from .databases import MONOLITH, service_environment
from .stepfile import Gate, Step

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MONOLITH_SETTINGS_MODULE = "monolith.settings"


@dataclass
class GateResult:
    """One gate's verdict, with its figure against its threshold."""

    gate: str
    kind: str
    ok: bool
    figure: str
    threshold: str
    by: str = ""
    look_at: str = ""
    details: list[str] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        text = f"{verdict} {self.gate:<12} {self.figure}  (limit: {self.threshold})"
        if not self.ok and self.by:
            text += f"; {self.by}"
        return text

    def explain(self) -> list[str]:
        """Return the verdict line, then (on failure) the details and what to look at."""
        lines = [self.line()]
        if not self.ok:
            lines += [f"    {detail}" for detail in self.details[:10]]
            if self.look_at:
                lines.append(f"    look at: {self.look_at}")
        return lines


@dataclass
class GateContext:
    """What evaluators need: the step, the proxy, and how to run a half's commands."""

    step: Step
    proxy: ProxyAdmin
    environ: dict[str, str]
    var_dir: Path
    say: Callable[[str], None] = print

    def settings_of(self, service: str) -> str:
        if service == MONOLITH:
            return MONOLITH_SETTINGS_MODULE
        declared = self.step.service(service)
        if declared is None:
            raise KeyError(f"step {self.step.number} declares no service {service!r}")
        return declared.settings

    def half_env(self, service: str) -> dict[str, str]:
        """Return the environment a process of `service` runs with."""
        env = dict(self.environ)
        if service == MONOLITH:
            env |= {"DJANGO_SETTINGS_MODULE": MONOLITH_SETTINGS_MODULE}
            env["STRANGLER_VAR_DIR"] = str(Path(self.var_dir).resolve())
            return env
        return env | service_environment(
            service=service,
            settings=self.settings_of(service),
            environ=self.environ,
            var_dir=self.var_dir,
        )

    def run_half(
        self, service: str, argv: list[str], *, timeout: float = 300, capture: bool = True
    ) -> subprocess.CompletedProcess:
        """Run `argv` (a python module or manage.py command line) in the half's settings."""
        return subprocess.run(  # noqa: S603 (argv from the step file)
            [sys.executable, *argv],
            cwd=PROJECT_ROOT,
            env=self.half_env(service),
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )


# ---------------------------------------------------------------- the evaluators


def _contract(gate: Gate, ctx: GateContext) -> GateResult:
    options = gate.options
    limit = options["max_failures"]
    env = dict(ctx.environ) | {"STRANGLER_CONTRACT_URL": ctx.proxy.base_url}
    env.pop("DATABASE_URL", None)  # black-box: the suite must not touch any database
    argv = [sys.executable, "-m", "pytest", *options["paths"], "-q", "-p", "no:cacheprovider"]
    ctx.say(f"  contract: running {' '.join(options['paths'])} against {ctx.proxy.base_url} ...")
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=options["timeout_s"],
            check=False,
        )
    except subprocess.TimeoutExpired:
        return GateResult(
            gate.name, gate.kind, False, f"did not finish in {options['timeout_s']} s",
            f"{limit} failures", look_at="run the suite by hand: "
            f"STRANGLER_CONTRACT_URL={ctx.proxy.base_url} pytest {' '.join(options['paths'])}",
        )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    counts = {
        word: int(number)
        for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary)
    }
    failures = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    passed = counts.get("passed", 0)
    broken = done.returncode not in (0, 1) and not failures
    ok = failures <= limit and not broken and passed > 0
    failed_tests = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    return GateResult(
        gate=gate.name,
        kind=gate.kind,
        ok=ok,
        figure=f"{passed} passed, {failures} failed in {time.monotonic() - started:.0f} s",
        threshold=f"at most {limit} failed",
        by="" if ok else f"{failures - limit} failure(s) too many" if failures else summary,
        look_at=(
            f"STRANGLER_CONTRACT_URL={ctx.proxy.base_url} pytest {' '.join(options['paths'])} -x"
        ),
        details=failed_tests or ([summary] if not ok else []),
        measured={"passed": passed, "failed": failures},
    )


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _shadow_diff(gate: Gate, ctx: GateContext) -> GateResult:
    max_rate, min_compared = gate.options["max_rate"], gate.options["min_compared"]
    worst: GateResult | None = None
    figures = []
    for route in ctx.step.routes:
        if route.methods and not set(route.methods) & SAFE_METHODS:
            # Writes are never mirrored (their effects reach the candidate by events): such a
            # route has no shadow evidence to give, and reconcile judges its writes.
            figures.append(f"{route.name}: writes only, nothing mirrored")
            continue
        data = ctx.proxy.diffs(route.name)
        compared, rate = int(data["compared"]), float(data["diff_rate"])
        figures.append(f"{route.name}: {rate:.2%} of {compared}")
        look = (
            f"GET {ctx.proxy.base_url}/_strangler/diffs?route={route.name} (then "
            f"/_strangler/diffs/ID and /_strangler/diffs/ID/curl), or the dashboard "
            f"{ctx.proxy.base_url}/_strangler/"
        )
        details = [f"diff #{d['id']} {d['method']} {d['target']}: {', '.join(d['paths'])}"
                   for d in data.get("latest", [])[-5:]]  # fmt: skip
        if compared < min_compared:
            worst = worst or GateResult(
                gate.name, gate.kind, False, f"{route.name}: only {compared} compared",
                f"at least {min_compared} compared, diff rate <= {max_rate:.2%}",
                by=f"{min_compared - compared} more compared request(s) needed",
                look_at="send read traffic (GET) through the proxy while the route is in "
                f"shadow mode; {look}", details=details,
            )  # fmt: skip
        elif rate > max_rate:
            worst = GateResult(
                gate.name, gate.kind, False, f"{route.name}: diff rate {rate:.2%} of {compared}",
                f"<= {max_rate:.2%} over at least {min_compared}",
                by=f"over by {(rate - max_rate) * 100:.2f} points ({data['diffs']} diffs)",
                look_at=look, details=details,
            )  # fmt: skip
    if worst:
        return worst
    return GateResult(
        gate.name, gate.kind, True, "; ".join(figures) or "no routes",
        f"<= {max_rate:.2%} over at least {min_compared}",
    )  # fmt: skip


def _reconcile_once(gate: Gate, ctx: GateContext) -> dict[str, Any]:
    service = gate.options["service"]
    done = ctx.run_half(service, ["manage.py", *gate.options["command"]])
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise GateError(
            f"reconcile did not print JSON (exit {done.returncode}): "
            f"{(done.stderr or done.stdout)[-500:]}"
        ) from None


def _row(difference: dict[str, Any]) -> str:
    """Return the row a difference names: its `<entity>_id` (payment_id, user_id, order_id)."""
    for key, value in difference.items():
        if key.endswith("_id"):
            return f"{key.removesuffix('_id')} {value}"
    raise GateError(f"a reconcile difference names no row (no *_id key): {difference!r}")


def _difference_key(difference: dict[str, Any]) -> tuple[str, str]:
    return (difference["kind"], _row(difference))


def _describe(difference: dict[str, Any]) -> str:
    if difference["kind"] != "mismatch":
        return f"{difference['kind']}: {_row(difference)}"
    fields = ", ".join(
        f"{name} monolith={v['monolith']!r} service={v['service']!r}"
        for name, v in difference.get("fields", {}).items()
    )
    return f"mismatch: {_row(difference)}: {fields}"


def _reconcile(gate: Gate, ctx: GateContext) -> GateResult:
    attempts, settle = gate.options["attempts"], gate.options["settle_s"]
    service = gate.options["service"]
    persistent: dict[tuple[str, str], dict] | None = None
    report: dict[str, Any] = {}
    for attempt in range(1, attempts + 1):
        report = _reconcile_once(gate, ctx)
        found = {_difference_key(d): d for d in report["differences"]}
        persistent = (
            found if persistent is None else {k: found[k] for k in persistent if k in found}
        )
        if not persistent:
            break
        if attempt < attempts:
            ctx.say(f"  reconcile: {len(persistent)} difference(s); settling {settle:g} s ...")
            time.sleep(settle)
    assert persistent is not None
    counts = f"monolith {report['monolith_count']}, {service} {report['service_count']}"
    ok = not persistent
    return GateResult(
        gate.name, gate.kind, ok, f"{len(persistent)} difference(s) ({counts})", "0 differences",
        by="" if ok else f"{len(persistent)} row(s) differ after {attempts} runs",
        look_at=f"manage.py {' '.join(gate.options['command'][:1])} "
        f"--settings {ctx.settings_of(service)} (MONOLITH_DATABASE_URL set), and the consumers' "
        "logs and dead letters (manage.py outbox_dlq)",
        details=[_describe(d) for d in persistent.values()],
        measured={"differences": len(persistent), "monolith": report["monolith_count"],
                  "service": report["service_count"]},
    )  # fmt: skip


def outbox_lag_measure(gate: Gate, ctx: GateContext) -> dict[str, Any]:
    """Return the backlog of every half and the depth of every consumer queue of `gate`."""
    consumers = list(gate.options["consumers"])
    services = list(gate.options["services"])

    def measure(index: int) -> dict[str, Any]:
        # Queue depths are the broker's: asking one half is enough.
        args = [f"--consumer={c}" for c in consumers] if index == 0 else []
        service = services[index]
        done = ctx.run_half(service, ["-m", "migrations_playbook.djangoside", "lag", *args])
        if done.returncode != 0:
            raise GateError(f"cannot measure the outbox of {service}: {done.stderr[-500:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    # One Django process per half, side by side: each takes a second to start.
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        found = list(pool.map(measure, range(len(services))))
    pending = {
        service: figures["pending"] for service, figures in zip(services, found, strict=True)
    }
    oldest = max((figures["oldest_pending_age_s"] for figures in found), default=0.0)
    queues: dict[str, int | None] = {}
    for figures in found:
        queues |= figures["queues"]
    known = [n for n in queues.values() if n is not None]
    total = sum(pending.values()) + sum(known)
    return {"pending": pending, "oldest_s": oldest, "queues": queues, "messages": total}


def _outbox_lag(gate: Gate, ctx: GateContext) -> GateResult:
    limit, max_age = gate.options["max_messages"], gate.options["max_age_s"]
    lag = outbox_lag_measure(gate, ctx)
    ok = lag["messages"] <= limit and lag["oldest_s"] <= max_age
    parts = [f"unsent {service} {n}" for service, n in lag["pending"].items()]
    parts += [f"queue {c} {'?' if n is None else n}" for c, n in lag["queues"].items()]
    by = []
    if lag["messages"] > limit:
        by.append(f"{lag['messages'] - limit} message(s) over")
    if lag["oldest_s"] > max_age:
        by.append(f"oldest unsent {lag['oldest_s'] - max_age:.1f} s over")
    return GateResult(
        gate.name, gate.kind, ok,
        f"{lag['messages']} message(s) behind, oldest unsent {lag['oldest_s']:.1f} s "
        f"({', '.join(parts)})",
        f"<= {limit} messages, <= {max_age:g} s",
        by="; ".join(by),
        look_at="manage.py outbox_status (in each half's settings): is each relay and consumer "
        "running (`strangler up` log), any dead letters (manage.py outbox_dlq list)?",
        measured=lag,
    )  # fmt: skip


class GateError(RuntimeError):
    """A gate could not be measured at all (a command failed, the proxy is unreachable)."""


EVALUATORS: dict[str, Callable[[Gate, GateContext], GateResult]] = {
    "contract": _contract,
    "shadow_diff": _shadow_diff,
    "reconcile": _reconcile,
    "outbox_lag": _outbox_lag,
}


def gate_evaluate(gate: Gate, ctx: GateContext) -> GateResult:
    """Evaluate one gate; a gate that cannot be measured fails, saying why."""
    try:
        return EVALUATORS[gate.kind](gate, ctx)
    except (GateError, AdminCallError, subprocess.TimeoutExpired, OSError, KeyError) as exc:
        return GateResult(
            gate.name, gate.kind, False, "could not be measured", "-", by=str(exc),
            look_at="the error above",
        )  # fmt: skip
