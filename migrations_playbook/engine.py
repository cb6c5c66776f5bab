"""The playbook engine: plan, apply, verify and roll back a step, against a running stack.

`plan` and `apply` share one list of actions (`step_plan`), so the plan printed is exactly what
apply does. Apply is resumable and idempotent: what is done is recorded in the var dir
(`state.py`) and on the proxy (the route modes), and a second run finds nothing left to do.

Actions, in order:

1. `table`: add the step's services and routes (mode `monolith`) to the proxy's table, if absent;
2. `subscribe`: bind each subscription's queue, so events wait for its consumer;
3. `backfill`: run each backfill command in its service's settings (resumable, with progress);
4. `advance`: per rollout stage after the current one, evaluate the stage's gates, then switch
   every route of the step to the stage's mode. With `auto`, the engine then watches the stage
   for its dwell time, re-checking the stage's `watch` gates; a gate that fails (entering or
   while watching) stops the rollout, and with `auto` rolls the step back by itself.

Rollback switches every route of the step to `monolith` at once, then waits until the outbox lag
of both halves is zero (the service's last writes have reached the monolith) and reconcile is
exact, printing the figures while it waits.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import state as st
from .admin import AdminCallError, ProxyAdmin
from .gates import GateContext, GateError, GateResult, gate_evaluate, outbox_lag_measure
from .stepfile import Stage, Step
from .table import CATCH_ALL, table_write


@dataclass(frozen=True)
class Action:
    """One thing apply does; `describe()` is the plan's line for it."""

    kind: str  # table | subscribe | backfill | advance
    text: str
    stage: Stage | None = None
    index: int = 0
    key: str = ""  # the subscription's consumer, the backfill's command line

    def describe(self) -> str:
        return self.text


class PlaybookError(RuntimeError):
    """The playbook cannot go on; the message says why and what to do."""


Evaluate = Callable[..., GateResult]


class Engine:
    """Run the playbook's commands for the steps loaded from the step files."""

    def __init__(
        self,
        *,
        steps: dict[int, Step],
        proxy: ProxyAdmin,
        var_dir: Path,
        environ: dict[str, str],
        say: Callable[[str], None] = print,
        evaluate: Evaluate = gate_evaluate,
        sleep: Callable[[float], None] = time.sleep,
        run_half: Callable[..., subprocess.CompletedProcess] | None = None,
    ):
        self.steps = steps
        self.proxy = proxy
        self.var_dir = Path(var_dir)
        self.environ = environ
        self.say = say
        self.evaluate = evaluate
        self.sleep = sleep
        # How backfill and subscribe commands run in a half; tests pass a fake.
        self.run_half = run_half

    # ------------------------------------------------------------ helpers

    def step(self, number: int) -> Step:
        if number not in self.steps:
            known = ", ".join(str(n) for n in self.steps)
            raise PlaybookError(f"unknown step {number}; the steps that exist are: {known}")
        return self.steps[number]

    def context(self, step: Step) -> GateContext:
        return GateContext(
            step=step, proxy=self.proxy, environ=self.environ, var_dir=self.var_dir, say=self.say
        )

    def live_stage(self, step: Step) -> tuple[int, dict[str, str]]:
        """Return the rollout index the step's routes are at on the proxy (least advanced)."""
        routes = self.proxy.route_modes()
        modes = {r.name: routes[r.name]["mode"] for r in step.routes if r.name in routes}
        if not step.routes or len(modes) < len(step.routes):
            return -1, modes
        return min(step.stage_index(mode) for mode in modes.values()), modes

    def _service_urls(self) -> dict[str, str]:
        services = self.proxy.routes().get("services", {})
        return {
            name: service["instances"][0]
            for name, service in services.items()
            if service.get("instances")
        }

    def _table_file_refresh(self, step: Step) -> None:
        """Rewrite the proxy's table file so a restarted stack comes back at this stage."""
        path = self.var_dir / "playbook" / "routes.toml"
        if path.exists():
            table_write(
                path=path, steps=self.steps, upto=step.number, var_dir=self.var_dir,
                service_urls=self._service_urls(),
            )  # fmt: skip

    def _record(self, step: Step, event: str, **details: Any) -> None:
        document = st.state_read(self.var_dir)
        part = st.step_state(document, step.number)
        if "stage" in details:
            part["stage"] = details["stage"]
        for key in ("backfill", "subscriptions"):
            if key in details:
                part[key][details[key]] = "done"
        st.history_add(part, event, **details)
        st.state_write(self.var_dir, document)

    # ------------------------------------------------------------ plan

    def plan(self, number: int, *, to: str | None = None, auto: bool = False) -> list[Action]:
        """Return, in order, every action `apply` would take now."""
        step = self.step(number)
        part = st.step_state(st.state_read(self.var_dir), number)
        actions: list[Action] = []
        routes = self.proxy.route_modes()
        services = self.proxy.routes().get("services", {})
        missing_routes = [r for r in step.routes if r.name not in routes]
        missing_services = [s for s in step.services if s.name not in services]
        if missing_routes or missing_services:
            added = [f"service {s.name} (http://127.0.0.1:{s.port})" for s in missing_services]
            added += [f"route {r.name} ({r.prefix or r.path}) in mode monolith"
                      for r in missing_routes]  # fmt: skip
            actions.append(Action("table", f"add to the proxy's table: {', '.join(added)}"))
        for sub in step.subscriptions:
            if sub.consumer not in part["subscriptions"]:
                actions.append(
                    Action("subscribe", f"bind queue {sub.consumer}.events (consumer "
                           f"{sub.consumer}, in {sub.service}) to {', '.join(sub.events)}",
                           key=sub.consumer)
                )  # fmt: skip
        for job in step.backfill:
            key = " ".join(job.command)
            if key not in part["backfill"]:
                actions.append(
                    Action("backfill", f"backfill: manage.py {key} in {job.service} "
                           "(resumable; progress shown)", key=key)
                )  # fmt: skip
        current = -1 if missing_routes else self.live_stage(step)[0]
        target = len(step.rollout) - 1
        if to is not None:
            target = step.stage_index(to)
            if target < 0:
                modes = ", ".join(s.mode for s in step.rollout)
                raise PlaybookError(f"--to {to!r} is not a stage of step {number}: {modes}")
        names = ", ".join(r.name for r in step.routes)
        for index in range(current + 1, target + 1):
            stage = step.rollout[index]
            gates = ", ".join(stage.gates) or "none"
            text = f"check gates [{gates}], then set {names} to {stage.mode}"
            if auto and stage.dwell_s and index < target:
                watched = [g for g in stage.gates if step.gates[g].watch]
                text += f"; watch {stage.dwell_s:g} s ({', '.join(watched) or 'no watch gates'})"
            actions.append(Action("advance", text, stage=stage, index=index))
        return actions

    # ------------------------------------------------------------ apply

    def apply(
        self,
        number: int,
        *,
        to: str | None = None,
        auto: bool = False,
        dwell: float | None = None,
        interval: float = 5.0,
        rollback_on_failure: bool | None = None,
    ) -> bool:
        """Do every planned action; return True when the step reached its target stage."""
        step = self.step(number)
        rollback_on_failure = auto if rollback_on_failure is None else rollback_on_failure
        with st.state_lock(self.var_dir):
            actions = self.plan(number, to=to, auto=auto)
            if not actions:
                stage = self.live_stage(step)[0]
                where = step.rollout[stage].mode if stage >= 0 else "monolith"
                self.say(f"step {number}: nothing to do (routes at {where})")
                return True
            for position, action in enumerate(actions, 1):
                self.say(f"[{position}/{len(actions)}] {action.describe()}")
                if action.kind == "table":
                    self._table_add(step)
                elif action.kind == "subscribe":
                    self._subscribe(step, action.key)
                elif action.kind == "backfill":
                    self._backfill(step, action.key)
                elif action.kind == "advance":
                    assert action.stage is not None
                    if not self._advance(step, action.stage):
                        if rollback_on_failure:
                            self.say(f"step {number}: a gate failed; rolling back by itself")
                            self._rollback(step)
                        else:
                            self.say(f"step {number}: stopped; fix the above and run apply again")
                        return False
                    last = position == len(actions)
                    wait = action.stage.dwell_s if dwell is None else dwell
                    watching = auto and wait > 0 and not last
                    if watching and not self._watch(step, action.stage, wait, interval):
                        if rollback_on_failure:
                            self.say(f"step {number}: a gate broke; rolling back by itself")
                            self._rollback(step)
                        return False
            self.say(f"step {number}: applied ({actions[-1].describe()})")
            return True

    def _table_add(self, step: Step) -> None:
        table = self.proxy.routes()
        services = {
            name: {key: value for key, value in service.items() if key != "name"}
            for name, service in table.get("services", {}).items()
        }
        for service in step.services:
            services.setdefault(service.name, {"instances": [f"http://127.0.0.1:{service.port}"]})
        routes = [r for r in table["routes"]]
        present = {r["name"] for r in routes}
        added = [r.table_entry("monolith") for r in step.routes if r.name not in present]
        if not any(r.get("prefix") == "/" for r in routes):
            added.append(dict(CATCH_ALL))
        new = {"services": services, "routes": added + routes}
        if table.get("rate_limits"):
            new["rate_limits"] = table["rate_limits"]
        self.proxy.table_replace(new)

    def _subscribe(self, step: Step, consumer: str) -> None:
        ctx = self.context(step)
        for sub in step.subscriptions:
            if sub.consumer != consumer:
                continue
            argv = ["-m", "migrations_playbook.djangoside", "subscribe", "--consumer", sub.consumer]
            if sub.handlers:
                argv += ["--handlers", sub.handlers]
            done = (self.run_half or ctx.run_half)(sub.service, argv, timeout=120)
            if done.returncode != 0:
                raise PlaybookError(
                    f"binding {sub.consumer}.events failed (in {sub.service}): "
                    f"{(done.stderr or done.stdout)[-800:]}"
                )
            self.say(f"  bound: {done.stdout.strip().splitlines()[-1]}")
            self._record(step, "subscribed", subscriptions=sub.consumer)

    def _backfill(self, step: Step, key: str) -> None:
        ctx = self.context(step)
        for job in step.backfill:
            if " ".join(job.command) != key:
                continue
            started = time.monotonic()
            # Not captured: the command draws its own progress bar on the terminal.
            done = (self.run_half or ctx.run_half)(
                job.service, ["manage.py", *job.command], capture=False, timeout=24 * 3600
            )
            if done.returncode != 0:
                raise PlaybookError(
                    f"backfill `manage.py {key}` in {job.service} exited {done.returncode}; "
                    "it is resumable: fix the cause and run apply again"
                )
            self.say(f"  backfill done in {time.monotonic() - started:.1f} s")
            self._record(step, "backfilled", backfill=key)

    def _gates(self, step: Step, names: tuple[str, ...] | list[str]) -> list[GateResult]:
        ctx = self.context(step)
        results = []
        for name in names:
            self.say(f"  checking gate {name} ...")
            result = self.evaluate(step.gates[name], ctx)
            for line in result.explain():
                self.say(f"  {line}")
            results.append(result)
        return results

    def _advance(self, step: Step, stage: Stage) -> bool:
        results = self._gates(step, stage.gates)
        failed = [r for r in results if not r.ok]
        if failed:
            for result in failed:
                by = f"; {result.by}" if result.by else ""
                self.say(
                    f"gate {result.gate} failed before {stage.mode}: "
                    f"{result.figure} vs {result.threshold}{by}"
                )
            return False
        for route in step.routes:
            self.proxy.route_set(route.name, mode=stage.mode, service=route.service)
            self.say(f"  {route.name}: now {stage.mode}")
        self._record(step, "advanced", stage=stage.mode)
        self._table_file_refresh(step)
        return True

    def _watch(self, step: Step, stage: Stage, seconds: float, interval: float) -> bool:
        watched = [name for name in stage.gates if step.gates[name].watch]
        began = time.monotonic()
        while True:
            elapsed = time.monotonic() - began
            if elapsed >= seconds:
                return True
            self.sleep(min(interval, max(0.0, seconds - elapsed)))
            ctx = self.context(step)
            results = [self.evaluate(step.gates[name], ctx) for name in watched]
            figures = "; ".join(f"{r.gate}: {r.figure}" for r in results) or "no watch gates"
            elapsed = min(seconds, time.monotonic() - began)
            self.say(f"  watching {stage.mode}: {elapsed:.0f}/{seconds:g} s; {figures}")
            broken = [r for r in results if not r.ok]
            if broken:
                for result in broken:
                    for line in result.explain():
                        self.say(f"  {line}")
                return False

    # ------------------------------------------------------------ rollback

    def rollback(self, number: int) -> bool:
        """Return every route of step `number` to the monolith with no lost write."""
        step = self.step(number)
        with st.state_lock(self.var_dir):
            return self._rollback(step)

    def _rollback(self, step: Step) -> bool:
        routes = self.proxy.route_modes()
        for route in step.routes:
            if route.name in routes and routes[route.name]["mode"] != "monolith":
                self.proxy.route_set(route.name, mode="monolith")
                self.say(f"  {route.name}: back to monolith")
        self._record(step, "rolled back", stage="monolith")
        self._table_file_refresh(step)
        drained = self._drain(step)
        reconcile = [name for name, gate in step.gates.items() if gate.kind == "reconcile"]
        exact = all(r.ok for r in self._gates(step, reconcile))
        if drained and exact:
            self.say(f"step {step.number}: rolled back; every write reached the monolith")
            return True
        self.say(f"step {step.number}: traffic is back on the monolith, but "
                 f"{'the outbox did not drain' if not drained else 'reconcile is not exact'}; "
                 "see above")  # fmt: skip
        return False

    def _drain(self, step: Step) -> bool:
        lag_gates = [gate for gate in step.gates.values() if gate.kind == "outbox_lag"]
        if not lag_gates:
            return True
        ctx = self.context(step)
        deadline = time.monotonic() + step.rollback.drain_timeout_s
        zero_in_a_row = 0
        while True:
            try:
                behind = sum(outbox_lag_measure(gate, ctx)["messages"] for gate in lag_gates)
            except GateError as exc:
                behind = -1
                self.say(f"  draining: cannot measure the outbox lag yet ({exc})")
            else:
                self.say(f"  draining: {behind} event(s) still on their way")
            # Twice zero, a moment apart: a consumer may hold a message it has not applied.
            zero_in_a_row = zero_in_a_row + 1 if behind == 0 else 0
            if zero_in_a_row >= 2:
                return True
            if time.monotonic() > deadline:
                return False
            self.sleep(0.5)

    # ------------------------------------------------------------ verify and status

    def verify(self, number: int) -> bool:
        """Evaluate every gate of the step and print each; return True when all hold."""
        step = self.step(number)
        if not step.gates:
            self.say(f"step {number} has no gates")
            return True
        results = self._gates(step, list(step.gates))
        failed = [r.gate for r in results if not r.ok]
        self.say(
            f"step {number}: all {len(results)} gates hold"
            if not failed
            else f"step {number}: {len(failed)} of {len(results)} gates failed: {', '.join(failed)}"
        )
        return not failed

    def status(self) -> list[str]:
        """Return lines saying where each step, route and service stands."""
        document = st.state_read(self.var_dir)
        lines = []
        try:
            routes = self.proxy.route_modes()
            services = self.proxy.routes().get("services", {})
            proxy_note = f"proxy {self.proxy.base_url}"
        except AdminCallError as exc:
            routes, services, proxy_note = {}, {}, f"proxy unreachable: {exc}"
        lines.append(proxy_note)
        for number, step in self.steps.items():
            part = document["steps"].get(str(number), {})
            lines.append(f"step {number} ({step.name}): {step.title}")
            if not step.routes:
                lines.append("  nothing moves in this step")
            for route in step.routes:
                live = routes.get(route.name, {}).get("mode", "not in the proxy's table")
                recorded = part.get("stage", st.NOT_STARTED)
                stages = " -> ".join(["monolith", *(s.mode for s in step.rollout)])
                note = "" if live == recorded else f" (state file says {recorded})"
                lines.append(f"  route {route.name:<12} {live}{note}   [{stages}]")
            for service in step.services:
                instances = services.get(service.name, {}).get("instances") or [
                    f"http://127.0.0.1:{service.port}"
                ]
                ready = _ready(instances[0])
                lines.append(f"  service {service.name:<10} {instances[0]}  {ready}")
            for sub in step.subscriptions:
                done = "bound" if sub.consumer in part.get("subscriptions", {}) else "not bound"
                lines.append(f"  subscription {sub.consumer}.events: {done}")
            for job in step.backfill:
                key = " ".join(job.command)
                done = "done" if key in part.get("backfill", {}) else "not run"
                lines.append(f"  backfill {key}: {done}")
            for event in part.get("history", [])[-3:]:
                details = {k: v for k, v in event.items() if k not in {"at", "event"}}
                lines.append(f"  {event['at']} {event['event']} {details or ''}".rstrip())
        return lines


def _ready(url: str) -> str:
    from .probe import probe

    code, body = probe(url.rstrip("/") + "/readyz", timeout=2.0)
    return "ready" if code == 200 else f"not ready ({code or body})"
