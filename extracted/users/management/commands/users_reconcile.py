"""`manage.py users_reconcile --settings=extracted.users.settings [--source-url URL]`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from extracted.users.reconcile import users_reconcile
from extracted.users.source import SourceNotConfigured, source_connection


class Command(BaseCommand):
    help = (
        "Compare the monolith's and the service's users (counts, and a digest per user of the "
        "shared fields and live tokens), list each difference, and exit 1 if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--source-url", help="The monolith's database URL (default: MONOLITH_DATABASE_URL)."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, source_url=None, json=False, **options):
        try:
            source_db = source_connection(url=source_url)
        except SourceNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        report = users_reconcile(source_db=source_db)
        if json:
            self.stdout.write(_dumps(report.as_dict()))
        else:
            self.stdout.write(
                f"users: monolith {report.monolith_count}, service {report.service_count}"
            )
            for difference in report.differences:
                self.stdout.write(difference.describe())
        if not report.exact:
            raise CommandError(f"{len(report.differences)} difference(s); see above.")
        if not json:
            self.stdout.write("reconcile: exact")


def _dumps(document) -> str:
    return json.dumps(document, indent=2, default=str)
