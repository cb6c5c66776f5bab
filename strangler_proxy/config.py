"""The proxy's settings, read once from the environment by the command line.

| variable | default | meaning |
|---|---|---|
| STRANGLER_PROXY_HOST | 127.0.0.1 | address to listen on |
| STRANGLER_PROXY_PORT | 8000 | port to listen on |
| STRANGLER_MONOLITH_URL | http://127.0.0.1:8001 | the monolith, when the table does not name it |
| STRANGLER_ROUTES | (none: step-0 table) | TOML/YAML route table file |
| STRANGLER_VAR_DIR ($VAR_DIR) | ./var | where generated secrets live |
| REDIS_URL | (none: in-process) | shared registry, rate limits and token revocations |
| STRANGLER_IDENTITY_SECRET | $VAR_DIR/identity-secret | keys kid:secret,... (the first signs) |
| STRANGLER_IDENTITY_TTL | 30 | seconds a signed identity stays valid (at most 30) |
| STRANGLER_AUTH_CACHE_TTL | 30 | seconds a validated token is trusted |
| STRANGLER_SHADOW_CONCURRENCY | 32 | shadow requests in flight at most |
| STRANGLER_ADMIN_TOKEN | $VAR_DIR/admin-token | Bearer token of every admin endpoint but health |
| STRANGLER_ACCESS_LOG | 1 | one JSON line per request on stdout |
| STRANGLER_PROXY_STATE | (none: set by --workers) | route table file shared by worker processes |
| STRANGLER_AUTH_LOGIN | POST /api/auth/token/ | rate-limited per client address (group "login") |
| STRANGLER_AUTH_LOGOUT | POST /api/auth/logout/ | its 2xx answer revokes the token ("off": none) |
| STRANGLER_AUTH_PASSWORD_CHANGE | PATCH /api/users/me/ | 2xx: forget the user's tokens ("off") |
| STRANGLER_AUTH_REVOKE_CHANNEL | strangler:auth:revoked | Redis channel for token revocations |
| STRANGLER_RECORD_BUFFER | 1000 | recorded exchanges kept in memory (a ring) |
| STRANGLER_RECORD_DIR | (none) | also append recordings to <dir>/<route>.jsonl (0600 files) |
| STRANGLER_RECORD_BODY_LIMIT | 65536 | bytes of a body a recording keeps at most |
| STRANGLER_REDACT_HEADERS | (none: the defaults only) | headers added to the deny-list |
| STRANGLER_REDACT_FIELDS | (none: the defaults only) | JSON key parts added (redaction.py) |

``from_env`` reads and checks; it creates nothing. ``admin_tokens_load`` (run by ``strangler
proxy`` before it serves) reads the admin tokens, making up the default one in the var dir when
``STRANGLER_ADMIN_TOKEN`` is unset; ``identity_secret_load`` does the same for the identity keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from service_kit.identity import MAX_TTL, IdentityError, IdentityKeys, identity_keys_parse
from service_kit.var_secrets import SecretFileError, var_dir_path, var_secret, var_secret_read

from .errors import ConfigError

#: The holder of the default admin token (STRANGLER_ADMIN_TOKEN or $STRANGLER_VAR_DIR/admin-token).
ADMIN_HOLDER = "admin"
#: The shortest admin token accepted: the admin API holds every route.
MIN_ADMIN_TOKEN = 16
_HOLDER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_RENAMED = {
    "STRANGLER_RECORD_REDACT": "STRANGLER_REDACT_HEADERS",
    "STRANGLER_RECORD_REDACT_FIELDS": "STRANGLER_REDACT_FIELDS",
}


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
    identity_secret: str | None = None  # "kid:secret,..." (service_kit.identity)
    identity_ttl: int = MAX_TTL
    auth_cache_ttl: float = 30.0
    shadow_concurrency: int = 32
    shadow_body_limit: int = 1 << 20
    admin_token: str | None = None  # the default holder's ("admin"); none: every admin call 401
    admin_holders: tuple[tuple[str, str], ...] = ()  # more named tokens: (holder, token)
    access_log: bool = True
    body_idle_timeout: float = 10.0
    aggregate_path: str = "/api/overview/"
    keepalive_timeout: float = 75.0
    head_timeout: float = 10.0
    linger: float = 1.0
    shared_state: str | None = None
    login: tuple[str, str] | None = ("POST", "/api/auth/token/")
    logout: tuple[str, str] | None = ("POST", "/api/auth/logout/")
    password_change: tuple[str, str] | None = ("PATCH", "/api/users/me/")
    revoke_channel: str = "strangler:auth:revoked"
    record_buffer: int = 1000
    record_dir: str | None = None
    record_body_limit: int = 64 * 1024
    redact_headers: tuple[str, ...] = ()  # added to redaction.DENIED_HEADERS, never instead
    redact_fields: tuple[str, ...] = ()  # added to redaction.DENIED_KEY_PARTS

    def identity_keys(self) -> IdentityKeys | None:
        """Return the parsed identity keys, None without a secret; ConfigError if malformed."""
        if not self.identity_secret:
            return None
        try:
            return identity_keys_parse(self.identity_secret)
        except IdentityError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def from_env(cls, env: dict | None = None) -> ProxyConfig:
        env = dict(os.environ if env is None else env)
        for old, new in _RENAMED.items():
            if env.get(old):
                raise ConfigError(
                    f"Config {old!r} was replaced by {new!r}, which adds names to the default "
                    "deny-list (it can no longer remove them)."
                )
        identity_ttl = _int(env, "STRANGLER_IDENTITY_TTL", MAX_TTL)
        if not 1 <= identity_ttl <= MAX_TTL:
            raise ConfigError(
                f"Config 'STRANGLER_IDENTITY_TTL' must be 1 to {MAX_TTL} seconds, "
                f"got {identity_ttl}."
            )
        admin_token = env.get("STRANGLER_ADMIN_TOKEN") or None
        if admin_token is not None:
            _check_admin_token("STRANGLER_ADMIN_TOKEN", admin_token)
        config = cls(
            host=env.get("STRANGLER_PROXY_HOST") or "127.0.0.1",
            port=_int(env, "STRANGLER_PROXY_PORT", 8000),
            monolith_url=(env.get("STRANGLER_MONOLITH_URL") or "http://127.0.0.1:8001").rstrip("/"),
            routes_file=env.get("STRANGLER_ROUTES") or None,
            redis_url=env.get("REDIS_URL") or None,
            identity_secret=env.get("STRANGLER_IDENTITY_SECRET") or None,
            identity_ttl=identity_ttl,
            auth_cache_ttl=_float(env, "STRANGLER_AUTH_CACHE_TTL", 30.0),
            shadow_concurrency=_int(env, "STRANGLER_SHADOW_CONCURRENCY", 32),
            admin_token=admin_token,
            access_log=(env.get("STRANGLER_ACCESS_LOG") or "1").lower()
            not in {"0", "false", "no", "off"},
            shared_state=env.get("STRANGLER_PROXY_STATE") or None,
            login=_endpoint(env, "STRANGLER_AUTH_LOGIN", ("POST", "/api/auth/token/")),
            logout=_endpoint(env, "STRANGLER_AUTH_LOGOUT", ("POST", "/api/auth/logout/")),
            password_change=_endpoint(
                env, "STRANGLER_AUTH_PASSWORD_CHANGE", ("PATCH", "/api/users/me/")
            ),
            revoke_channel=env.get("STRANGLER_AUTH_REVOKE_CHANNEL") or "strangler:auth:revoked",
            record_buffer=_int(env, "STRANGLER_RECORD_BUFFER", 1000),
            record_dir=env.get("STRANGLER_RECORD_DIR") or None,
            record_body_limit=_int(env, "STRANGLER_RECORD_BODY_LIMIT", 64 * 1024),
            redact_headers=_additions(env, "STRANGLER_REDACT_HEADERS"),
            redact_fields=_additions(env, "STRANGLER_REDACT_FIELDS"),
        )
        config.identity_keys()  # malformed keys: refused now, naming the entry
        return config


def _additions(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Return the comma-separated names in `name`, added to a default deny-list."""
    raw = env.get(name) or ""
    if raw.strip().lower() in {"none", "off", "-"}:
        raise ConfigError(
            f"Config {name!r} adds names to the default deny-list; it cannot remove them, "
            f"got {raw!r}."
        )
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _endpoint(
    env: Mapping[str, str], name: str, default: tuple[str, str]
) -> tuple[str, str] | None:
    """Return ``(METHOD, /path)`` from `name` ("METHOD /path"), `default` when unset, or None for
    "off"."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    if raw.strip().lower() in {"0", "off", "none", "false", "no"}:
        return None
    method, _, path = raw.strip().partition(" ")
    path = path.strip()
    if not method.isalpha() or not path.startswith("/") or " " in path:
        raise ConfigError(f"Config {name!r} must be 'METHOD /path' or 'off', got {raw!r}.")
    return (method.upper(), path)


def _check_admin_token(where: str, token: str) -> None:
    if len(token) < MIN_ADMIN_TOKEN or not token.isprintable() or " " in token:
        raise ConfigError(
            f"The admin token in {where} must be at least {MIN_ADMIN_TOKEN} printable characters "
            "without spaces (it holds every route)."
        )


def admin_tokens_load(
    config: ProxyConfig, env: Mapping[str, str] | None = None
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """Return ``(default token, named tokens)`` for a proxy about to serve.

    The default token is STRANGLER_ADMIN_TOKEN, else ``$STRANGLER_VAR_DIR/admin-token``, made up
    (mode 0600) if it does not exist. Named tokens are the files of
    ``$STRANGLER_VAR_DIR/admin-tokens/``: the file name is the holder the change log records,
    its content the token (mode 0600 too).
    """
    env = os.environ if env is None else env
    var_dir = var_dir_path(env)
    try:
        token = config.admin_token or var_secret(var_dir=var_dir, name="admin-token")
        holders = []
        folder = var_dir / "admin-tokens"
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            if path.name.startswith("."):
                continue
            if not _HOLDER.match(path.name) or path.name == ADMIN_HOLDER:
                raise ConfigError(
                    f"Admin token file {path}: the holder name must be 1-64 letters, digits or "
                    f"._- and not {ADMIN_HOLDER!r}."
                )
            named = var_secret_read(var_dir=folder, name=path.name)
            _check_admin_token(str(path), named or "")
            holders.append((path.name, named))
    except SecretFileError as exc:
        raise ConfigError(str(exc)) from None
    _check_admin_token(str(var_dir / "admin-token"), token)
    return token, tuple(holders)


def identity_secret_load(config: ProxyConfig, env: Mapping[str, str] | None = None) -> str:
    """Return STRANGLER_IDENTITY_SECRET, else ``$STRANGLER_VAR_DIR/identity-secret`` (made once).

    The halves read the same file (service_kit.var_secrets), so a proxy and services started by
    hand in one var dir agree on the key without configuration.
    """
    if config.identity_secret:
        return config.identity_secret
    env = os.environ if env is None else env
    try:
        return var_secret(var_dir=Path(var_dir_path(env)), name="identity-secret")
    except SecretFileError as exc:
        raise ConfigError(str(exc)) from None
