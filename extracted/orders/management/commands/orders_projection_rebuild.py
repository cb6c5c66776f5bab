"""`manage.py orders_projection_rebuild --settings=extracted.orders.settings [--batch N]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from extracted.orders.projections import projection_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the orders read models (order list and detail, status counts) from log "
        "position 0 into a new generation while the current one keeps serving, then swap it "
        "in. Resumes an interrupted build unless --restart."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=1000, help="Events per transaction.")
        parser.add_argument(
            "--restart", action="store_true", help="Start the build again from position 0."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, batch=1000, restart=False, no_progress=False, **options):
        if batch < 1:
            raise CommandError(f"--batch must be at least 1; got {batch}.")
        result = projection_rebuild(batch=batch, restart=restart, progress=not no_progress)
        resumed = f", resumed at position {result.resumed_from}" if result.resumed_from else ""
        self.stdout.write(
            f"rebuilt generation {result.generation} from {result.events} events "
            f"({result.orders} order rows written{resumed}); generation "
            f"{result.previous_generation} dropped"
        )
