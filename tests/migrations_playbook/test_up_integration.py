"""`strangler up` on the embedded default, as a user runs it: ready, serving, and stopped clean."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STRANGLER = Path(sys.executable).with_name("strangler")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(root: int) -> set[int]:
    """Return the pids of every live process below `root`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int], within: float = 3.0) -> set[int]:
    """Return the pids still alive after waiting up to `within` seconds for them to go."""
    deadline = time.monotonic() + within
    while True:
        alive = set()
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            alive.add(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


class Up:
    """`strangler up` running as a subprocess, its output collected line by line."""

    def __init__(self, var_dir: Path) -> None:
        self.monolith_port = _free_port()
        self.proxy_port = _free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "BROKER_URL", "REDIS_URL", "STRANGLER_VAR_DIR"}
        }
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                str(STRANGLER),
                "up",
                "--var-dir",
                str(var_dir),
                "--monolith-port",
                str(self.monolith_port),
                "--proxy-port",
                str(self.proxy_port),
            ],
            env=env | {"NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        pytest.fail(f"no line matched {pattern!r}; output:\n{self.output()[-4000:]}")

    def pid_of(self, name: str) -> int:
        return int(self.wait_for(rf"started {name} \(pid (\d+)\)", 5).group(1))

    def finish(self, timeout: float = 30) -> int:
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            for pid in _descendants(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()


@pytest.fixture
def up(tmp_path):
    stack = Up(tmp_path / "var")
    yield stack
    stack.kill()


def _proxy_installed() -> bool:
    try:
        return importlib.util.find_spec("strangler_proxy.cli") is not None
    except ModuleNotFoundError:
        return False


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return response.status


def test_up_serves_the_monolith_and_sigint_stops_every_process(up):
    up.wait_for(r"all \d+ processes ready in [\d.]+ s", timeout=45)
    ready_after = time.monotonic() - up.started
    base = f"http://127.0.0.1:{up.monolith_port}"
    assert up.wait_for(rf"ready  monolith +{re.escape(base)}/", 1)
    assert _get(f"{base}/healthz") == 200
    assert _get(f"{base}/readyz") == 200
    if _proxy_installed():
        proxy = f"http://127.0.0.1:{up.proxy_port}"
        assert up.wait_for(rf"ready  proxy +{re.escape(proxy)}/", 1)
        assert _get(f"{proxy}/healthz") == 200
    else:
        assert up.wait_for(r"skipping proxy: strangler_proxy.cli is not installed yet", 1)
    children = [up.pid_of(name) for name in ("monolith", "worker", "beat")]
    assert all(os.getpgid(pid) == pid for pid in children), "each child leads its own group"
    everything = _descendants(up.process.pid)
    assert len(everything) > len(children)  # gunicorn and celery workers too

    up.process.send_signal(signal.SIGINT)

    assert up.finish() == 0, up.output()[-3000:]
    assert _alive(everything) == set()
    assert "SIGINT received; stopping every process" in up.output()
    print(f"strangler up: all ready {ready_after:.1f} s after start")


def test_up_stops_the_rest_and_says_which_child_died(up):
    up.wait_for(r"all \d+ processes ready", timeout=45)
    worker = up.pid_of("worker")
    everything = _descendants(up.process.pid)

    os.kill(worker, signal.SIGKILL)

    assert up.finish() == 1
    assert "worker was killed by signal SIGKILL; stopping the others" in up.output()
    assert "monolith exited with code 0" in up.output()
    assert _alive(everything) == set()
