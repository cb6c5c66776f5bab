"""Child processes for the stack runner: start, prefix their logs, tell their fate, stop them.

Each child starts in a session (and so a process group) of its own, so the terminal's Ctrl-C
reaches only the runner, which then stops the children in order. Stopping asks the group leader
first (SIGTERM: gunicorn and Celery shut down gracefully and stop their own workers), and only
after the grace period kills whatever is left of the group (SIGKILL), so no grandchild outlives
the runner. What this cannot cover: a runner killed with SIGKILL leaves its children running.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO

_COLOURS = ("36", "33", "35", "32", "34", "31")


class LogWriter:
    """Write lines prefixed by the name of the process they came from, aligned and coloured."""

    def __init__(self, *, names: Iterable[str], stream: TextIO, colour: bool) -> None:
        self.stream = stream
        self.width = max(len(name) for name in names)
        self.colour = colour
        self._colours: dict[str, str] = {}
        self._lock = threading.Lock()
        self.broken = False

    def line(self, name: str, text: str) -> None:
        """Write one line of `name`'s output."""
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            code = self._colours.setdefault(name, _COLOURS[len(self._colours) % len(_COLOURS)])
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        with self._lock:
            if self.broken:
                return
            try:
                self.stream.write(f"{prefix} {text}\n")
                self.stream.flush()
            except (OSError, ValueError):
                # The reader went away (`strangler up | head`): keep draining the children's
                # pipes so they never block, and let the runner stop them as usual.
                self.broken = True


class Child:
    """One child process: its output pump, its last lines, and whether its log said "ready"."""

    def __init__(
        self,
        *,
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        log: LogWriter,
        ready_log: str | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log = log
        self.ready_pattern = re.compile(ready_log) if ready_log else None
        self.log_said_ready = threading.Event()
        self.last_lines: collections.deque[str] = collections.deque(maxlen=15)
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """Return the child's pid (also its process group id)."""
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def handle(self) -> str:
        """Say how to find this process: its pid."""
        return f"pid {self.pid}"

    def start(self) -> None:
        """Start the child in its own session, its output piped through the log writer."""
        self.process = subprocess.Popen(  # noqa: S603 (argv comes from the process specs)
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = threading.Thread(target=self._copy_output, name=f"log-{self.name}")
        self._pump.daemon = True
        self._pump.start()

    def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.last_lines.append(text)
            self.log.line(self.name, text)
            if self.ready_pattern and self.ready_pattern.search(text):
                self.log_said_ready.set()

    def poll(self) -> int | None:
        """Return the exit status if the child has ended, else None."""
        return None if self.process is None else self.process.poll()

    def exit_description(self) -> str:
        """Say how the child ended: "exited with code 1" or "was killed by signal SIGKILL"."""
        code = self.poll()
        if code is None:
            return "is still running"
        if code < 0:
            try:
                signame = signal.Signals(-code).name
            except ValueError:
                signame = str(-code)
            return f"was killed by signal {signame}"
        return f"exited with code {code}"

    def signal_leader(self, signum: int) -> None:
        """Send `signum` to the child itself, which passes it on to its own workers."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def group_alive(self) -> bool:
        """Return True while any process of the child's group is alive."""
        if self.process is None:
            return False
        if self.poll() is None:
            return True
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def kill_group(self) -> None:
        """Kill every process left in the child's group."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def finish(self, timeout: float = 2.0) -> None:
        """Reap the child and let its log pump print the last lines."""
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        if self._pump is not None:
            self._pump.join(timeout=timeout)


def stop_children(
    children: list[Child],
    *,
    grace: float,
    hurry: Callable[[], bool],
    say: Callable[[str], None],
) -> None:
    """Stop `children` (last started first): SIGTERM, then SIGKILL what is left after `grace`.

    `hurry` returning True (a second Ctrl-C) skips the rest of the grace period.
    """
    for child in reversed(children):
        child.signal_leader(signal.SIGTERM)
    deadline = time.monotonic() + grace
    hurried = False
    while any(child.group_alive() for child in children):
        hurried = hurry()
        if hurried or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for child in children:
        if child.group_alive():
            why = (
                "still running at the second signal"
                if hurried
                else f"did not stop within {grace:g} s of SIGTERM"
            )
            say(f"{child.name} {why}; killing it")
            child.kill_group()
    for child in children:
        child.finish()


def describe_signal(signum: int) -> str:
    """Return the name of signal `signum` (SIGINT, SIGTERM...)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def colour_wanted(stream: TextIO) -> bool:
    """Return True when `stream` is a terminal and NO_COLOR is not set."""
    return stream.isatty() and "NO_COLOR" not in os.environ and sys.platform != "win32"
