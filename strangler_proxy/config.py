"""The proxy's settings, read once from the environment by the command line.

| variable | default | meaning |
|---|---|---|
| STRANGLER_PROXY_HOST | 127.0.0.1 | address to listen on |
| STRANGLER_PROXY_PORT | 8000 | port to listen on |
| STRANGLER_MONOLITH_URL | http://127.0.0.1:8001 | the monolith, when the table does not name it |
| STRANGLER_ROUTES | (none: step-0 table) | TOML/YAML route table file |
| REDIS_URL | (none: in-process) | shared registry and rate limits |
| STRANGLER_IDENTITY_SECRET | (none: identity not forwarded) | HMAC key for identity headers |
| STRANGLER_IDENTITY_TTL | 60 | seconds a signed identity stays valid |
| STRANGLER_AUTH_CACHE_TTL | 30 | seconds a validated token is trusted |
| STRANGLER_SHADOW_CONCURRENCY | 32 | shadow requests in flight at most |
| STRANGLER_ADMIN_TOKEN | (none: admin open) | Bearer token the admin API's writes require |
| STRANGLER_ACCESS_LOG | 1 | one JSON line per request on stdout |
| STRANGLER_PROXY_STATE | (none: set by --workers) | route table file shared by worker processes |
| STRANGLER_AUTH_LOGOUT | POST /api/auth/logout/ | its 2xx answer revokes the token ("off": none) |
| STRANGLER_AUTH_REVOKE_CHANNEL | strangler:auth:revoked | Redis channel for token revocations |
| STRANGLER_RECORD_BUFFER | 1000 | recorded exchanges kept in memory (a ring) |
| STRANGLER_RECORD_DIR | (none) | also append recordings to <dir>/<route>.jsonl |
| STRANGLER_RECORD_BODY_LIMIT | 65536 | bytes of a body a recording keeps at most |
| STRANGLER_RECORD_REDACT | Authorization, Cookie, Set-Cookie... | headers redacted ("none") |
| STRANGLER_RECORD_REDACT_FIELDS | password | JSON body keys whose values are redacted |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

REDACTED_HEADERS = ("authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key")


class ConfigError(RuntimeError):
    """A setting in the environment cannot be read."""


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"Config {name!r} must be an integer, got {raw!r}.") from None


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"Config {name!r} must be a number, got {raw!r}.") from None


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Everything the gateway needs to start."""

    host: str = "127.0.0.1"
    port: int = 8000
    monolith_url: str = "http://127.0.0.1:8001"
    routes_file: str | None = None
    redis_url: str | None = None
    identity_secret: str | None = None
    identity_ttl: int = 60
    auth_cache_ttl: float = 30.0
    shadow_concurrency: int = 32
    shadow_body_limit: int = 1 << 20
    admin_token: str | None = None
    access_log: bool = True
    body_idle_timeout: float = 10.0
    aggregate_path: str = "/api/overview/"
    keepalive_timeout: float = 75.0
    head_timeout: float = 10.0
    linger: float = 1.0
    shared_state: str | None = None
    logout: tuple[str, str] | None = ("POST", "/api/auth/logout/")
    revoke_channel: str = "strangler:auth:revoked"
    record_buffer: int = 1000
    record_dir: str | None = None
    record_body_limit: int = 64 * 1024
    record_redact: tuple[str, ...] = REDACTED_HEADERS
    record_redact_fields: tuple[str, ...] = ("password",)

    @classmethod
    def from_env(cls, env: dict | None = None) -> ProxyConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            host=env.get("STRANGLER_PROXY_HOST") or "127.0.0.1",
            port=_int(env, "STRANGLER_PROXY_PORT", 8000),
            monolith_url=(env.get("STRANGLER_MONOLITH_URL") or "http://127.0.0.1:8001").rstrip("/"),
            routes_file=env.get("STRANGLER_ROUTES") or None,
            redis_url=env.get("REDIS_URL") or None,
            identity_secret=env.get("STRANGLER_IDENTITY_SECRET") or None,
            identity_ttl=_int(env, "STRANGLER_IDENTITY_TTL", 60),
            auth_cache_ttl=_float(env, "STRANGLER_AUTH_CACHE_TTL", 30.0),
            shadow_concurrency=_int(env, "STRANGLER_SHADOW_CONCURRENCY", 32),
            admin_token=env.get("STRANGLER_ADMIN_TOKEN") or None,
            access_log=(env.get("STRANGLER_ACCESS_LOG") or "1").lower()
            not in {"0", "false", "no", "off"},
            shared_state=env.get("STRANGLER_PROXY_STATE") or None,
            logout=_logout(env.get("STRANGLER_AUTH_LOGOUT")),
            revoke_channel=env.get("STRANGLER_AUTH_REVOKE_CHANNEL") or "strangler:auth:revoked",
            record_buffer=_int(env, "STRANGLER_RECORD_BUFFER", 1000),
            record_dir=env.get("STRANGLER_RECORD_DIR") or None,
            record_body_limit=_int(env, "STRANGLER_RECORD_BODY_LIMIT", 64 * 1024),
            record_redact=_names(env.get("STRANGLER_RECORD_REDACT"), REDACTED_HEADERS),
            record_redact_fields=_names(env.get("STRANGLER_RECORD_REDACT_FIELDS"), ("password",)),
        )


def _names(raw: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """Return a comma-separated list of names; unset: `default`; "none": nothing."""
    if raw is None or not raw.strip():
        return default
    if raw.strip().lower() == "none":
        return ()
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _logout(raw: str | None) -> tuple[str, str] | None:
    if raw is None or not raw.strip():
        return ("POST", "/api/auth/logout/")
    if raw.strip().lower() in {"0", "off", "none", "false", "no"}:
        return None
    method, _, path = raw.strip().partition(" ")
    path = path.strip()
    if not method.isalpha() or not path.startswith("/") or " " in path:
        raise ConfigError(
            f"Config 'STRANGLER_AUTH_LOGOUT' must be 'METHOD /path' or 'off', got {raw!r}."
        )
    return (method.upper(), path)
