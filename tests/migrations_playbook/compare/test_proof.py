"""The proof: compare finds exactly the tests a planted behaviour change breaks, and nothing else.

Three servers of the monolith share one fresh PostgreSQL database: A (the monolith), B (the
same behind `planted_wsgi` with the plant on: a payments field renamed, a status code changed)
and C (behind the same wrapper with the plant off). `strangler compare --against A B` must
report as regressed exactly the contract tests that assert what the plant changed (found by
reading the suite: those that mention 402, ``card_last4`` or ``PAYMENT_KEYS``) and exit 1;
`--against A C` must report every test as same and exit 0.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from migrations_playbook.compare.stack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONTRACT = PROJECT_ROOT / "tests" / "contract"
PLANTED_APP = "tests.migrations_playbook.compare.planted_wsgi:application"
WHAT_THE_PLANT_CHANGES = ("402", "card_last4", "PAYMENT_KEYS")


def assertions_the_plant_breaks() -> set[str]:
    """Return the contract tests whose source asserts something the plant changes."""
    names = set()
    for path in sorted(CONTRACT.glob("test_*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                text = ast.get_source_segment(source, node) or ""
                if any(marker in text for marker in WHAT_THE_PLANT_CHANGES):
                    names.add(f"{path.stem}::{node.name}")
    return names


@contextlib.contextmanager
def _database():
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        pytest.skip("the proof needs DATABASE_URL=postgres://... (SQLite serialises the races)")
    import psycopg2

    name = f"{parts.path.lstrip('/') or 'strangler'}_proof_{secrets.token_hex(4)}"
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _gunicorn(app: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                app,
                f"--bind=127.0.0.1:{port}",
                "--workers=1",
                "--worker-class=gthread",
                "--threads=8",
                "--no-control-socket",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Yield the URLs of A, B (planted) and C (wrapper, no plant) and a staff account."""
    workdir = tmp_path_factory.mktemp("proof")
    with _database() as database_url:
        env = {k: v for k, v in os.environ.items() if k != "BROKER_URL"}
        env |= {
            "DJANGO_SETTINGS_MODULE": "monolith.settings",
            "DATABASE_URL": database_url,
            "STRANGLER_VAR_DIR": str(workdir / "var"),
            "STRANGLER_CELERY_EAGER": "1",
            "STRANGLER_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "STRANGLER_FAST_PASSWORD_HASHER": "1",
            # Four contract-suite runs at once, from one address, against one database: the
            # per-address login budget (600 per 5 min) is not what this proof is about.
            "STRANGLER_LOGIN_ADDRESS_ATTEMPTS": "0",
        }
        staff = ("proof-staff@compare.example.com", secrets.token_urlsafe(12))
        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "migrate", "--noinput"],
            cwd=PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        subprocess.run(
            [*manage, "createsuperuser", "--noinput"],
            cwd=PROJECT_ROOT,
            check=True,
            env=env | {"DJANGO_SUPERUSER_EMAIL": staff[0], "DJANGO_SUPERUSER_PASSWORD": staff[1]},
            capture_output=True,
            timeout=120,
        )
        started = []
        try:
            for name, app, plant in (
                ("a", "monolith.wsgi", "0"),
                ("b", PLANTED_APP, "1"),
                ("c", PLANTED_APP, "0"),
            ):
                log = workdir / f"{name}.log"
                process, url = _gunicorn(app, env | {"STRANGLER_COMPARE_PLANT": plant}, log)
                started.append((process, url, log))
            for process, url, log in started:
                _wait_ready(url, process, log)
            yield {"a": started[0][1], "b": started[1][1], "c": started[2][1], "staff": staff}
        finally:
            for process, _, _ in started:
                process.send_signal(signal.SIGINT)
            for process, _, _ in started:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@pytest.fixture(scope="module")
def comparisons(servers, tmp_path_factory) -> dict[str, tuple[int, dict, str]]:
    """Run `strangler compare --against A B` and `--against A C` at once; return for each its
    exit status, summary.json, output and --out directory.

    Two commands side by side, each a process of its own: every suite run waits on its server
    most of the time, so the pair takes little longer than one.
    """
    started = {}
    for side in ("b", "c"):
        out = tmp_path_factory.mktemp(f"compare-{side}")
        command = [
            sys.executable,
            "-m",
            "migrations_playbook.cli",
            "compare",
            "--against",
            servers["a"],
            servers[side],
            "--staff",
            *servers["staff"],
            "--out",
            str(out),
        ]
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started[side] = (process, out)
    results = {}
    for side, (process, out) in started.items():
        output, _ = process.communicate(timeout=600)
        summary_path = out / "summary.json"
        assert summary_path.exists(), output[-3000:]
        results[side] = (process.returncode, json.loads(summary_path.read_text()), output, out)
    return results


def _function(test_id: str) -> str:
    """tests.contract.test_payments::test_x[param] -> test_payments::test_x"""
    module, name = test_id.split("::")
    return f"{module.rsplit('.', 1)[-1]}::{name.split('[')[0]}"


def test_compare_reports_exactly_the_planted_changes_as_regressed_and_exits_1(comparisons):
    expected = assertions_the_plant_breaks()
    assert {
        "test_payments::test_a_declined_card_is_a_402_that_records_a_failed_payment",
        "test_payments::test_paying_charges_the_orders_total_and_keeps_only_the_last_four_digits",
    } <= expected  # the oracle reads the suite as intended

    status, summary, output, out = comparisons["b"]

    verdicts = {row["test"]: row["verdict"] for row in summary["tests"]}
    regressed = {_function(t) for t, v in verdicts.items() if v == "regressed"}
    assert status == 1
    assert regressed == expected
    assert {v for t, v in verdicts.items() if _function(t) not in expected} == {"same"}
    assert all(v == "regressed" for t, v in verdicts.items() if _function(t) in expected)
    assert len(verdicts) > 150  # the whole suite ran on both sides
    assert "REGRESSED" in output.splitlines()[-1]
    page = (out / "report.html").read_text()
    assert "test(s) regressed" in page and "before.xml" in page and "after-retry.xml" in page


def test_compare_with_nothing_planted_reports_every_test_as_same_and_exits_0(comparisons):
    status, summary, output, _ = comparisons["c"]

    assert {row["verdict"] for row in summary["tests"]} == {"same"}
    assert len(summary["tests"]) > 150
    assert status == 0
    assert output.splitlines()[-1].startswith("no regression")
