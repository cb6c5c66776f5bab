"""`manage.py notifications_deliver`: send again the notifications that failed or never went."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from monolith.notifications.services import notifications_deliver_pending


class Command(BaseCommand):
    help = "Send unsent notifications (failed, or left pending by a crash) through their channel."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=float, default=30.0, help="Seconds a notification must be old."
        )
        parser.add_argument("--limit", type=int, default=500)

    def handle(self, *args, older_than, limit, **options):
        sent = notifications_deliver_pending(older_than_s=older_than, limit=limit)
        self.stdout.write(f"sent {sent} notification(s)")
