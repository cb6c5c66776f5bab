"""The outbox's figures as Prometheus text (exposition format 0.0.4), and a view serving them.

Mount it where the service exposes metrics, e.g. `path("_outbox/", include("outbox.urls"))`.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from .selectors import outbox_status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(*, consumers: list[str] | None = None) -> str:
    """Return the outbox's gauges in Prometheus text format."""
    status = outbox_status(consumers=consumers)
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[dict[str, str], float | None]]):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            if value is None:
                continue
            rendered = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")

    consumers_ = status["consumers"]
    gauge(
        "outbox_pending_events",
        "Outbox rows not yet confirmed by the broker.",
        [({}, status["pending"])],
    )
    gauge(
        "outbox_oldest_pending_age_seconds",
        "Age of the oldest pending outbox row.",
        [({}, round(status["oldest_pending_age_s"], 3))],
    )
    gauge(
        "outbox_sent_retained_events",
        "Sent rows kept until their retention ends.",
        [({}, status["sent_retained"])],
    )
    gauge(
        "outbox_consumer_lag_messages",
        "Messages ready in a consumer's events queue.",
        [({"consumer": c}, v["lag_messages"]) for c, v in consumers_.items()],
    )
    gauge(
        "outbox_dead_letters",
        "Events parked for a consumer and not replayed.",
        [({"consumer": c}, v["parked"]) for c, v in consumers_.items()],
    )
    gauge(
        "outbox_dlq_queue_messages",
        "Messages in a consumer's broker DLQ (bodies it could not read).",
        [({"consumer": c}, v["dlq_queue_messages"]) for c, v in consumers_.items()],
    )
    gauge(
        "outbox_consumer_last_processed_age_seconds",
        "Seconds since a consumer last applied an event.",
        [
            ({"consumer": c}, v["last_processed_age_s"] and round(v["last_processed_age_s"], 3))
            for c, v in consumers_.items()
        ],
    )
    gauge(
        "outbox_queue_messages",
        "Ready messages per queue.",
        [({"queue": q}, n) for q, n in status["queues"].items()],
    )
    return "\n".join(lines) + "\n"


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve metrics_text() to a Prometheus scraper."""
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
