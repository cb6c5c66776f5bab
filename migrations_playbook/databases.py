"""One database per service, derived from the operator's single DATABASE_URL.

* DATABASE_URL unset (the embedded default): SQLite `$STRANGLER_VAR_DIR/<service>.sqlite3`
  for every service, the monolith included;
* DATABASE_URL `postgres://.../shop`: the monolith uses it as is, service NAME uses
  `postgres://.../shop_NAME` on the same server (created if missing).

A service also reads the monolith's database (backfill, reconcile) through
`MONOLITH_DATABASE_URL`, which is always set explicitly, so a service never guesses where the
monolith keeps its data. `service_environment` returns exactly what a service's processes get.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

MONOLITH = "monolith"


def service_database_url(*, service: str, database_url: str | None, var_dir: Path) -> str:
    """Return the database URL of `service`, given the operator's DATABASE_URL (or None)."""
    if not database_url:
        return f"sqlite:///{Path(var_dir).resolve() / f'{service}.sqlite3'}"
    if service == MONOLITH:
        return database_url
    parts = urlsplit(database_url)
    if parts.scheme.startswith("sqlite"):
        path = Path(parts.path)
        return urlunsplit(
            parts._replace(path=str(path.with_name(f"{path.stem}_{service}.sqlite3")))
        )
    name = parts.path.lstrip("/") or "strangler"
    return urlunsplit(parts._replace(path=f"/{name}_{service}"))


def service_environment(
    *, service: str, settings: str, environ: dict[str, str], var_dir: Path
) -> dict[str, str]:
    """Return the variables a process of `service` runs with (on top of `environ`)."""
    database_url = environ.get("DATABASE_URL") or None
    env = {
        "DJANGO_SETTINGS_MODULE": settings,
        "STRANGLER_VAR_DIR": str(Path(var_dir).resolve()),
        "DATABASE_URL": service_database_url(
            service=service, database_url=database_url, var_dir=var_dir
        ),
    }
    if service != MONOLITH:
        env["MONOLITH_DATABASE_URL"] = service_database_url(
            service=MONOLITH, database_url=database_url, var_dir=var_dir
        )
    return env


def database_ensure(url: str) -> bool:
    """Create the PostgreSQL database of `url` if it does not exist; return True if created.

    SQLite files appear on first use, so there is nothing to do for them.
    """
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return False
    import psycopg2
    from psycopg2 import sql

    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone():
                return False
            try:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg2.errors.DuplicateDatabase:
                return False  # another process created it meanwhile
            return True
    finally:
        connection.close()


def migrate_main() -> int:
    """Create this process's database if missing, then apply its Django migrations.

    `python -m migrations_playbook.databases` is the `migrate` job of an extracted service: one
    command, so `strangler up` and compose run the same thing.
    """
    url = os.environ.get("DATABASE_URL", "")
    if url and database_ensure(url):
        print(f"created database {urlsplit(url).path.lstrip('/')}", flush=True)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", "migrate", "--noinput"])
    return 0


if __name__ == "__main__":
    sys.exit(migrate_main())
