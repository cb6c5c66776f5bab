"""Settings of the payments service, read once from the environment.

| variable | default | meaning |
|---|---|---|
| `DATABASE_URL` | SQLite `var/payments.sqlite3` | the service's own database |
| `MONOLITH_DATABASE_URL` | (unset) | the monolith's database, read only, for backfill/reconcile |
| `BROKER_URL` | `filesystem://` under var | where its outbox publishes and its consumer reads |
| `OUTBOX_RELAY_POLL_S` | `1.0` on PostgreSQL, `0.2` on SQLite | the relay's polling interval |
| `OUTBOX_BROKER_URL` | (unset: `BROKER_URL`) | the outbox's connections: the half's broker user |
| `OUTBOX_QUEUE_TYPE` | `classic` | `quorum` on a RabbitMQ cluster |
| `OUTBOX_BROKER_USERS` | (unset: every origin from its own broker user) | `origin=user,...` |
| `STRANGLER_IDENTITY_SECRET` | `var/identity-secret` (made once) | keys shared with the proxy |
| `STRANGLER_IDENTITY_AUDIENCE` | `payments` | its audience in a signed identity |
| `STRANGLER_SECRET_KEY` | `var/secret-key` (made once) | Django's `SECRET_KEY` |
| `STRANGLER_ORDERS_URL` | `http://127.0.0.1:8001` | orders owner, asked before money moves |
| `STRANGLER_ORDERS_TIMEOUT_S` | `2.0` | patience with the orders owner |
| `STRANGLER_ORDER_REPLICA_WAIT_MS` | `1500` | wait for an in-flight `order.placed` |
| `STRANGLER_PAYMENT_PROVIDER` | `service_kit.payment_provider.SimulatedProvider` | provider class |
| `STRANGLER_PAYMENT_LATENCY_MS`, `STRANGLER_PAYMENT_TIMEOUT_S` | `0`, `5.0` | simulated provider |
| `STRANGLER_IDEMPOTENCY_RETENTION_S` | `86400` | Idempotency-Key answers kept this long |
"""

from pathlib import Path

from service_kit.env import (
    broker_transport_options,
    broker_url,
    database_config,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_mapping,
    env_str,
    relay_poll_seconds,
    var_dir,
)
from service_kit.var_secrets import var_secret

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = var_dir()
STRANGLER_SERVICE_NAME = "payments"

# ---------------------------------------------------------------- core
# Unset: one key made up per var dir and shared by every half (service_kit/var_secrets.py);
# it also keys the payments idempotency fingerprints, which both halves compute alike.
SECRET_KEY = env_str("STRANGLER_SECRET_KEY", "") or var_secret(
    var_dir=VAR_DIR, name="secret-key", nbytes=48
)
DEBUG = env_bool("STRANGLER_DEBUG", False)
ALLOWED_HOSTS = env_str("STRANGLER_ALLOWED_HOSTS", "*").split(",")
# Behind strangler_proxy, links (pagination `next`/`previous`) must name the proxy's host, not
# the half that happened to serve: the proxy sends the client's Host as X-Forwarded-Host.
USE_X_FORWARDED_HOST = env_bool("STRANGLER_USE_X_FORWARDED_HOST", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# No django.contrib.auth: the service has no user table; the proxy vouches for the caller.
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "rest_framework",
    "drf_spectacular",
    "outbox",
    "extracted.payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "extracted.payments.urls"
WSGI_APPLICATION = "extracted.payments.wsgi.application"
APPEND_SLASH = True
TEMPLATES = []

# ---------------------------------------------------------------- data
DATABASES = {"default": database_config("payments")}
if env_str("MONOLITH_DATABASE_URL", ""):
    DATABASES["monolith"] = database_config("monolith", env_name="MONOLITH_DATABASE_URL")
    # Read only: the service never writes the monolith's database.
    if DATABASES["monolith"]["ENGINE"].endswith("postgresql"):
        DATABASES["monolith"].setdefault("OPTIONS", {})["options"] = (
            "-c default_transaction_read_only=on"
        )
    DATABASES["monolith"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["extracted.payments.routers.MonolithReadOnlyRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("STRANGLER_MAX_BODY_BYTES", 1_048_576)

# ---------------------------------------------------------------- API (the monolith's contract)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["service_kit.identity_auth.SignedIdentityAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("STRANGLER_PAGE_SIZE", 20),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "service_kit.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["service_kit.parsers.BoundedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "COERCE_DECIMAL_TO_STRING": True,
    # No auth app, so no AnonymousUser model to import: an anonymous request's user is None.
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "strangler payments service API",
    "DESCRIPTION": "The payments API, extracted from the monolith with the same contract.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# ---------------------------------------------------------------- identity and orders
# The proxy's signing keys ("kid:secret,..."); unset: the var dir's, as the proxy reads it.
STRANGLER_IDENTITY_SECRET = env_str("STRANGLER_IDENTITY_SECRET", "") or var_secret(
    var_dir=VAR_DIR, name="identity-secret"
)
# The audience this service checks in a signed identity: the name the proxy's table gives it.
STRANGLER_IDENTITY_AUDIENCE = env_str("STRANGLER_IDENTITY_AUDIENCE", STRANGLER_SERVICE_NAME)
STRANGLER_ORDERS_URL = env_str("STRANGLER_ORDERS_URL", "http://127.0.0.1:8001")
STRANGLER_ORDERS_TIMEOUT_S = env_float("STRANGLER_ORDERS_TIMEOUT_S", 2.0)
STRANGLER_ORDER_REPLICA_WAIT_MS = env_int("STRANGLER_ORDER_REPLICA_WAIT_MS", 1500)

# ---------------------------------------------------------------- payments
STRANGLER_PAYMENT_PROVIDER = env_str(
    "STRANGLER_PAYMENT_PROVIDER", "service_kit.payment_provider.SimulatedProvider"
)
STRANGLER_PAYMENT_LATENCY_MS = env_int("STRANGLER_PAYMENT_LATENCY_MS", 0)
STRANGLER_PAYMENT_TIMEOUT_S = env_float("STRANGLER_PAYMENT_TIMEOUT_S", 5.0)
# Idempotency-Key records older than this are deleted by the outbox relay's cleanup.
STRANGLER_IDEMPOTENCY_RETENTION_S = env_float(
    "STRANGLER_IDEMPOTENCY_RETENTION_S", 24 * 3600.0, above=0.0
)
OUTBOX_CLEANUP_EXTRA = ["extracted.payments.services.purge_expired_idempotency_records"]

# ---------------------------------------------------------------- outbox
BROKER_URL = broker_url()
BROKER_TRANSPORT_OPTIONS = broker_transport_options(BROKER_URL)
REDIS_URL = env_str("REDIS_URL", "")
# Where proxies hear that a user's tokens were revoked (service_kit.revocations).
STRANGLER_AUTH_REVOKE_CHANNEL = env_str("STRANGLER_AUTH_REVOKE_CHANNEL", "strangler:auth:revoked")
OUTBOX_RELAY_POLL_S = relay_poll_seconds(DATABASES["default"])
# The outbox's own connections: a half's broker user (strangler up sets it), else BROKER_URL.
OUTBOX_BROKER_URL = env_str("OUTBOX_BROKER_URL", "")
# classic on one node; quorum on a RabbitMQ cluster (docs/outbox.md, "On a cluster").
OUTBOX_QUEUE_TYPE = env_choice("OUTBOX_QUEUE_TYPE", "classic", ("classic", "quorum"))
# origin=broker user pairs: whose user_id vouches for whose events (docs/outbox.md, "Senders").
OUTBOX_BROKER_USERS = env_mapping("OUTBOX_BROKER_USERS")

# ---------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("STRANGLER_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
