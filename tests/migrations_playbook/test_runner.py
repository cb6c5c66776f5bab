"""The runner's choices and its handling of children that fail, hang or ignore SIGTERM."""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import sys
import threading
import time

import pytest

from migrations_playbook import runner
from migrations_playbook.processes import Context, ProcessSpec, known_steps, processes_for
from migrations_playbook.supervisor import LogWriter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _args(*argv: str) -> argparse.Namespace:
    return runner.build_parser().parse_args(list(argv))


def _python(name: str, code: str, **fields) -> ProcessSpec:
    return ProcessSpec(name=name, argv=("python", "-c", code), steps=frozenset({0}), **fields)


def _run(specs: list[ProcessSpec], *, ports=None, ready_timeout=10.0, grace=5.0):
    ports = ports or {}
    out = io.StringIO()
    stack = runner.Stack(
        specs=specs,
        context=Context(bind="127.0.0.1", ports=ports, hosts=dict.fromkeys(ports, "127.0.0.1")),
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        log=LogWriter(names=["strangler", *(s.name for s in specs)], stream=out, colour=False),
        ready_timeout=ready_timeout,
        grace=grace,
    )
    status = stack.run()
    return status, out.getvalue(), stack


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_unknown_step_is_refused_naming_the_value_and_the_steps_that_exist(capsys, tmp_path):
    status = runner.main(["--step", "7", "--var-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    steps = ", ".join(str(step) for step in known_steps())
    assert f"unknown step 7; the steps that exist are: {steps}" in err


def test_busy_port_is_refused_naming_the_process_and_how_to_change_it(capsys, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status = runner.main(["--monolith-port", str(port), "--var-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert f"port {port} for monolith is already in use" in err
    assert "--monolith-port or STRANGLER_MONOLITH_PORT" in err


def test_port_comes_from_the_flag_then_the_environment_then_the_default():
    spec = next(s for s in processes_for(0) if s.name == "monolith")
    assert runner.resolve_port(spec, 9001, {"STRANGLER_MONOLITH_PORT": "9002"}) == 9001
    assert runner.resolve_port(spec, None, {"STRANGLER_MONOLITH_PORT": "9002"}) == 9002
    assert runner.resolve_port(spec, None, {}) == 8001


def test_malformed_port_variable_is_refused_naming_the_variable():
    spec = next(s for s in processes_for(0) if s.name == "monolith")
    with pytest.raises(runner.RunnerError, match="STRANGLER_MONOLITH_PORT: a port must be an int"):
        runner.resolve_port(spec, None, {"STRANGLER_MONOLITH_PORT": "eighty"})


def test_proxy_is_skipped_with_a_note_while_strangler_proxy_is_missing(monkeypatch):
    monkeypatch.setattr(runner, "importable", lambda module: False)
    args = _args("--monolith-port", str(_free_port()))
    specs, _, _, notes = runner.plan_stack(args, {})
    assert "proxy" not in [spec.name for spec in specs]
    assert notes == ["skipping proxy: strangler_proxy.cli is not installed yet"]


def test_proxy_joins_the_stack_once_strangler_proxy_is_importable(monkeypatch):
    monkeypatch.setattr(runner, "importable", lambda module: True)
    monolith, proxy = _free_port(), _free_port()
    args = _args("--monolith-port", str(monolith), "--proxy-port", str(proxy))
    specs, context, _, notes = runner.plan_stack(args, {})
    proxy_spec = next(spec for spec in specs if spec.name == "proxy")
    _, env = proxy_spec.render(context)
    assert notes == []
    assert env["STRANGLER_MONOLITH_URL"] == f"http://127.0.0.1:{monolith}"
    assert env["STRANGLER_PROXY_PORT"] == str(proxy)


def test_skipping_a_process_the_step_does_not_have_is_refused():
    with pytest.raises(runner.RunnerError, match="cannot skip nosuch: step 0 has only"):
        runner.plan_stack(_args("--skip", "nosuch"), {})


def test_backend_description_hides_passwords():
    text = runner.describe_backends(
        {"DATABASE_URL": "postgres://app:hunter2@db:5432/monolith"}, runner.PROJECT_ROOT
    )
    assert "postgres://app:***@db:5432/monolith" in text
    assert "hunter2" not in text


def test_process_that_never_becomes_ready_is_named_with_its_last_lines():
    sleeper = _python(
        "sleeper",
        "import time; print('booting slowly'); time.sleep(30)",
        port=_free_port(),
        ready_path="/readyz",
    )
    status, out, stack = _run([sleeper], ports={"sleeper": sleeper.port}, ready_timeout=1.0)
    assert status == 1
    assert "sleeper did not become ready within 1 s (GET /readyz last answered:" in out
    assert "strangler |   booting slowly" in out
    assert _gone(stack.children[0].pid)


def test_child_that_dies_stops_the_others_and_is_named_with_its_exit_code():
    steady = _python(
        "steady", "import time; print('up', flush=True); time.sleep(30)", ready_log="up"
    )
    crasher = _python("crasher", "import sys, time; time.sleep(0.5); sys.exit(3)", ready_log="x")
    status, out, stack = _run([steady, crasher])
    assert status == 1
    assert "crasher exited with code 3; stopping the others" in out
    assert "steady was killed by signal SIGTERM" in out
    assert all(_gone(child.pid) for child in stack.children)


def test_failing_job_starts_nothing_else():
    job = _python("setup", "import sys; print('no database'); sys.exit(4)", kind="job")
    service = _python("service", "import time; time.sleep(30)", ready_log="never")
    status, out, stack = _run([job, service])
    assert status == 1
    assert "setup exited with code 4; nothing else was started" in out
    assert [child.name for child in stack.children] == ["setup"]


def test_child_that_ignores_sigterm_is_killed_after_the_grace_period():
    stubborn = _python(
        "stubborn",
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(0.5); sys.exit(5)",
        ready_log="up",
    )
    stays = _python(
        "stays",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(30)",
        ready_log="up",
    )
    began = time.monotonic()
    status, out, stack = _run([stays, stubborn], grace=0.5)
    assert status == 1
    assert "stays did not stop within 0.5 s of SIGTERM; killing it" in out
    assert "stays was killed by signal SIGKILL" in out
    assert all(_gone(child.pid) for child in stack.children)
    assert time.monotonic() - began < 10


def test_probe_module_exits_non_zero_when_nothing_answers(capsys):
    from migrations_playbook import probe

    assert probe.main([f"http://127.0.0.1:{_free_port()}/readyz"]) == 1
    assert "no answer" in capsys.readouterr().out


def test_runner_uses_this_interpreter_for_python():
    assert runner.resolve_command("python") == sys.executable


def test_sigint_during_a_job_stops_it_and_starts_nothing_else():
    job = _python(
        "setup", "import time; print('migrating', flush=True); time.sleep(30)", kind="job"
    )
    service = _python("service", "import time; time.sleep(30)", ready_log="never")
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        status, out, stack = _run([job, service])
    finally:
        timer.cancel()
    assert status == 0
    assert "SIGINT received; stopping" in out
    assert "setup was killed by signal SIGTERM" in out
    assert [child.name for child in stack.children] == ["setup"]
    assert _gone(stack.children[0].pid)


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_stack_stops_its_children_when_nobody_reads_its_output_any_more():
    service = _python(
        "service", "import time; print('up', flush=True); time.sleep(30)", ready_log="up"
    )
    stack = runner.Stack(
        specs=[service],
        context=Context(bind="127.0.0.1", ports={}, hosts={}),
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        log=LogWriter(names=["strangler", "service"], stream=_ClosedPipe(), colour=False),
        ready_timeout=10.0,
        grace=5.0,
    )
    assert stack.run() == 1
    assert stack.log.broken
    assert _gone(stack.children[0].pid)


def test_skipped_process_keeps_its_port_so_the_others_still_reach_it(monkeypatch):
    monkeypatch.setattr(runner, "importable", lambda module: True)
    args = _args("--skip", "monolith", "--monolith-port", "9311", "--proxy-port", str(_free_port()))
    specs, context, _, notes = runner.plan_stack(args, {})
    proxy = next(spec for spec in specs if spec.name == "proxy")
    assert "monolith" not in [spec.name for spec in specs]
    assert notes == ["skipping monolith (--skip)"]
    assert proxy.render(context)[1]["STRANGLER_MONOLITH_URL"] == "http://127.0.0.1:9311"


def test_second_sigint_kills_what_the_first_could_not_stop_without_waiting_the_grace():
    stubborn = _python(
        "stubborn",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)",
        ready_log="up",
    )
    timers = [threading.Timer(at, os.kill, (os.getpid(), signal.SIGINT)) for at in (1.5, 2.5)]
    for timer in timers:
        timer.start()
    began = time.monotonic()
    try:
        status, out, stack = _run([stubborn], grace=30.0)
    finally:
        for timer in timers:
            timer.cancel()
    assert status == 0
    assert "stubborn still running at the second signal; killing it" in out
    assert _gone(stack.children[0].pid)
    assert time.monotonic() - began < 10
