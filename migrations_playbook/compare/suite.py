"""Run the contract suite against one base URL, the way a client would, and read the results.

Each side runs ``python -m pytest <tests> --junitxml <out>/<label>.xml`` with
``STRANGLER_CONTRACT_URL`` pointing at the deployment, then retries only the tests that failed
(pytest's ``--last-failed``, from a cache of its own per side) into ``<label>-retry.xml``.
A test that passes on the retry is flaky; the first run's time is the one reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .junit import JUnitError, junit_merge, junit_parse
from .pytest_progress import PROGRESS_ENV
from .results import BAD, RunResult

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TESTS = ("tests/contract",)
# pytest's exit codes 0 (all passed) and 1 (some failed) mean the run itself went through.
RAN = (0, 1)

#: progress(label, done, total, failed) is called while the suite runs.
ProgressFn = Callable[[str, int, int, int], None]


@dataclass(frozen=True)
class Staff:
    """A staff account of the deployment, for the staff-only tests."""

    email: str
    password: str


def suite_run(
    *,
    label: str,
    base_url: str,
    out_dir: Path,
    tests: Sequence[str] = DEFAULT_TESTS,
    staff: Staff | None = None,
    retry: bool = True,
    timeout: float = 600.0,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Run the suite against `base_url`; return every test's outcome, retries folded in."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run = RunResult(label=label, target=base_url, log=str(out_dir / f"{label}.log"))
    started = time.monotonic()
    env = _suite_env(base_url, staff)
    cache = out_dir / f".pytest-cache-{label}"
    first = out_dir / f"{label}.xml"
    status = _pytest(
        [*tests, "--junitxml", str(first), "-o", f"cache_dir={cache}"],
        env=env,
        log=Path(run.log),
        progress_file=out_dir / f".progress-{label}",
        timeout=timeout,
        report=(lambda d, t, f: progress(label, d, t, f)) if progress else None,
    )
    run.junit.append(str(first))
    try:
        if status not in RAN:
            raise JUnitError(f"pytest exited {status} (see {run.log})")
        run.tests = junit_parse(first)
        failed = [t for t in run.tests.values() if t.outcome in BAD]
        if retry and failed:
            again = out_dir / f"{label}-retry.xml"
            retry_label = f"{label} (retry)"
            status = _pytest(
                [*tests, "--last-failed", "--junitxml", str(again), "-o", f"cache_dir={cache}"],
                env=env,
                log=Path(run.log),
                progress_file=out_dir / f".progress-{label}-retry",
                timeout=timeout,
                report=(lambda d, t, f: progress(retry_label, d, t, f)) if progress else None,
            )
            run.junit.append(str(again))
            if status not in RAN:
                raise JUnitError(f"the retry's pytest exited {status} (see {run.log})")
            run.tests = junit_merge(run.tests, junit_parse(again))
    except JUnitError as exc:
        run.error = f"{exc}\n{_tail(Path(run.log))}"
    run.duration = round(time.monotonic() - started, 2)
    return run


def _suite_env(base_url: str, staff: Staff | None) -> dict[str, str]:
    env = dict(os.environ)
    env["STRANGLER_CONTRACT_URL"] = base_url
    env["PYTHONUNBUFFERED"] = "1"
    if staff is not None:
        env["STRANGLER_CONTRACT_STAFF_EMAIL"] = staff.email
        env["STRANGLER_CONTRACT_STAFF_PASSWORD"] = staff.password
    return env


def _pytest(
    args: list[str],
    *,
    env: dict[str, str],
    log: Path,
    progress_file: Path,
    timeout: float,
    report: Callable[[int, int, int], None] | None,
) -> int:
    """Run pytest with `args`, appending its output to `log`; return its exit status."""
    progress_file.unlink(missing_ok=True)
    env = env | {PROGRESS_ENV: str(progress_file)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        *args,
        "-p",
        "migrations_playbook.compare.pytest_progress",
        "-q",
        "--color=no",
    ]
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        process = subprocess.Popen(  # noqa: S603 (argv built here)
            command, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        seen = (-1, -1, -1)
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                handle.write(f"\nstrangler compare: pytest killed after {timeout:g} s\n")
                return 2
            now = _progress_read(progress_file)
            if report is not None and now != seen:
                report(*now)
                seen = now
            time.sleep(0.2)
    if report is not None:
        report(*_progress_read(progress_file))
    return process.returncode


def _progress_read(path: Path) -> tuple[int, int, int]:
    """Return (done, total, failed) from the plugin's file."""
    done = total = failed = 0
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return 0, 0, 0
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        if "total" in event:
            total = event["total"]
        elif "outcome" in event:
            done += 1
            failed += event["outcome"] == "failed"
    return done, total, failed


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
