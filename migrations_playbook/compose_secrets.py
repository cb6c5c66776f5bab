"""`strangler secrets`: write the secrets compose.yaml requires into .env, generating any missing.

compose.yaml ships no secret. Each one is a required variable (``${NAME:?...}``), so `docker
compose` refuses to start, naming the variable, until it is set. Docker Compose reads the
variables from `.env` beside compose.yaml; this command writes that file:

* a secret already in the file (or set in the environment, with ``--from-environment``) is
  kept: rerunning never rotates anything behind the operator's back;
* a missing or empty one is generated (32 random bytes, URL-safe, so the passwords can sit in
  the database and broker URLs);
* the file is written atomically with mode 0600, other lines (comments, other variables) are
  kept as they were, and no value is ever printed.

A value the stack cannot use is refused with the variable's name and what was expected: shorter
than 16 characters, or (for the server passwords, which sit inside URLs) a character other than
letters, digits and ``-._~``.

It needs nothing but the standard library: ``python3 -m migrations_playbook.compose_secrets``
(what `make secrets` runs) works in a checkout without the virtualenv.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

#: Every secret compose.yaml requires, and what it is. tests/migrations_playbook/test_compose.py
#: checks this list against the ``${NAME:?...}`` variables of compose.yaml.
COMPOSE_SECRETS: dict[str, str] = {
    "STRANGLER_POSTGRES_PASSWORD": "password of the PostgreSQL user `strangler`",
    "STRANGLER_RABBITMQ_PASSWORD": "password of the RabbitMQ user `strangler`",
    "STRANGLER_REDIS_PASSWORD": "password of Redis (`requirepass`)",
    "STRANGLER_SECRET_KEY": "Django's SECRET_KEY, shared by every half",
    "STRANGLER_IDENTITY_SECRET": "HMAC key of the identity the proxy signs for the services",
    "STRANGLER_ADMIN_TOKEN": "bearer token of the proxy's admin API (/_strangler/)",
}
#: The secrets that sit inside a URL (user:password@host), so must need no escaping.
URL_SECRETS = frozenset(
    {"STRANGLER_POSTGRES_PASSWORD", "STRANGLER_RABBITMQ_PASSWORD", "STRANGLER_REDIS_PASSWORD"}
)
MIN_LENGTH = 16
#: Longer minimums where the reader of the secret asks for more (the identity keys sign JWTs
#: with HS256, and service_kit.identity refuses keys under 32 bytes).
MIN_LENGTHS = {"STRANGLER_IDENTITY_SECRET": 32}
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_LINE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)")


class SecretsError(Exception):
    """The env file cannot be used or written; the message names the variable or the path."""


def env_file_read(path: Path) -> dict[str, str]:
    """Return the variables of the env file at `path` (KEY=VALUE lines); {} when it is missing."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        match = _LINE.fullmatch(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = match.group(2).strip()
    return values


def secret_check(name: str, value: str) -> None:
    """Raise SecretsError when `value` cannot serve as secret `name`."""
    least = MIN_LENGTHS.get(name, MIN_LENGTH)
    if len(value) < least:
        raise SecretsError(
            f"{name} is {len(value)} characters long; expected at least {least} "
            "(remove its line to have one generated)"
        )
    if name in URL_SECRETS and not _URL_SAFE.fullmatch(value):
        raise SecretsError(
            f"{name} holds a character other than letters, digits and '-._~'; it goes inside a "
            "URL (user:password@host), so it must need no escaping "
            "(remove its line to have one generated)"
        )


def compose_secrets_write(
    *, path: Path, environ: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """Make `path` hold every compose secret; return the names "kept", "taken" and "generated".

    `environ`, when given, supplies the secrets the file lacks (an operator's own values), which
    are then "taken" into the file; the others are "generated".
    """
    existing = env_file_read(path)
    outcome: dict[str, list[str]] = {"kept": [], "taken": [], "generated": []}
    added: dict[str, str] = {}
    for name in COMPOSE_SECRETS:
        if existing.get(name):
            secret_check(name, existing[name])
            outcome["kept"].append(name)
        elif (environ or {}).get(name):
            secret_check(name, environ[name])
            added[name] = environ[name]
            outcome["taken"].append(name)
        else:
            added[name] = secrets.token_urlsafe(32)
            outcome["generated"].append(name)
    if added or not path.exists() or path.stat().st_mode & 0o077:
        _write(path, existing, added)  # also narrows a file others could read to 0600
    return outcome


def _write(path: Path, existing: dict[str, str], added: dict[str, str]) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    # An empty `NAME=` line is replaced in place rather than left beside the new value.
    lines = [
        line
        for line in lines
        if not ((m := _LINE.fullmatch(line)) and m.group(1) in added and not existing[m.group(1)])
    ]
    if added:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if lines and lines[-1].strip():
            lines.append("")
        lines.append(f"# written by `strangler secrets` on {stamp}; keep this file private")
        for name, value in added.items():
            lines.append(f"# {COMPOSE_SECRETS[name]}")
            lines.append(f"{name}={value}")
    directory = path.resolve().parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=".env-", dir=directory)
    except OSError as exc:
        raise SecretsError(f"cannot write into {directory}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "w") as out:  # mkstemp creates it 0600
            out.write("\n".join(lines) + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise SecretsError(f"cannot write {path}: {exc.strerror}") from exc


def compose_secrets_missing(*, path: Path) -> list[str]:
    """Return the compose secrets `path` lacks (or holds empty)."""
    existing = env_file_read(path)
    return [name for name in COMPOSE_SECRETS if not existing.get(name)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler secrets",
        description="Write every secret compose.yaml requires into an env file (default ./.env, "
        "which Docker Compose reads), generating the missing ones; existing values are kept "
        "and no value is printed.",
    )
    parser.add_argument(
        "--env-file",
        default=".env",
        metavar="PATH",
        help="the env file to complete (default: ./.env, beside compose.yaml)",
    )
    parser.add_argument(
        "--from-environment",
        action="store_true",
        help="take a secret the file lacks from this process's environment, if set there",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming the secrets the file lacks",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `strangler secrets`; return its exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    path = Path(args.env_file)
    try:
        if args.check:
            missing = compose_secrets_missing(path=path)
            for name, value in env_file_read(path).items():
                if name in COMPOSE_SECRETS and value:
                    secret_check(name, value)
            if missing:
                print(f"{path} lacks {', '.join(missing)}; run `strangler secrets` to add them")
                return 1
            print(f"{path} holds every secret compose.yaml requires")
            return 0
        environ = dict(os.environ) if args.from_environment else None
        outcome = compose_secrets_write(path=path, environ=environ)
    except SecretsError as exc:
        print(f"strangler secrets: {path}: {exc}", file=sys.stderr)
        return 2
    for what, names in outcome.items():
        if names:
            print(f"{path}: {what} {', '.join(names)}")
    print(f"{path} is private (mode 0600); values are never printed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
