"""Settings of the monolith, read once from the environment (see README, "Configuration").

Unset variables mean the embedded default: a SQLite file and kombu's filesystem broker under
`STRANGLER_VAR_DIR` (./var), so `make run` works on a machine with no servers installed.
"""

from datetime import timedelta
from pathlib import Path

from kombu import Exchange, Queue

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
    shared_cache_config,
    var_dir,
)
from service_kit.var_secrets import var_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = var_dir()
STRANGLER_SERVICE_NAME = "monolith"

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

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "monolith.users",
    "monolith.orders",
    "monolith.payments",
    "monolith.imports",
    "monolith.notifications",
    "monolith.analytics",
    "outbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "monolith.correlation.CorrelationMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "monolith.urls"
WSGI_APPLICATION = "monolith.wsgi.application"
APPEND_SLASH = True

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------- data
DATABASES = {"default": database_config("monolith")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Fast hashing where tests and seeds ask for it; PBKDF2 otherwise.
if env_bool("STRANGLER_FAST_PASSWORD_HASHER", False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(env_str("STRANGLER_MEDIA_ROOT", str(VAR_DIR / "media")))
# Huge payloads are refused with 413 before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("STRANGLER_MAX_BODY_BYTES", 1_048_576)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# A bulk-import CSV upload larger than this is refused with 400 naming the `file` field.
STRANGLER_IMPORT_MAX_BYTES = env_int("STRANGLER_IMPORT_MAX_BYTES", 5 * 1_048_576)

# ---------------------------------------------------------------- API
REST_FRAMEWORK = {
    # The identity the proxy signed for the monolith first (from step 2 the proxy verifies a
    # token once, with whichever half owns identity); a bare Bearer token is still checked here,
    # where the monolith owns identity (the proxy asks it) or is called directly.
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
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# API tokens (django-rest-knox): stored as SHA-512 digests, one per login, each expiring.
STRANGLER_TOKEN_TTL_S = env_int("STRANGLER_TOKEN_TTL_S", 7 * 24 * 3600)
STRANGLER_TOKENS_PER_USER = env_int("STRANGLER_TOKENS_PER_USER", 20)
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": timedelta(seconds=STRANGLER_TOKEN_TTL_S),
    "AUTO_REFRESH": False,
}
# The proxy's identity keys ("kid:secret,..."); unset: the var dir's, as the proxy reads it.
STRANGLER_IDENTITY_SECRET = env_str("STRANGLER_IDENTITY_SECRET", "") or var_secret(
    var_dir=VAR_DIR, name="identity-secret"
)
STRANGLER_IDENTITY_AUDIENCE = env_str("STRANGLER_IDENTITY_AUDIENCE", STRANGLER_SERVICE_NAME)
# Users the users service registers get ids from here up (step 2); the monolith's stay below.
STRANGLER_USERS_ID_START = env_int("STRANGLER_USERS_ID_START", 1_000_000_000)
# How long a signed identity waits for its user's registration to arrive from the other half.
STRANGLER_USER_REPLICA_WAIT_MS = env_int("STRANGLER_USER_REPLICA_WAIT_MS", 1500)
# Login throttles (service_kit/login_throttle.py): failures per account, attempts per address.
STRANGLER_LOGIN_ACCOUNT_FAILURES = env_int("STRANGLER_LOGIN_ACCOUNT_FAILURES", 10)
STRANGLER_LOGIN_ACCOUNT_WINDOW_S = env_int("STRANGLER_LOGIN_ACCOUNT_WINDOW_S", 900)
STRANGLER_LOGIN_ADDRESS_ATTEMPTS = env_int("STRANGLER_LOGIN_ADDRESS_ATTEMPTS", 600)
STRANGLER_LOGIN_ADDRESS_WINDOW_S = env_int("STRANGLER_LOGIN_ADDRESS_WINDOW_S", 300)
# Peers whose X-Forwarded-For is believed: the proxy, on loopback or the private network.
STRANGLER_TRUSTED_PROXIES = env_str(
    "STRANGLER_TRUSTED_PROXIES",
    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
)

SPECTACULAR_SETTINGS = {
    "TITLE": "strangler monolith API",
    "DESCRIPTION": "Users, orders and payments: the contract every extracted service keeps.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# ---------------------------------------------------------------- payments
# The simulated provider's latency, in milliseconds, and its timeout (see payments/provider.py).
STRANGLER_PAYMENT_PROVIDER = env_str(
    "STRANGLER_PAYMENT_PROVIDER", "monolith.payments.provider.SimulatedProvider"
)
STRANGLER_PAYMENT_LATENCY_MS = env_int("STRANGLER_PAYMENT_LATENCY_MS", 0)
STRANGLER_PAYMENT_TIMEOUT_S = env_float("STRANGLER_PAYMENT_TIMEOUT_S", 5.0)
# Idempotency-Key records older than this are deleted by the outbox relay's cleanup.
STRANGLER_IDEMPOTENCY_RETENTION_S = env_float(
    "STRANGLER_IDEMPOTENCY_RETENTION_S", 24 * 3600.0, above=0.0
)
OUTBOX_CLEANUP_EXTRA = [
    "monolith.payments.services.purge_expired_idempotency_records",
    "monolith.users.services.token_purge_expired",
    "monolith.users.services.throttle_purge_expired",
]

# ---------------------------------------------------------------- email
EMAIL_BACKEND = env_str(
    "STRANGLER_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env_str("STRANGLER_FROM_EMAIL", "shop@strangler.example")

# ---------------------------------------------------------------- Celery, Redis, cache
BROKER_URL = broker_url()
BROKER_TRANSPORT_OPTIONS = broker_transport_options(BROKER_URL)
REDIS_URL = env_str("REDIS_URL", "")
# Where proxies hear that a user's tokens were revoked (service_kit.revocations).
STRANGLER_AUTH_REVOKE_CHANNEL = env_str("STRANGLER_AUTH_REVOKE_CHANNEL", "strangler:auth:revoked")
# Shared by the web workers (login throttles): Redis when set, else a database table.
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
CELERY_BROKER_URL = BROKER_URL
CELERY_BROKER_TRANSPORT_OPTIONS = BROKER_TRANSPORT_OPTIONS
CELERY_RESULT_BACKEND = env_str(
    "STRANGLER_RESULT_BACKEND", REDIS_URL or f"file://{VAR_DIR / 'celery-results'}"
)
if CELERY_RESULT_BACKEND.startswith("file://"):
    (VAR_DIR / "celery-results").mkdir(exist_ok=True)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ALWAYS_EAGER = env_bool("STRANGLER_CELERY_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Celery's job queues hang off one direct exchange; emails get their own priority queue.
_JOBS = Exchange("strangler.jobs", type="direct", durable=True)
CELERY_TASK_DEFAULT_QUEUE = "monolith.jobs"
CELERY_TASK_DEFAULT_EXCHANGE = _JOBS.name
CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "direct"
CELERY_TASK_DEFAULT_ROUTING_KEY = "monolith.jobs"
CELERY_TASK_QUEUES = (
    Queue("monolith.jobs", _JOBS, routing_key="monolith.jobs", durable=True),
    Queue(
        "monolith.emails",
        _JOBS,
        routing_key="monolith.emails",
        durable=True,
        queue_arguments={"x-max-priority": 10},
    ),
)
# Priorities (0-10) on the emails queue: receipts before welcomes before any other mail.
CELERY_TASK_ROUTES = {
    "monolith.orders.tasks.send_order_confirmation": {"queue": "monolith.emails", "priority": 7},
    "monolith.users.tasks.send_welcome_email": {"queue": "monolith.emails", "priority": 5},
    "monolith.*.tasks.send_*": {"queue": "monolith.emails"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# ---------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("STRANGLER_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
