"""The outbox's Prometheus figures (prometheus-client), and the `/metrics` view of every half.

Two kinds of figures:

* Counted where they happen, in the relay and consumer processes, which serve no HTTP. With
  `PROMETHEUS_MULTIPROC_DIR` set (prometheus-client's multiprocess mode: `strangler up` gives
  each half its own folder, compose a volume shared by the half's containers), every process
  writes its figures to files there and the half's web process adds them up when scraped,
  gunicorn workers included. Without it they stay in their process (tests read them there).

  | metric | type | meaning |
  |---|---|---|
  | `outbox_relay_published_total` | counter | events confirmed, marked sent (rate: publish rate) |
  | `outbox_relay_failures_total` | counter | relay pauses: broker or database down, nack, timeout |
  | `outbox_relay_confirms_in_flight` | gauge | publishes the broker has not confirmed yet |
  | `outbox_relay_lag_seconds` | gauge | write-to-confirm age of the last batch's oldest event |
  | `outbox_consumer_events_total{consumer,outcome}` | counter | deliveries by outcome |

  (outcomes: applied, duplicate, echo, gap, retried, parked, untrusted, dropped, malformed)

* Read from the database and the broker at scrape time (`outbox_status`): `outbox_pending_events`
  (rows pending), `outbox_oldest_pending_age_seconds`, `outbox_sent_retained_events`,
  `outbox_consumer_lag_messages{consumer}`, `outbox_dead_letters{consumer}`,
  `outbox_dlq_queue_messages{consumer}` (DLQ depth),
  `outbox_consumer_last_processed_age_seconds{consumer}`, `outbox_queue_messages{queue}`.

Each half mounts `metrics_view` at `/metrics`. It answers scrapers that reach the half directly
and refuses requests that came through the proxy (they carry `X-Forwarded-For`), so the public
edge does not serve queue names and backlog figures, nor let anyone trigger the scrape queries.
"""

from __future__ import annotations

import contextlib
import functools
import os
from types import SimpleNamespace

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from .selectors import outbox_status

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@functools.cache
def instruments() -> SimpleNamespace:
    """Return this process's counters and gauges, created on first use (never at import)."""
    return SimpleNamespace(
        published=Counter(
            "outbox_relay_published", "Events confirmed by the broker and marked sent."
        ),
        failures=Counter(
            "outbox_relay_failures", "Relay pauses: broker or database unavailable, nacks."
        ),
        in_flight=Gauge(
            "outbox_relay_confirms_in_flight",
            "Publishes the broker has not confirmed yet.",
            multiprocess_mode="livesum",
        ),
        lag=Gauge(
            "outbox_relay_lag_seconds",
            "Seconds from writing the oldest event of the last batch to its confirm.",
            multiprocess_mode="livemax",
        ),
        outcomes=Counter(
            "outbox_consumer_events",
            "Deliveries handled by a consumer, by outcome.",
            ["consumer", "outcome"],
        ),
    )


def consumer_outcomes_count(*, consumer: str, outcomes: list[str]) -> None:
    """Count one batch's outcomes (one increment per outcome, not per event)."""
    counter = instruments().outcomes
    for outcome in set(outcomes):
        counter.labels(consumer, outcome).inc(outcomes.count(outcome))


def process_exit() -> None:
    """Drop this process's live gauges from the multiprocess folder (its counters stay)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(os.getpid())


class OutboxStatusCollector:
    """Collect the figures read from the database and the broker at scrape time."""

    def __init__(self, *, consumers: list[str] | None = None) -> None:
        self.consumers = consumers

    def collect(self):
        status = outbox_status(consumers=self.consumers)
        consumers = status["consumers"]

        def gauge(name, help_text, label, samples):
            family = GaugeMetricFamily(name, help_text, labels=[label] if label else None)
            for key, value in samples:
                if value is not None:
                    family.add_metric([key] if label else [], value)
            return family

        yield gauge(
            "outbox_pending_events",
            "Outbox rows not yet confirmed by the broker.",
            None,
            [(None, status["pending"])],
        )
        yield gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row.",
            None,
            [(None, round(status["oldest_pending_age_s"], 3))],
        )
        yield gauge(
            "outbox_sent_retained_events",
            "Sent rows kept until their retention ends.",
            None,
            [(None, status["sent_retained"])],
        )
        per_consumer = [
            ("outbox_consumer_lag_messages", "Messages ready in a consumer's events queue.",
             "lag_messages"),
            ("outbox_dead_letters", "Events parked for a consumer and not replayed.", "parked"),
            ("outbox_dlq_queue_messages",
             "Messages in a consumer's broker DLQ (bodies it could not read).",
             "dlq_queue_messages"),
            ("outbox_consumer_last_processed_age_seconds",
             "Seconds since a consumer last applied an event.", "last_processed_age_s"),
        ]  # fmt: skip
        for name, help_text, field in per_consumer:
            yield gauge(
                name,
                help_text,
                "consumer",
                [
                    (c, v[field] if v[field] is None else round(v[field], 3))
                    for c, v in consumers.items()
                ],
            )
        yield gauge(
            "outbox_queue_messages", "Ready messages per queue.", "queue", status["queues"].items()
        )


def metrics_text(*, consumers: list[str] | None = None) -> str:
    """Return the scrape-time gauges (database and broker) in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxStatusCollector(consumers=consumers))
    return generate_latest(registry).decode()


def processes_text() -> str:
    """Return the figures counted by this half's processes (all of them in multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry).decode()
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY).decode()


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve every figure of this half to a Prometheus scraper that reaches it directly."""
    if "X-Forwarded-For" in request.headers:
        return JsonResponse(
            {"detail": "Metrics are served to scrapers on the half's own address, not through "
             "the proxy."},
            status=404,
        )  # fmt: skip
    instruments()  # the relay's and consumers' names exist even before their first event
    return HttpResponse(processes_text() + metrics_text(), content_type=CONTENT_TYPE)
