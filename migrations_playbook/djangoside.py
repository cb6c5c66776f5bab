"""What the playbook asks of one half's Django project, run in that half's settings.

    python -m migrations_playbook.djangoside lag --consumer payments --consumer monolith
    python -m migrations_playbook.djangoside subscribe --consumer payments [--handlers MODULE]

The engine runs this module as a subprocess with DJANGO_SETTINGS_MODULE and DATABASE_URL of the
half it asks about (a process can hold only one Django project), and reads one JSON line back.

* `lag`: the half's outbox backlog (unsent rows, age of the oldest) and the depth of each named
  consumer's queue. On RabbitMQ the depth is the queue's ready count; on kombu's filesystem
  transport it is the number of message files waiting for that queue (the transport keeps one
  file per message, named `<time>_<uuid>.<queue>.msg`).
* `subscribe`: declare the consumer's queue with its bindings (idempotent), so events published
  from now on wait for it even before its process runs: the backfill's gapless handover needs
  the queue bound before the copy starts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path


def _filesystem_depths(consumers: list[str]) -> dict[str, int]:
    from outbox.conf import setting
    from outbox.topology import service_queue_name

    folder = Path(setting("BROKER_TRANSPORT_OPTIONS").get("data_folder_in", "."))
    names = [entry.name for entry in folder.iterdir()] if folder.exists() else []
    return {
        consumer: sum(name.endswith(f".{service_queue_name(consumer)}.msg") for name in names)
        for consumer in consumers
    }


def lag(consumers: list[str]) -> dict:
    """Return the outbox backlog of this half and the queue depth of each consumer."""
    from django.db.models import Count, Min
    from django.utils import timezone

    from outbox.broker import broker_connection
    from outbox.models import OutboxEvent
    from outbox.selectors import queue_depths
    from outbox.topology import service_queue_name

    pending = OutboxEvent.objects.filter(sent_at=None).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    oldest = (timezone.now() - pending["oldest"]).total_seconds() if pending["oldest"] else 0.0
    if broker_connection().transport.driver_type == "amqp":
        found = queue_depths([service_queue_name(c) for c in consumers])
        depths = {c: d.messages for c, d in zip(consumers, found, strict=True)}
    else:
        depths = _filesystem_depths(consumers)
    return {"pending": pending["n"], "oldest_pending_age_s": oldest, "queues": depths}


def subscribe(consumer: str, handlers: str | None) -> dict:
    """Bind `consumer`'s queue to the events its handlers subscribe to; return the keys."""
    from django.utils.module_loading import autodiscover_modules

    from outbox.broker import broker_connection
    from outbox.registry import registry
    from outbox.topology import declare_consumer, service_queue_name

    autodiscover_modules("handlers")
    if handlers:
        importlib.import_module(handlers)
    keys = registry.binding_keys(consumer)
    if not keys:
        raise SystemExit(f"no handlers are registered for consumer {consumer!r}")
    with broker_connection() as connection:
        declare_consumer(connection, service=consumer, binding_keys=keys)
    return {"queue": service_queue_name(consumer), "binding_keys": keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrations_playbook.djangoside")
    sub = parser.add_subparsers(dest="command", required=True)
    lag_parser = sub.add_parser("lag")
    lag_parser.add_argument("--consumer", action="append", default=[])
    subscribe_parser = sub.add_parser("subscribe")
    subscribe_parser.add_argument("--consumer", required=True)
    subscribe_parser.add_argument("--handlers")
    args = parser.parse_args(argv)
    import django

    django.setup()
    if args.command == "lag":
        result = lag(args.consumer)
    else:
        result = subscribe(args.consumer, args.handlers)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
