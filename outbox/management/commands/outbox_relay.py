"""`manage.py outbox_relay`: publish committed outbox rows to the broker until stopped."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from outbox.metrics import process_exit
from outbox.relay import Relay, outbox_cleanup


class Command(BaseCommand):
    help = "Publish pending outbox events to the broker with confirms, in order, until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--broker-url", help="Override BROKER_URL for this relay.")
        parser.add_argument(
            "--cleanup-only", action="store_true", help="Delete expired rows once and exit."
        )

    def handle(self, *args, broker_url=None, cleanup_only=False, **options):
        if cleanup_only:
            self.stdout.write(f"deleted {outbox_cleanup()}")
            return
        stopping = {"now": False}

        def stop(signum, frame):
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        relay = Relay(broker_url=broker_url, should_stop=lambda: stopping["now"])
        self.stdout.write(f"outbox relay publishing to {relay.publisher.safe_url}")
        try:
            stats = relay.run()
        finally:
            process_exit()
        self.stdout.write(
            f"outbox relay stopped: sent={stats.sent} failures={stats.failures} "
            f"cleaned={stats.cleaned}"
        )
