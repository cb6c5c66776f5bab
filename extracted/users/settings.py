"""Settings of the users service, read once from the environment.

| variable | default | meaning |
|---|---|---|
| `DATABASE_URL` | SQLite `var/users.sqlite3` | the service's own database |
| `MONOLITH_DATABASE_URL` | (unset) | the monolith's database, read only, for backfill/reconcile |
| `BROKER_URL` | `filesystem://` under var | where its outbox publishes and its consumer reads |
| `OUTBOX_BROKER_URL` | (unset: `BROKER_URL`) | the outbox's connections: the half's broker user |
| `OUTBOX_QUEUE_TYPE` | `classic` | `quorum` on a RabbitMQ cluster |
| `OUTBOX_BROKER_USERS` | (unset: every origin from its own broker user) | `origin=user,...` |
| `REDIS_URL` | unset | login throttles (else a database table), revocations told to the proxies |
| `STRANGLER_IDENTITY_SECRET` | `var/identity-secret` (made once) | keys shared with the proxy |
| `STRANGLER_IDENTITY_AUDIENCE` | `users` | its audience in a signed identity |
| `STRANGLER_SECRET_KEY` | `var/secret-key` (made once) | Django's `SECRET_KEY` |
| `STRANGLER_USERS_ID_START` | `1000000000` | the first id this service gives a user it registers |
| `STRANGLER_USER_REPLICA_WAIT_MS` | `1500` | wait for a user or token the other half just made |
| `STRANGLER_TOKEN_TTL_S`, `STRANGLER_TOKENS_PER_USER` | `604800`, `20` | as on the monolith |
| `STRANGLER_LOGIN_*`, `STRANGLER_TRUSTED_PROXIES` | as on the monolith | login throttles |
| `STRANGLER_FAST_PASSWORD_HASHER` | `0` | MD5 for tests and seeds; both halves must agree |
"""

from datetime import timedelta
from pathlib import Path

from service_kit.env import (
    broker_transport_options,
    broker_url,
    database_config,
    env_bool,
    env_choice,
    env_int,
    env_mapping,
    env_str,
    relay_poll_seconds,
    shared_cache_config,
    var_dir,
)
from service_kit.var_secrets import var_secret

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = var_dir()
STRANGLER_SERVICE_NAME = "users"

# ---------------------------------------------------------------- core
SECRET_KEY = env_str("STRANGLER_SECRET_KEY", "") or var_secret(
    var_dir=VAR_DIR, name="secret-key", nbytes=48
)
DEBUG = env_bool("STRANGLER_DEBUG", False)
ALLOWED_HOSTS = env_str("STRANGLER_ALLOWED_HOSTS", "*").split(",")
USE_X_FORWARDED_HOST = env_bool("STRANGLER_USE_X_FORWARDED_HOST", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "outbox",
    "extracted.users",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "extracted.users.urls"
WSGI_APPLICATION = "extracted.users.wsgi.application"
APPEND_SLASH = True
TEMPLATES = []

# ---------------------------------------------------------------- data
DATABASES = {"default": database_config("users")}
if env_str("MONOLITH_DATABASE_URL", ""):
    DATABASES["monolith"] = database_config("monolith", env_name="MONOLITH_DATABASE_URL")
    if DATABASES["monolith"]["ENGINE"].endswith("postgresql"):
        DATABASES["monolith"].setdefault("OPTIONS", {})["options"] = (
            "-c default_transaction_read_only=on"
        )
    DATABASES["monolith"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["extracted.users.routers.MonolithReadOnlyRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "users_service.User"
# The monolith's validators, so a password refused there is refused here, in the same words.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's default hashers (PBKDF2 first), as on the monolith: a hash made there checks here.
if env_bool("STRANGLER_FAST_PASSWORD_HASHER", False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("STRANGLER_MAX_BODY_BYTES", 1_048_576)

# ---------------------------------------------------------------- API (the monolith's contract)
REST_FRAMEWORK = {
    # The identity the proxy signed for this service first; a bare Bearer token (the proxy
    # asking who a token is, once identity is ours) is checked against our token digests.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "service_kit.identity_auth.SignedIdentityUserAuthentication",
        "service_kit.auth.BearerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("STRANGLER_PAGE_SIZE", 20),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "service_kit.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["service_kit.parsers.BoundedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
STRANGLER_TOKEN_TTL_S = env_int("STRANGLER_TOKEN_TTL_S", 7 * 24 * 3600)
STRANGLER_TOKENS_PER_USER = env_int("STRANGLER_TOKENS_PER_USER", 20)
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": timedelta(seconds=STRANGLER_TOKEN_TTL_S),
    "AUTO_REFRESH": False,
}
STRANGLER_LOGIN_ACCOUNT_FAILURES = env_int("STRANGLER_LOGIN_ACCOUNT_FAILURES", 10)
STRANGLER_LOGIN_ACCOUNT_WINDOW_S = env_int("STRANGLER_LOGIN_ACCOUNT_WINDOW_S", 900)
STRANGLER_LOGIN_ADDRESS_ATTEMPTS = env_int("STRANGLER_LOGIN_ADDRESS_ATTEMPTS", 600)
STRANGLER_LOGIN_ADDRESS_WINDOW_S = env_int("STRANGLER_LOGIN_ADDRESS_WINDOW_S", 300)
# Not imported from service_kit.login_throttle: that would load DRF before these settings exist.
STRANGLER_TRUSTED_PROXIES = env_str(
    "STRANGLER_TRUSTED_PROXIES",
    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
)
SPECTACULAR_SETTINGS = {
    "TITLE": "strangler users service API",
    "DESCRIPTION": "The users API, extracted from the monolith with the same contract.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# ---------------------------------------------------------------- identity and ids
STRANGLER_IDENTITY_SECRET = env_str("STRANGLER_IDENTITY_SECRET", "") or var_secret(
    var_dir=VAR_DIR, name="identity-secret"
)
STRANGLER_IDENTITY_AUDIENCE = env_str("STRANGLER_IDENTITY_AUDIENCE", STRANGLER_SERVICE_NAME)
STRANGLER_USERS_ID_START = env_int("STRANGLER_USERS_ID_START", 1_000_000_000)
STRANGLER_USER_REPLICA_WAIT_MS = env_int("STRANGLER_USER_REPLICA_WAIT_MS", 1500)

# ---------------------------------------------------------------- outbox, Redis, cache
BROKER_URL = broker_url()
BROKER_TRANSPORT_OPTIONS = broker_transport_options(BROKER_URL)
REDIS_URL = env_str("REDIS_URL", "")
STRANGLER_AUTH_REVOKE_CHANNEL = env_str("STRANGLER_AUTH_REVOKE_CHANNEL", "strangler:auth:revoked")
CACHES = {
    "default": shared_cache_config(
        service=STRANGLER_SERVICE_NAME, database=DATABASES["default"], redis_url=REDIS_URL
    )
}
OUTBOX_RELAY_POLL_S = relay_poll_seconds(DATABASES["default"])
# The outbox's own connections: a half's broker user (strangler up sets it), else BROKER_URL.
OUTBOX_BROKER_URL = env_str("OUTBOX_BROKER_URL", "")
# classic on one node; quorum on a RabbitMQ cluster (docs/outbox.md, "On a cluster").
OUTBOX_QUEUE_TYPE = env_choice("OUTBOX_QUEUE_TYPE", "classic", ("classic", "quorum"))
# origin=broker user pairs: whose user_id vouches for whose events (docs/outbox.md, "Senders").
OUTBOX_BROKER_USERS = env_mapping("OUTBOX_BROKER_USERS")
OUTBOX_CLEANUP_EXTRA = [
    "extracted.users.services.token_purge_expired",
    "extracted.users.services.throttle_purge_expired",
]

# ---------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("STRANGLER_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
