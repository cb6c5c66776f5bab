"""`manage.py users_backfill --settings=extracted.users.settings [--source-url URL]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from extracted.users.backfill import users_backfill
from extracted.users.source import SourceNotConfigured, source_connection


class Command(BaseCommand):
    help = (
        "Copy the monolith's users (password hashes included) and their token digests into the "
        "users service, in batches, resumable after a kill, idempotent. Bind `users.events` "
        "first (the playbook does) so the live stream takes over with no gap."
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
        result = users_backfill(
            source_db=source_db, batch=batch, restart=restart, progress=not no_progress
        )
        if result.already_finished:
            self.stdout.write("users: already finished; --restart to copy again")
            return
        self.stdout.write(f"users: {result.users} copied, {result.tokens} token digests")
        if result.skipped_as_older:
            self.stdout.write(f"{result.skipped_as_older} users skipped: the live stream was newer")
