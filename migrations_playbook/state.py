"""Where the playbook stands, persisted in the var dir: `$STRANGLER_VAR_DIR/playbook/state.json`.

One document for every step: the stage each step's routes reached, which backfills finished,
which subscriptions were bound, and a history of every change. Writes are atomic (a temporary
file renamed over the old one), and `state_lock` keeps two `apply`/`rollback` runs from
interleaving. The proxy holds the live truth about routes; this file is what `apply` resumes
from and what `strangler up` builds the proxy's table from after a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NOT_STARTED = "monolith"


def state_dir(var_dir: Path) -> Path:
    path = Path(var_dir) / "playbook"
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_read(var_dir: Path) -> dict[str, Any]:
    """Return the whole state document (empty when nothing was applied yet)."""
    path = state_dir(var_dir) / "state.json"
    if not path.exists():
        return {"steps": {}}
    return json.loads(path.read_text())


def step_state(state: dict[str, Any], number: int) -> dict[str, Any]:
    """Return (creating it) the part of `state` that belongs to step `number`."""
    return state["steps"].setdefault(
        str(number),
        {"stage": NOT_STARTED, "backfill": {}, "subscriptions": {}, "history": []},
    )


def state_write(var_dir: Path, state: dict[str, Any]) -> None:
    """Replace the state document atomically."""
    directory = state_dir(var_dir)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".state-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, directory / "state.json")


def history_add(step: dict[str, Any], event: str, **details: Any) -> None:
    """Append one line to a step's history."""
    step["history"].append(
        {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event} | details
    )


class StateBusy(RuntimeError):
    """Another playbook run holds the lock."""


@contextlib.contextmanager
def state_lock(var_dir: Path) -> Iterator[None]:
    """Hold the playbook's lock for the duration; refuse at once if another run holds it."""
    path = state_dir(var_dir) / "lock"
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateBusy(
                f"another `strangler playbook` run holds {path}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
