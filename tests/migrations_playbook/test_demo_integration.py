"""`strangler demo --exit --quick` on the embedded default: the whole walk-through, no servers.

Starts the step-1 stack (SQLite per service, the filesystem broker) on free ports in a temporary
var dir, walks shadow -> canary:10 -> canary:50 -> extracted under client load, rolls back and
walks forward again, and must exit 0: no request failed, reconcile exact at every stage.
`--quick` keeps it to about a minute and a half (shorter stages, one payments contract per gate);
the default demo runs the whole payments contract file at each gate.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STRANGLER = Path(sys.executable).with_name("strangler")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_walks_to_step_1_and_back_and_forward_on_the_embedded_default(tmp_path):
    servers = {"DATABASE_URL", "BROKER_URL", "REDIS_URL", "STRANGLER_VAR_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in servers}
    argv = [str(STRANGLER), "demo", "--exit", "--quick", "--var-dir", str(tmp_path / "var")]
    for name in ("proxy", "monolith", "payments"):
        argv += [f"--{name}-port", str(_free_port())]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=420, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "RESULT: every request answered as expected" in output
    assert "failed: 0" in output
    for mode in ("shadow", "canary:10", "canary:50", "extracted"):
        assert f"payments: now {mode}" in output
        assert f"at {mode}: reconcile exact" in output
    assert "after the rollback: reconcile exact" in output
    assert "step 1: rolled back; every write reached the monolith" in output
    assert "watching canary:50" in output  # the second walk ran on its own, gates watched
    paid = re.search(r"payments taken by each half: monolith (\d+), payments (\d+)", output)
    assert paid and int(paid.group(1)) > 0 and int(paid.group(2)) > 0, output[-3000:]
    figures = re.search(r"the walk-through took (\d+) s", output)
    print(f"\nFIGURES demo_quick_s={figures.group(1) if figures else '?'}")
