"""`strangler demo --exit --quick` on the embedded default: the whole walk-through, no servers.

Starts the step-2 stack (SQLite per service, the filesystem broker) on free ports in a temporary
var dir; walks step 1 (payments) then step 2 (users) shadow -> canary:10 -> canary:50 ->
extracted under client load that keeps paying, registering, logging in and out, rolls step 2
back and walks it forward again, and must exit 0: no request failed, reconcile exact at every
stage.
`--quick` keeps it short (shorter stages, one contract per gate); the default demo runs the
whole contract files at each gate.
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


def test_demo_walks_to_step_2_each_step_back_and_forward_on_the_embedded_default(tmp_path):
    servers = {"DATABASE_URL", "BROKER_URL", "REDIS_URL", "STRANGLER_VAR_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in servers}
    argv = [str(STRANGLER), "demo", "--exit", "--quick", "--var-dir", str(tmp_path / "var")]
    for name in ("proxy", "monolith", "payments", "users"):
        argv += [f"--{name}-port", str(_free_port())]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "RESULT: every request answered as expected" in output
    assert "failed: 0" in output
    for number, route in ((1, "payments"), (2, "users")):
        for mode in ("shadow", "canary:10", "canary:50", "extracted"):
            assert f"{route}: now {mode}" in output
            assert f"at step {number} {mode}: reconcile exact" in output
    # --quick rolls back and walks forward again the last step only (step 1's walk test and
    # the full demo do it for step 1).
    assert "after the rollback of step 2: reconcile exact" in output
    assert "step 2: rolled back; every write reached the monolith" in output
    assert "watching canary:50" in output  # the second walk ran on its own, gates watched
    assert "~ owner  monolith -> users" in output  # step 2 was reviewed with playbook diff
    paid = re.search(r"payments taken by each half: monolith (\d+), payments (\d+)", output)
    assert paid and int(paid.group(1)) > 0 and int(paid.group(2)) > 0, output[-3000:]
    joined = re.search(r"registrations taken by each half: monolith (\d+), users (\d+)", output)
    assert joined and int(joined.group(1)) > 0 and int(joined.group(2)) > 0, output[-3000:]
    figures = re.search(r"the walk-through took (\d+) s", output)
    print(f"\nFIGURES demo_quick_s={figures.group(1) if figures else '?'}")
