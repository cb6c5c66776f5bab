"""The playbook engine against a real proxy (in-process, port 0) with fake gates and commands."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from migrations_playbook import playbook_cli
from migrations_playbook.admin import ProxyAdmin
from migrations_playbook.engine import Engine
from migrations_playbook.gates import GateResult
from migrations_playbook.state import state_read
from migrations_playbook.stepfile import steps_load
from service_kit.var_secrets import var_secret
from strangler_proxy.config import ProxyConfig
from strangler_proxy.gateway import Gateway

STEPS = steps_load()


class ProxyThread:
    """The real gateway on 127.0.0.1:0, in a thread with its own event loop.

    Its admin token is the var dir's, as `strangler up` makes it: the CLI finds it there.
    """

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.token = var_secret(var_dir=var_dir, name="admin-token")
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        config = ProxyConfig(
            monolith_url="http://127.0.0.1:9", access_log=False, admin_token=self.token
        )
        self.gateway = Gateway(config=config)
        port = self.loop.run_until_complete(self.gateway.start(host="127.0.0.1", port=0))
        self.url = f"http://127.0.0.1:{port}"
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.gateway.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def admin(self) -> ProxyAdmin:
        """Return an admin client that finds the token in the var dir."""
        return ProxyAdmin(self.url, var_dir=self.var_dir, environ={})


@pytest.fixture
def proxy(tmp_path) -> Iterator[ProxyThread]:
    with ProxyThread(tmp_path) as running:
        yield running


@dataclass
class Fakes:
    """Gates that answer as told, and half commands that record what they were asked to run."""

    failing: set[str] = field(default_factory=set)
    evaluated: list[str] = field(default_factory=list)
    commands: list[tuple[str, list[str]]] = field(default_factory=list)
    fail_commands: set[str] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)

    def evaluate(self, gate, ctx) -> GateResult:
        self.evaluated.append(gate.name)
        ok = gate.name not in self.failing
        return GateResult(
            gate.name,
            gate.kind,
            ok,
            figure="3.0%" if not ok else "0.0%",
            threshold="<= 1.0%",
            by="" if ok else "over by 2.00 points",
            look_at="GET /_strangler/diffs?route=payments",
        )

    def run_half(self, service, argv, **kwargs) -> subprocess.CompletedProcess:
        self.commands.append((service, argv))
        code = 1 if any(word in self.fail_commands for word in argv) else 0
        out = json.dumps({"queue": "x.events", "binding_keys": ["order.#"]})
        return subprocess.CompletedProcess(argv, code, stdout=out, stderr="")


def _engine(proxy: ProxyThread, tmp_path: Path, fakes: Fakes) -> Engine:
    return Engine(
        steps=STEPS,
        proxy=proxy.admin(),
        var_dir=tmp_path,
        environ={},
        say=fakes.lines.append,
        evaluate=fakes.evaluate,
        sleep=lambda seconds: None,
        run_half=fakes.run_half,
    )


def _mode(proxy: ProxyThread) -> str:
    return proxy.admin().route_modes()["payments"]["mode"]


def test_plan_lists_every_action_apply_will_take_in_order(proxy, tmp_path):
    engine = _engine(proxy, tmp_path, Fakes())
    lines = [action.describe() for action in engine.plan(1)]
    assert lines == [
        "add to the proxy's table: service payments (http://127.0.0.1:8101), "
        "route payments (/api/payments/) in mode monolith",
        "bind queue payments.events (consumer payments, in payments) to order.#, payment.#",
        "bind queue monolith.events (consumer monolith, in monolith) to payment.succeeded, "
        "payment.failed, payment.refunded",
        "backfill: manage.py payments_backfill --batch 500 in payments (resumable; progress shown)",
        "check gates [outbox_lag, reconcile], then set payments to shadow",
        "check gates [outbox_lag, reconcile, shadow_diff, contract], "
        "then set payments to canary:10",
        "check gates [outbox_lag, reconcile, contract], then set payments to canary:50",
        "check gates [outbox_lag, reconcile, contract], then set payments to extracted",
    ]


def test_apply_does_what_the_plan_said_and_a_second_apply_changes_nothing(proxy, tmp_path):
    fakes = Fakes()
    engine = _engine(proxy, tmp_path, fakes)
    planned = [a.describe() for a in engine.plan(1)]
    assert engine.apply(1) is True
    said = [line.split("] ", 1)[1] for line in fakes.lines if line.startswith("[")]
    assert said == planned
    assert _mode(proxy) == "extracted"
    assert [argv[-1] for _, argv in fakes.commands if "payments_backfill" in argv] == ["500"]
    version = proxy.admin().routes()["version"]

    fakes.lines.clear()
    fakes.commands.clear()
    assert engine.plan(1) == []
    assert engine.apply(1) is True
    assert fakes.commands == []
    assert fakes.lines == ["step 1: nothing to do (routes at extracted)"]
    assert proxy.admin().routes()["version"] == version


def test_a_failed_gate_stops_apply_before_the_stage_and_says_which_and_by_how_much(proxy, tmp_path):
    fakes = Fakes(failing={"shadow_diff"})
    engine = _engine(proxy, tmp_path, fakes)
    assert engine.apply(1) is False
    assert _mode(proxy) == "shadow"
    assert (
        "gate shadow_diff failed before canary:10: 3.0% vs <= 1.0%; over by 2.00 points"
        in fakes.lines
    )
    assert any("look at: GET /_strangler/diffs?route=payments" in line for line in fakes.lines)


def test_apply_resumes_where_it_stopped_without_redoing_finished_work(proxy, tmp_path):
    fakes = Fakes(failing={"shadow_diff"})
    engine = _engine(proxy, tmp_path, fakes)
    engine.apply(1)
    fakes.failing.clear()
    fakes.commands.clear()
    remaining = [a.describe() for a in engine.plan(1)]
    assert [line.split(", then set ")[1] for line in remaining] == [
        "payments to canary:10",
        "payments to canary:50",
        "payments to extracted",
    ]
    assert engine.apply(1) is True
    assert fakes.commands == []  # neither backfill nor subscriptions ran again
    assert _mode(proxy) == "extracted"


def test_a_backfill_that_fails_is_retried_by_the_next_apply(proxy, tmp_path):
    fakes = Fakes(fail_commands={"payments_backfill"})
    engine = _engine(proxy, tmp_path, fakes)
    with pytest.raises(Exception, match="resumable: fix the cause and run apply again"):
        engine.apply(1)
    assert _mode(proxy) == "monolith"
    fakes.fail_commands.clear()
    assert engine.apply(1) is True
    backfills = [argv for _, argv in fakes.commands if "payments_backfill" in argv]
    assert len(backfills) == 2


def test_auto_apply_rolls_back_by_itself_when_a_watched_gate_breaks(proxy, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "migrations_playbook.engine.outbox_lag_measure", lambda gate, ctx: {"messages": 0}
    )
    fakes = Fakes()
    engine = _engine(proxy, tmp_path, fakes)
    original = fakes.evaluate

    def breaks_in_canary(gate, ctx):
        if gate.name == "outbox_lag" and _mode(proxy) == "canary:10":
            fakes.failing.add("outbox_lag")
        return original(gate, ctx)

    engine.evaluate = breaks_in_canary
    assert engine.apply(1, auto=True, dwell=0.01, interval=0.01) is False
    assert _mode(proxy) == "monolith"
    assert "step 1: a gate broke; rolling back by itself" in fakes.lines
    assert state_read(tmp_path)["steps"]["1"]["stage"] == "monolith"


def test_auto_apply_walks_every_stage_watching_each(proxy, tmp_path):
    fakes = Fakes()
    engine = _engine(proxy, tmp_path, fakes)
    assert engine.apply(1, auto=True, dwell=0.01, interval=0.01) is True
    events = [e["stage"] for e in state_read(tmp_path)["steps"]["1"]["history"] if "stage" in e]
    assert events == ["shadow", "canary:10", "canary:50", "extracted"]
    assert any(line.startswith("  watching canary:50:") for line in fakes.lines)


def test_rollback_returns_routes_to_the_monolith_and_reconciles(proxy, tmp_path, monkeypatch):
    fakes = Fakes()
    engine = _engine(proxy, tmp_path, fakes)
    engine.apply(1, to="canary:50")
    drained = iter([3, 1, 0, 0])
    monkeypatch.setattr(
        "migrations_playbook.engine.outbox_lag_measure",
        lambda gate, ctx: {"messages": next(drained)},
    )
    assert engine.rollback(1) is True
    assert _mode(proxy) == "monolith"
    assert "  draining: 3 event(s) still on their way" in fakes.lines
    assert fakes.evaluated[-1] == "reconcile"
    assert engine.plan(1)[0].describe().endswith("then set payments to shadow")


def test_verify_prints_every_gate_with_figure_and_limit(proxy, tmp_path):
    fakes = Fakes(failing={"contract"})
    engine = _engine(proxy, tmp_path, fakes)
    assert engine.verify(1) is False
    assert "  PASS reconcile    0.0%  (limit: <= 1.0%)" in fakes.lines
    assert "  FAIL contract     3.0%  (limit: <= 1.0%); over by 2.00 points" in fakes.lines
    assert fakes.lines[-1] == "step 1: 1 of 4 gates failed: contract"


def test_table_written_for_strangler_up_follows_the_rollout_state(proxy, tmp_path, capsys):
    _engine(proxy, tmp_path, Fakes()).apply(1, to="canary:10")
    output = tmp_path / "routes.toml"
    argv = ["table", "--step", "1", "--output", str(output), "--var-dir", str(tmp_path)]
    assert playbook_cli.main([*argv, "--service-url", "payments=http://10.0.0.5:8101"]) == 0
    text = output.read_text()
    assert 'mode = "canary:10"' in text and 'url = "http://10.0.0.5:8101"' in text


def test_cli_plan_and_status_through_the_proxy(proxy, tmp_path, capsys):
    common = ["--proxy", proxy.url, "--var-dir", str(tmp_path)]
    assert playbook_cli.main(["plan", "1", *common]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("1. add to the proxy's table")
    assert playbook_cli.main(["status", *common]) == 0
    out = capsys.readouterr().out
    assert "route payments     not in the proxy's table" in out
    assert "backfill payments_backfill --batch 500: not run" in out


def test_cli_says_when_the_proxy_cannot_be_reached(tmp_path, capsys):
    code = playbook_cli.main(
        ["plan", "1", "--proxy", "http://127.0.0.1:9", "--var-dir", str(tmp_path)]
    )
    assert code == 1
    assert "cannot reach the proxy at http://127.0.0.1:9" in capsys.readouterr().err
