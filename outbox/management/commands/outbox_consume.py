"""`manage.py outbox_consume --service NAME`: apply events from `<NAME>.events` until stopped."""

from __future__ import annotations

import importlib
import signal

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import autodiscover_modules

from outbox.consumer import EventConsumer
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

    def handle(self, *args, service, handlers, broker_url=None, **options):
        autodiscover_modules("handlers")
        for module in handlers:
            importlib.import_module(module)
        if not registry.subscriptions(service):
            raise CommandError(
                f"No handlers are registered for consumer {service!r}; "
                f"known consumers: {registry.consumers() or 'none'}."
            )
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
        stats = consumer.run()
        self.stdout.write(f"outbox consumer {service!r} stopped: {stats.outcomes}")
