"""`manage.py orders_reconcile --settings=extracted.orders.settings [--source-url URL] [--json]`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from extracted.orders.reconcile import orders_reconcile
from extracted.orders.source import SourceNotConfigured, source_connection


class Command(BaseCommand):
    help = (
        "Compare every order (status, total, lines, owner, creation time) and product between "
        "the monolith and the service's read model, list each difference, exit 1 if any."
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
        report = orders_reconcile(source_db=source_db)
        if json:
            self.stdout.write(_dumps(report.as_dict()))
        else:
            self.stdout.write(
                f"orders: monolith {report.monolith_count}, service {report.service_count}; "
                f"products: monolith {report.monolith_products}, "
                f"service {report.service_products}"
            )
            for difference in report.differences:
                self.stdout.write(difference.describe())
        if not report.exact:
            raise CommandError(f"{len(report.differences)} difference(s); see above.")
        if not json:
            self.stdout.write("reconcile: exact")


def _dumps(document) -> str:
    return json.dumps(document, indent=2, default=str)
