"""Secrets generated once per var directory, for settings whose variable is unset.

| file in ``$STRANGLER_VAR_DIR`` | variable that wins | who reads it |
|---|---|---|
| ``admin-token`` | ``STRANGLER_ADMIN_TOKEN`` | the proxy's admin API; the CLI, playbook, demo |
| ``identity-secret`` | ``STRANGLER_IDENTITY_SECRET`` | the proxy (signs identities), every half |
| ``secret-key`` | ``STRANGLER_SECRET_KEY`` | Django's ``SECRET_KEY`` of every half |

A file is created with mode 0600 and appears whole or not at all: it is written aside under a
unique name, then hard-linked into place, so two processes starting together (``strangler up``
and a standalone ``strangler proxy``, say) agree on one secret and neither ever reads half of
one. A secret file that others can read is refused, naming it. No Django here: the proxy, which
never imports Django, uses it too.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SecretFileError(RuntimeError):
    """A secret file cannot be created or read safely; the message names it and why."""


def var_dir_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$STRANGLER_VAR_DIR`` (default ``./var``) as an absolute path; create nothing."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("STRANGLER_VAR_DIR") or "var").resolve()


def var_secret_read(*, var_dir: Path, name: str) -> str | None:
    """Return the secret in `var_dir`/`name`, or None if there is none (nothing is created)."""
    path = Path(var_dir) / _checked(name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretFileError(f"Cannot read the secret file {path}: {exc.strerror}.") from exc
    try:
        mode = os.fstat(fd).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretFileError(
                f"The secret file {path} is open to other users (mode {stat.filemode(mode)}); "
                f"run `chmod 600 {path}`."
            )
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as handle:
            value = handle.read().strip()
    finally:
        os.close(fd)
    if not value:
        raise SecretFileError(f"The secret file {path} is empty; delete it to have a new one made.")
    return value


def var_secret(*, var_dir: Path, name: str, nbytes: int = 32) -> str:
    """Return the secret in `var_dir`/`name`, made up (random, mode 0600) if it does not exist."""
    var_dir = Path(var_dir)
    found = var_secret_read(var_dir=var_dir, name=name)
    if found is not None:
        return found
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / name
    aside = var_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_urlsafe(nbytes) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(aside, path)  # fails if another process got there first: theirs wins
    except FileExistsError:
        pass
    finally:
        aside.unlink()
    found = var_secret_read(var_dir=var_dir, name=name)
    assert found is not None
    return found


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise SecretFileError(f"A secret file name is 1-64 letters, digits or ._-, got {name!r}.")
    return name


def secret_find(
    *, variable: str, name: str, environ: Mapping[str, str] | None = None,
    var_dir: Path | None = None,
) -> str | None:  # fmt: skip
    """Return `variable` from the environment, else the var dir's file `name`, else None.

    For clients of a secret (the ``strangler`` CLI finding the admin token): nothing is created.
    `var_dir` defaults to ``$STRANGLER_VAR_DIR`` (``./var``).
    """
    environ = os.environ if environ is None else environ
    value = environ.get(variable)
    if value:
        return value
    return var_secret_read(var_dir=var_dir or var_dir_path(environ), name=name)
