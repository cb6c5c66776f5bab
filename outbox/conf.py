"""Read the outbox's settings from django.conf.settings, each with a default, at call time.

| setting | default | meaning |
|---|---|---|
| `BROKER_URL` | `filesystem://` | where events go (RabbitMQ: `amqp://...`; `;` between nodes) |
| `OUTBOX_BROKER_URL` | `""`: BROKER_URL | the outbox's own connections (a half's broker user) |
| `STRANGLER_SERVICE_NAME` | `"monolith"` | this process's service: the `origin` of what it writes |
| `OUTBOX_EXCHANGE` | `strangler.events` | the topic exchange for domain events |
| `OUTBOX_STREAM_QUEUE` | `strangler.events.stream` | the stream bound to it with `#`, for replay |
| `OUTBOX_STREAM_MAX_AGE` | `7D` | how long the stream keeps events |
| `OUTBOX_BROADCAST_EXCHANGE` | `strangler.broadcast` | fanout to every instance of a process |
| `OUTBOX_NOTIFY_EXCHANGE` | `strangler.notify` | headers exchange, routes by `x-channel` |
| `OUTBOX_RETRY_DELAYS_MS` | `[1000, 10000, 60000]` | the retry tiers: one delay queue per entry |
| `OUTBOX_GAP_MAX_WAIT_S` | 1.5 x retry delays + 5 s | wait limit of an out-of-order event |
| `OUTBOX_GAP_WAIT_MS` | `200` | how long an out-of-order event waits each time |
| `OUTBOX_RELAY_BATCH` | `4000` | rows claimed per relay transaction |
| `OUTBOX_RELAY_WINDOW` | `8000` | unconfirmed publishes in flight (two batches: no wait per ack) |
| `OUTBOX_RELAY_POLL_S` | `1.0` | poll interval without NOTIFY (services: `relay_poll_seconds`) |
| `OUTBOX_RELAY_CONFIRM_TIMEOUT_S` | `10.0` | longest wait for the broker's confirms of a batch |
| `OUTBOX_RELAY_BACKOFF_MAX_S` | `30.0` | longest wait between reconnects while the broker is down |
| `OUTBOX_RETENTION_S` | `604800` (7 days) | sent rows older than this are deleted |
| `OUTBOX_INBOX_RETENTION_S` | `2592000` (30 days) | inbox rows older than this are deleted |
| `OUTBOX_CLEANUP_BATCH` | `1000` | rows deleted per cleanup statement |
| `OUTBOX_CLEANUP_INTERVAL_S` | `60.0` | how often a running relay cleans up |
| `OUTBOX_CLEANUP_EXTRA` | `[]` | dotted paths of `f(now=...) -> int` also run at each cleanup |
| `OUTBOX_SCHEMA_DIRS` | `[]` | extra folders of `<type>.v<version>.json` schemas |
| `OUTBOX_REQUIRE_SCHEMA` | `True` | refuse to write an event type that has no schema |
| `OUTBOX_CONSUMER_PREFETCH` | `200` | basic_qos prefetch of a consumer |
| `OUTBOX_CONSUMER_BATCH` | `100` | events applied per consumer transaction (one savepoint each) |
| `OUTBOX_QUEUE_TYPE` | `classic` | `quorum` on a cluster: `<service>.events*` replicated |
| `OUTBOX_BROKER_USERS` | `{}`: all from own user | origin -> the broker user it must come from |
| `OUTBOX_METRICS_DIR` | `None` | prometheus-client multiprocess folder shared by a half |
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "BROKER_URL": "filesystem://",
    "OUTBOX_BROKER_URL": "",
    "BROKER_TRANSPORT_OPTIONS": {},
    "STRANGLER_SERVICE_NAME": "monolith",
    "OUTBOX_EXCHANGE": "strangler.events",
    "OUTBOX_STREAM_QUEUE": "strangler.events.stream",
    "OUTBOX_STREAM_MAX_AGE": "7D",
    "OUTBOX_BROADCAST_EXCHANGE": "strangler.broadcast",
    "OUTBOX_NOTIFY_EXCHANGE": "strangler.notify",
    "OUTBOX_RETRY_DELAYS_MS": [1000, 10000, 60000],
    "OUTBOX_GAP_MAX_WAIT_S": None,
    "OUTBOX_GAP_WAIT_MS": 200,
    "OUTBOX_RELAY_BATCH": 4000,
    "OUTBOX_RELAY_WINDOW": 8000,
    "OUTBOX_RELAY_POLL_S": 1.0,
    "OUTBOX_RELAY_CONFIRM_TIMEOUT_S": 10.0,
    "OUTBOX_RELAY_BACKOFF_MAX_S": 30.0,
    "OUTBOX_RETENTION_S": 7 * 24 * 3600,
    "OUTBOX_INBOX_RETENTION_S": 30 * 24 * 3600,
    "OUTBOX_CLEANUP_BATCH": 1000,
    "OUTBOX_CLEANUP_INTERVAL_S": 60.0,
    "OUTBOX_CLEANUP_EXTRA": [],
    "OUTBOX_SCHEMA_DIRS": [],
    "OUTBOX_REQUIRE_SCHEMA": True,
    "OUTBOX_CONSUMER_PREFETCH": 200,
    "OUTBOX_CONSUMER_BATCH": 100,
    "OUTBOX_QUEUE_TYPE": "classic",
    "OUTBOX_BROKER_USERS": {},
    "OUTBOX_METRICS_DIR": None,
}

NOTIFY_CHANNEL = "outbox_events"


def setting(name: str) -> Any:
    """Return the setting `name` from Django settings, or its documented default."""
    if name not in DEFAULTS:
        raise KeyError(f"{name!r} is not an outbox setting; known: {sorted(DEFAULTS)}.")
    return getattr(settings, name, DEFAULTS[name])


def broker_url() -> str:
    """Return the URL the outbox connects with: OUTBOX_BROKER_URL, else BROKER_URL."""
    return setting("OUTBOX_BROKER_URL") or setting("BROKER_URL")


def service_name() -> str:
    """Return this process's service name, the `origin` of every event it writes."""
    return setting("STRANGLER_SERVICE_NAME")
