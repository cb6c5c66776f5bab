"""`manage.py orders_backfill --settings=extracted.orders.settings [--source-url URL]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from extracted.orders.backfill import PHASES, orders_backfill
from extracted.orders.source import SourceNotConfigured, source_connection


class Command(BaseCommand):
    help = (
        "Copy the monolith's catalogue and orders into the orders service (each order as an "
        "event stream), in batches, resumable after a kill, idempotent. Start "
        "`outbox_consume --service orders` first so the live stream takes over with no gap."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--source-url", help="The monolith's database URL (default: MONOLITH_DATABASE_URL)."
        )
        parser.add_argument("--batch", type=int, default=500, help="Rows per transaction.")
        parser.add_argument(
            "--phase",
            action="append",
            choices=PHASES,
            help="Only this phase (repeatable); default: products, then orders.",
        )
        parser.add_argument(
            "--restart", action="store_true", help="Forget the checkpoints and copy again."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, source_url=None, batch=500, phase=None, restart=False, **options):
        if batch < 1:
            raise CommandError(f"--batch must be at least 1; got {batch}.")
        try:
            source_db = source_connection(url=source_url)
        except SourceNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        result = orders_backfill(
            source_db=source_db,
            batch=batch,
            restart=restart,
            phases=tuple(phase or PHASES),
            progress=not options["no_progress"],
        )
        for name, copied in result.copied.items():
            note = (
                " (already finished; --restart to copy again)"
                if name in result.already_finished
                else ""
            )
            self.stdout.write(f"{name}: {copied} copied{note}")
        if result.skipped_as_older:
            self.stdout.write(
                f"{result.skipped_as_older} orders skipped: the live stream was newer"
            )
