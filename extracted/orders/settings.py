"""Settings of the orders service, read once from the environment.

| variable | default | meaning |
|---|---|---|
| `DATABASE_URL` | SQLite `var/orders.sqlite3` | its own database: events, read models |
| `MONOLITH_DATABASE_URL` | (unset) | the monolith's database, read only, for backfill/reconcile |
| `BROKER_URL` | `filesystem://` under var | where its outbox publishes and its consumers read |
| `OUTBOX_RELAY_POLL_S` | `1.0` on PostgreSQL, `0.2` on SQLite | the relay's polling interval |
| `STRANGLER_IDENTITY_SECRET` | (unset: signed-in requests are 401) | the proxy's HMAC key |
| `STRANGLER_ORDERS_SNAPSHOT_EVERY` | `10` | an order's state is snapshotted every N events |
| `STRANGLER_ORDERS_CONFLICT_RETRIES` | `3` | re-decisions of a command that lost a version race |
"""

from pathlib import Path

from service_kit.env import (
    broker_transport_options,
    broker_url,
    database_config,
    env_bool,
    env_int,
    env_str,
    relay_poll_seconds,
    var_dir,
)
from service_kit.var_secrets import var_secret

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = var_dir()
STRANGLER_SERVICE_NAME = "orders"

# ---------------------------------------------------------------- core
# Unset: one key made up per var dir and shared by every half (service_kit/var_secrets.py).
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
    "extracted.orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "extracted.orders.urls"
WSGI_APPLICATION = "extracted.orders.wsgi.application"
APPEND_SLASH = True
TEMPLATES = []

# ---------------------------------------------------------------- data
DATABASES = {"default": database_config("orders")}
if env_str("MONOLITH_DATABASE_URL", ""):
    DATABASES["monolith"] = database_config("monolith", env_name="MONOLITH_DATABASE_URL")
    # Read only: the service never writes the monolith's database.
    if DATABASES["monolith"]["ENGINE"].endswith("postgresql"):
        DATABASES["monolith"].setdefault("OPTIONS", {})["options"] = (
            "-c default_transaction_read_only=on"
        )
    DATABASES["monolith"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["extracted.orders.routers.MonolithReadOnlyRouter"]
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
    "TITLE": "strangler orders service API",
    "DESCRIPTION": "The orders and catalogue API, out of the monolith with the same contract.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# ---------------------------------------------------------------- identity
# The proxy's signing keys ("kid:secret,..."); unset: the var dir's, as the proxy reads it.
STRANGLER_IDENTITY_SECRET = env_str("STRANGLER_IDENTITY_SECRET", "") or var_secret(
    var_dir=VAR_DIR, name="identity-secret"
)
# The audience this service checks in a signed identity: the name the proxy's table gives it.
STRANGLER_IDENTITY_AUDIENCE = env_str("STRANGLER_IDENTITY_AUDIENCE", STRANGLER_SERVICE_NAME)

# ---------------------------------------------------------------- the event store
# Snapshots spare a long stream its replay; an order rarely has more than four events, so the
# default mostly matters for tests and for streams a future feature makes longer.
STRANGLER_ORDERS_SNAPSHOT_EVERY = env_int("STRANGLER_ORDERS_SNAPSHOT_EVERY", 10)
STRANGLER_ORDERS_CONFLICT_RETRIES = env_int("STRANGLER_ORDERS_CONFLICT_RETRIES", 3)

# ---------------------------------------------------------------- outbox
BROKER_URL = broker_url()
BROKER_TRANSPORT_OPTIONS = broker_transport_options(BROKER_URL)
REDIS_URL = env_str("REDIS_URL", "")
OUTBOX_RELAY_POLL_S = relay_poll_seconds(DATABASES["default"])

# ---------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("STRANGLER_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
