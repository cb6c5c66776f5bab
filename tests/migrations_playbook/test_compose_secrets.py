"""`strangler secrets`: compose's secrets generated into .env once, private, never printed."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from migrations_playbook.compose_secrets import COMPOSE_SECRETS, env_file_read, main

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_generates_every_missing_secret_into_a_private_file(tmp_path, capsys):
    env_file = tmp_path / ".env"
    assert main(["--env-file", str(env_file)]) == 0
    values = env_file_read(env_file)
    assert set(values) == set(COMPOSE_SECRETS)
    assert len(set(values.values())) == len(COMPOSE_SECRETS)  # each its own
    assert all(len(value) >= 40 for value in values.values())
    assert _mode(env_file) == 0o600
    printed = capsys.readouterr().out
    assert "generated" in printed
    assert not any(value in printed for value in values.values())


def test_secrets_rerun_keeps_every_value_and_the_operators_other_lines(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# mine\nSTRANGLER_PROXY_PUBLISH_ADDRESS=0.0.0.0\n")
    main(["--env-file", str(env_file)])
    first = env_file_read(env_file)
    main(["--env-file", str(env_file)])
    assert env_file_read(env_file) == first
    assert env_file.read_text().startswith("# mine\nSTRANGLER_PROXY_PUBLISH_ADDRESS=0.0.0.0\n")


def test_secrets_fills_an_empty_line_in_place(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("STRANGLER_ADMIN_TOKEN=\n")
    main(["--env-file", str(env_file)])
    text = env_file.read_text()
    assert text.count("STRANGLER_ADMIN_TOKEN=") == 1
    assert env_file_read(env_file)["STRANGLER_ADMIN_TOKEN"]


def test_secrets_narrows_a_readable_env_file_to_its_owner(tmp_path):
    env_file = tmp_path / ".env"
    main(["--env-file", str(env_file)])
    env_file.chmod(0o644)
    before = env_file_read(env_file)
    main(["--env-file", str(env_file)])
    assert _mode(env_file) == 0o600
    assert env_file_read(env_file) == before


def test_secrets_takes_the_operators_own_value_from_the_environment_when_asked(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("STRANGLER_ADMIN_TOKEN", "operator-chosen-token-0123456789")
    env_file = tmp_path / ".env"
    main(["--env-file", str(env_file), "--from-environment"])
    assert env_file_read(env_file)["STRANGLER_ADMIN_TOKEN"] == "operator-chosen-token-0123456789"
    other = tmp_path / "other.env"
    main(["--env-file", str(other)])
    assert env_file_read(other)["STRANGLER_ADMIN_TOKEN"] != "operator-chosen-token-0123456789"


def test_secrets_refuses_a_short_secret_naming_it(tmp_path, capsys):
    env_file = tmp_path / ".env"
    env_file.write_text("STRANGLER_SECRET_KEY=changeme\n")
    assert main(["--env-file", str(env_file)]) == 2
    error = capsys.readouterr().err
    assert "STRANGLER_SECRET_KEY is 8 characters long; expected at least 16" in error
    assert "changeme" not in error
    assert env_file.read_text() == "STRANGLER_SECRET_KEY=changeme\n"  # nothing written


def test_secrets_refuses_a_password_that_would_break_its_url(tmp_path, capsys):
    env_file = tmp_path / ".env"
    env_file.write_text("STRANGLER_POSTGRES_PASSWORD=long-enough-but/has@slashes\n")
    assert main(["--env-file", str(env_file)]) == 2
    assert "STRANGLER_POSTGRES_PASSWORD holds a character other than" in capsys.readouterr().err


def test_secrets_check_names_what_is_missing_and_writes_nothing(tmp_path, capsys):
    env_file = tmp_path / ".env"
    assert main(["--env-file", str(env_file), "--check"]) == 1
    assert "STRANGLER_ADMIN_TOKEN" in capsys.readouterr().out
    assert not env_file.exists()
    main(["--env-file", str(env_file)])
    assert main(["--env-file", str(env_file), "--check"]) == 0


def test_secrets_refuses_a_directory_it_cannot_write(tmp_path, capsys):
    assert main(["--env-file", str(tmp_path / "missing" / ".env")]) == 2
    assert "cannot write into" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "migrations_playbook.compose_secrets"],
        [str(Path(sys.executable).with_name("strangler")), "secrets"],
    ],
    ids=["python-m", "strangler"],
)
def test_secrets_runs_as_make_secrets_and_strangler_secrets_do(tmp_path, command):
    env_file = tmp_path / ".env"
    done = subprocess.run(
        [*command, "--env-file", str(env_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert set(env_file_read(env_file)) == set(COMPOSE_SECRETS)
