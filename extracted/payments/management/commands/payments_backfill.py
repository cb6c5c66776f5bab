"""`manage.py payments_backfill --settings=extracted.payments.settings [--source-url URL]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from extracted.payments.backfill import payments_backfill
from extracted.payments.source import SourceNotConfigured, source_connection


class Command(BaseCommand):
    help = (
        "Copy the monolith's orders (as replicas) and payments into the payments service, in "
        "batches, resumable after a kill, idempotent. Start `outbox_consume --service payments` "
        "first so the live stream takes over with no gap."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--source-url", help="The monolith's database URL (default: MONOLITH_DATABASE_URL)."
        )
        parser.add_argument("--batch", type=int, default=500, help="Rows per transaction.")
        parser.add_argument(
            "--restart", action="store_true", help="Forget the checkpoints and copy everything."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, source_url=None, batch=500, restart=False, no_progress=False, **kw):
        if batch < 1:
            raise CommandError(f"--batch must be at least 1; got {batch}.")
        try:
            source_db = source_connection(url=source_url)
        except SourceNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        result = payments_backfill(
            source_db=source_db, batch=batch, restart=restart, progress=not no_progress
        )
        for phase, copied in result.copied.items():
            note = (
                " (already finished; --restart to copy again)"
                if (phase in result.already_finished)
                else ""
            )
            self.stdout.write(f"{phase}: {copied} copied{note}")
        if result.skipped_as_older:
            self.stdout.write(f"{result.skipped_as_older} rows skipped: the live stream was newer")
