"""Read configuration from the environment, loudly when a value is malformed.

Every process has one settings module that calls these helpers once; library code never reads
the environment at import time. Unset values fall back to the documented embedded defaults
(SQLite files and a server-less broker under the var directory).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import dj_database_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(RuntimeError):
    """A setting in the environment is missing or cannot be read."""


def env_str(name: str, default: str | None = None) -> str:
    """Return the variable `name`, or `default`; fail if neither exists."""
    value = os.environ.get(name, default)
    if value is None:
        raise ConfigError(f"Config {name!r} is missing, and has no default.")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    """Return the variable `name` read as a boolean (1/0, true/false, yes/no, on/off)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"Config {name!r} must be a boolean (1/0, true/false), got {raw!r}.")


def env_int(name: str, default: int) -> int:
    """Return the variable `name` read as an integer."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"Config {name!r} must be an integer, got {raw!r}.") from None


def env_float(name: str, default: float, *, above: float | None = None) -> float:
    """Return the variable `name` read as a float (greater than `above`, when given)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"Config {name!r} must be a number, got {raw!r}.") from None
    if above is not None and not (value > above and math.isfinite(value)):  # refuses nan, inf
        raise ConfigError(f"Config {name!r} must be a finite number above {above}, got {raw!r}.")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Return the variable `name`, which must be one of `choices`."""
    value = os.environ.get(name) or default
    if value not in choices:
        raise ConfigError(f"Config {name!r} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def env_mapping(name: str) -> dict[str, str]:
    """Return the variable `name` read as `key=value,key=value` (unset or empty: {})."""
    raw = os.environ.get(name, "")
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"Config {name!r} must be key=value pairs separated by commas, "
                f"e.g. monolith=strangler-monolith; got {item!r}."
            )
        mapping[key.strip()] = value.strip()
    return mapping


def relay_poll_seconds(database: dict) -> float:
    """Return how often the outbox relay polls: `OUTBOX_RELAY_POLL_S`, else by `database`.

    On PostgreSQL a NOTIFY wakes the relay as soon as an event commits, so polling is only a
    fallback (1 s). SQLite has no NOTIFY: polling is all there is, so it polls every 0.2 s (one
    indexed query; an event reaches the broker in 0.2 s at worst instead of 1 s).
    """
    postgres = database["ENGINE"].endswith(("postgresql", "postgis"))
    return env_float("OUTBOX_RELAY_POLL_S", 1.0 if postgres else 0.2, above=0.0)


def var_dir() -> Path:
    """Return (and create) the directory for embedded-default state (SQLite, broker folders)."""
    path = Path(env_str("STRANGLER_VAR_DIR", str(Path.cwd() / "var"))).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_config(service: str, env_name: str = "DATABASE_URL") -> dict:
    """Return DATABASES['default'] for `service`: `env_name` if set, else SQLite under var."""
    url = os.environ.get(env_name) or f"sqlite:///{var_dir() / f'{service}.sqlite3'}"
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ConfigError(f"Config {env_name!r} is not a database URL: {url!r} ({exc}).") from exc
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        options = config.setdefault("OPTIONS", {})
        options["timeout"] = 20
        # Take the write lock when a transaction starts, not at its first write: otherwise two
        # concurrent payments both read, then one fails with "database is locked" (a 500).
        options["transaction_mode"] = "IMMEDIATE"
    return config


def broker_url() -> str:
    """Return the broker URL: `BROKER_URL`, else kombu's server-less filesystem transport."""
    return os.environ.get("BROKER_URL") or "filesystem://"


def broker_transport_options(url: str) -> dict:
    """Return kombu transport options; the filesystem transport needs its shared folders."""
    if not url.startswith("filesystem"):
        return {}
    from service_kit import fs_transport

    # kombu's stock filesystem transport loses messages and bindings to races between processes
    # and ignores delay queues; every process that reads this setting uses the robust one.
    fs_transport.install()
    root = var_dir() / "broker"
    folders = {
        "data_folder_in": root / "data",
        "data_folder_out": root / "data",
        "control_folder": root / "control",
        "processed_folder": root / "processed",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    # kombu polls the folder once a second by default: too slow for event latency and for a
    # worker's warm shutdown; a tenth of a second costs nothing measurable on an idle folder.
    return {key: str(folder) for key, folder in folders.items()} | {
        "store_processed": False,
        "polling_interval": 0.1,
    }


CACHE_TABLE = "strangler_cache"


def shared_cache_config(*, service: str, database: dict, redis_url: str) -> dict:
    """Return CACHES['default']: state every worker of a half must share (login throttles).

    Redis when `redis_url` is set (atomic counters, expiry built in); otherwise the database
    cache in the table `strangler_cache`, which the users app's migrations create. Keys are
    prefixed by the service and its database, so deployments that share one Redis never share
    counters.
    """
    where = "|".join(str(database.get(key, "")) for key in ("ENGINE", "HOST", "PORT", "NAME"))
    prefix = f"strangler:{service}:{hashlib.sha256(where.encode()).hexdigest()[:12]}"
    if redis_url:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    return {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": CACHE_TABLE,
        "KEY_PREFIX": prefix,
        # Culling drops arbitrary keys once the table is full, counters included: keep it rare.
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
