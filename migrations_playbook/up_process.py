"""`strangler up` run as a child process: its output copied to a log, its readiness watched.

The demo and `strangler compare` both drive a whole stack this way. The runner owns signal
handling and the foreground, so it runs in a session of its own and is stopped the way Ctrl-C
stops it (SIGINT), then killed if it does not stop in time.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"all \d+ processes ready in")
STOP_TIMEOUT_S = 45.0
_KEEP_LINES = 80


def up_command(
    *, step: int, var_dir: Path, ports: dict[str, int], ready_timeout: float, grace: float = 5
) -> list[str]:
    """Return the argv of `strangler up` for `step` in `var_dir`, each process on its port."""
    command = [sys.executable, "-m", "migrations_playbook.cli", "up", "--step", str(step)]
    command += ["--var-dir", str(var_dir), "--ready-timeout", f"{ready_timeout:g}"]
    command += ["--grace", f"{grace:g}"]
    for name, port in ports.items():
        command += [f"--{name}-port", str(port)]
    return command


class UpProcess:
    """One `strangler up` child. Failures raise `error` (the caller's own exception type).

    `on_line` sees every line the runner prints, as it prints it (the demo shows progress).
    """

    def __init__(
        self, command: list[str], env: dict[str, str], log: Path, *,
        error: type[Exception] = RuntimeError, on_line: Callable[[str], None] | None = None,
    ):  # fmt: skip
        self.log = log
        self.error = error
        self.on_line = on_line
        self.ready = threading.Event()
        self.lines: list[str] = []
        self.process = subprocess.Popen(  # noqa: S603 (argv built by up_command)
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the caller's Ctrl-C is the caller's; stop() stops this
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("a") as handle:
            for line in self.process.stdout:
                handle.write(line)
                handle.flush()
                self.lines = [*self.lines[-_KEEP_LINES:], line.rstrip()]
                if self.on_line is not None:
                    self.on_line(line)
                if READY.search(line):
                    self.ready.set()

    def wait_ready(self, timeout: float) -> float:
        """Wait until every process is ready; return the seconds it took."""
        started = time.monotonic()
        while not self.ready.wait(0.2):
            if self.process.poll() is not None:
                self.reader.join(timeout=2)
                raise self.error(
                    f"`strangler up` exited {self.process.returncode} before the stack was "
                    "ready; its last lines:\n" + "\n".join(self.lines[-25:])
                )
            if time.monotonic() - started > timeout:
                raise self.error(
                    f"the stack was not ready within {timeout:g} s; the runner's last lines:\n"
                    + "\n".join(self.lines[-25:])
                )
        return time.monotonic() - started

    def death(self) -> str | None:
        """Return why the stack stopped on its own, or None while it runs."""
        if self.process.poll() is None:
            return None
        self.reader.join(timeout=5)
        said = [line for line in self.lines if "exited" in line or "killed" in line]
        return (
            f"the stack stopped during the run (`strangler up` exited "
            f"{self.process.returncode}): " + "; ".join(said[:3] or self.lines[-3:])
        )

    def stop(self) -> str | None:
        """Stop the stack the way Ctrl-C does; return a note if it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return (
                    f"the runner did not stop within {STOP_TIMEOUT_S:g} s and was killed; "
                    f"its children may still run (see {self.log} for their pids)"
                )
        self.reader.join(timeout=5)
        return None
