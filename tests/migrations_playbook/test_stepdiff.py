"""`strangler playbook diff A B` says what a step changes, as a reviewer reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STRANGLER = [sys.executable, "-m", "migrations_playbook.cli"]


def strangler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*STRANGLER, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_diff_1_2_names_every_kind_of_change_step_2_makes():
    done = strangler("playbook", "diff", "1", "2")

    assert done.returncode == 0, done.stderr
    out = done.stdout
    for line in (
        "+ users-consumer  python manage.py outbox_consume --service users",
        "+ users  extracted.users.settings on :8102, consumer users",
        "+ users  /api/users/ served by users",
        "+ auth   /api/auth/ served by users",
        "~ owner  monolith -> users",
        "+ users.events     user.#",
        "~ password hashes       monolith -> users",
        "+ users  manage.py users_backfill --batch 500",
    ):
        assert line in out, f"{line!r} missing from:\n{out}"
    assert "payments" not in out.split("subscriptions")[1].split("data")[0].replace(
        "payment.", ""
    )  # step 1's queues do not change in step 2


def test_diff_backwards_reads_as_what_a_rollback_gives_up():
    changes = json.loads(strangler("playbook", "diff", "2", "1", "--json").stdout)

    signs = {(c["section"], c["sign"], c["name"]) for c in changes}
    assert ("services", "-", "users") in signs
    assert ("identity", "~", "owner") in signs
    assert ("processes", "-", "payments") not in signs  # payments stays at step 1
    assert {c["text"] for c in changes if c["section"] == "data"} == {"users -> monolith"}


def test_diff_of_a_step_with_itself_changes_nothing():
    done = strangler("playbook", "diff", "2", "2")

    assert done.returncode == 0
    assert "0 change(s)" in done.stdout and "nothing changes" in done.stdout


def test_diff_of_an_unknown_step_names_it_and_the_steps_that_exist():
    done = strangler("playbook", "diff", "1", "9")

    assert done.returncode == 2
    assert "unknown step 9; the steps that exist are: 0, 1, 2" in done.stderr
