"""`manage.py outbox_status`: backlog, per-consumer lag, parked events and queue depths."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from outbox.selectors import outbox_status


class Command(BaseCommand):
    help = "Show pending count, oldest pending age, consumer lag, queue and DLQ depths."

    def add_arguments(self, parser):
        parser.add_argument("--consumer", action="append", help="Only these consumers.")
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, consumer=None, json=False, **options):
        status = outbox_status(consumers=consumer)
        if json:
            self.stdout.write(_dumps(status))
            return
        self.stdout.write(
            f"pending {status['pending']}  oldest {status['oldest_pending_age_s']:.1f}s  "
            f"sent-retained {status['sent_retained']}"
        )
        for name, c in status["consumers"].items():
            self.stdout.write(
                f"consumer {name}: lag {_n(c['lag_messages'])}  parked {c['parked']}  "
                f"dlq-queue {_n(c['dlq_queue_messages'])}  consumers {_n(c['queue_consumers'])}  "
                f"last applied {_age(c['last_processed_age_s'])}"
            )
        for queue, messages in status["queues"].items():
            self.stdout.write(f"queue {queue}: {_n(messages)}")


def _n(value) -> str:
    return "?" if value is None else str(value)


def _age(seconds) -> str:
    return "never" if seconds is None else f"{seconds:.1f}s ago"


def _dumps(data) -> str:
    return json.dumps(data, indent=2, default=str)
