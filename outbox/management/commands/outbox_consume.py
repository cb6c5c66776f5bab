"""`manage.py outbox_consume --service NAME`: apply events from `<NAME>.events` until stopped.

`--from-stream OFFSET` first rebuilds the consumer from the replay stream (every event kept by
the broker, from `first`, `last`, `next`, a numeric offset or an ISO timestamp) through its inbox,
so events it already applied are skipped, then goes on with its live queue (`--replay-only`
stops after the stream).
"""

from __future__ import annotations

import importlib
import signal
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import autodiscover_modules

from outbox.consumer import EventConsumer
from outbox.metrics import process_exit
from outbox.registry import registry


class Command(BaseCommand):
    help = "Consume a service's event queue: effect-once, in order per aggregate, with retries."

    def add_arguments(self, parser):
        parser.add_argument("--service", required=True, help="Consumer name; queue NAME.events.")
        parser.add_argument(
            "--handlers",
            action="append",
            default=[],
            help="Extra module(s) registering handlers (apps' handlers.py are found anyway).",
        )
        parser.add_argument("--broker-url", help="Override BROKER_URL for this consumer.")
        parser.add_argument(
            "--from-stream",
            metavar="OFFSET",
            type=stream_offset,
            help="first rebuild from the replay stream at OFFSET: first, last, next, a number "
            "or an ISO timestamp (needs RabbitMQ)",
        )
        parser.add_argument(
            "--replay-only", action="store_true", help="with --from-stream: stop after it"
        )

    def handle(
        self,
        *args,
        service,
        handlers,
        broker_url=None,
        from_stream=None,
        replay_only=False,
        **options,
    ):
        autodiscover_modules("handlers")
        for module in handlers:
            importlib.import_module(module)
        if not registry.subscriptions(service):
            raise CommandError(
                f"No handlers are registered for consumer {service!r}; "
                f"known consumers: {registry.consumers() or 'none'}."
            )
        if replay_only and from_stream is None:
            raise CommandError("--replay-only needs --from-stream OFFSET.")
        if from_stream is not None:
            self._replay(service=service, offset=from_stream)
            if replay_only:
                return
        stopping = {"now": False}

        def stop(signum, frame):
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        keys = ", ".join(registry.binding_keys(service))
        self.stdout.write(f"outbox consumer {service!r} bound to {keys}")
        consumer = EventConsumer(
            service=service, broker_url=broker_url, should_stop=lambda: stopping["now"]
        )
        try:
            stats = consumer.run()
        finally:
            process_exit()
        self.stdout.write(f"outbox consumer {service!r} stopped: {stats.outcomes}")

    def _replay(self, *, service: str, offset) -> None:
        from outbox.stream import replay_into

        self.stdout.write(f"outbox consumer {service!r}: replaying the stream from {offset!r}")
        counts = replay_into(
            consumer=service,
            offset=offset,
            subscriptions_for=lambda event_type: registry.matching(service, event_type),
            progress=lambda done: self.stdout.write(f"  replayed {done} events"),
        )
        self.stdout.write(f"outbox consumer {service!r}: stream replayed: {counts or 'empty'}")


def stream_offset(raw: str):
    """Parse --from-stream: first|last|next, a non-negative integer, or an ISO timestamp."""
    if raw in {"first", "last", "next"}:
        return raw
    if raw.isdigit():
        return int(raw)
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(
            f"--from-stream {raw!r}: expected first, last, next, an offset (a number) "
            "or an ISO timestamp such as 2026-11-28T10:00:00+00:00"
        ) from None
