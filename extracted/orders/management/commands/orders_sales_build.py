"""`manage.py orders_sales_build --settings=extracted.orders.settings [--from-stream OFFSET]`."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand
from tqdm import tqdm

from extracted.orders.sales import CONSUMER, sales_build
from outbox.management.commands.outbox_consume import stream_offset


class Command(BaseCommand):
    help = (
        "Build the daily sales per sku by replaying the event stream from OFFSET (default: "
        "first), then go on live from the queue orders_sales.events (bound before the replay: "
        "no gap, no double count). --replay-only stops after the stream."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from-stream",
            metavar="OFFSET",
            type=stream_offset,
            default="first",
            help="first, last, next, a stream offset or an ISO timestamp (needs RabbitMQ)",
        )
        parser.add_argument("--replay-only", action="store_true", help="Stop after the stream.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, from_stream="first", replay_only=False, no_progress=False, **kw):
        stopping = {"now": False}

        def stop(signum, frame):
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"{CONSUMER}: queue bound; replaying the stream from {from_stream!r}")
        with tqdm(desc="replay", unit="event", disable=no_progress) as bar:
            counts = sales_build(
                offset=from_stream,
                live=False,
                progress=lambda done: bar.update(done - bar.n),
            )
        self.stdout.write(f"{CONSUMER}: stream replayed: {counts or 'empty'}")
        if replay_only:
            return
        self.stdout.write(f"outbox consumer {CONSUMER!r} bound to the live queue")
        from outbox.consumer import EventConsumer

        stats = EventConsumer(service=CONSUMER, should_stop=lambda: stopping["now"]).run()
        self.stdout.write(f"outbox consumer {CONSUMER!r} stopped: {stats.outcomes}")
