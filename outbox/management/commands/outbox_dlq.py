"""`manage.py outbox_dlq list|show|replay|purge`: inspect and act on parked events."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from outbox.models import DeadLetterReason
from outbox.selectors import dead_letters_filter
from outbox.services import dead_letter_purge, dead_letter_replay


class Command(BaseCommand):
    help = "List, show, replay or purge events parked in the dead-letter store."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "show", "replay", "purge"])
        parser.add_argument("ids", nargs="*", type=int, help="Dead letter ids (default: all).")
        parser.add_argument("--consumer")
        parser.add_argument("--event-type")
        parser.add_argument("--aggregate-id")
        parser.add_argument("--reason", choices=DeadLetterReason.values)
        parser.add_argument("--since", help="ISO timestamp: parked at or after.")
        parser.add_argument(
            "--include-replayed", action="store_true", help="Also list replayed ones."
        )
        parser.add_argument("--yes", action="store_true", help="Purge without asking.")

    def handle(self, *args, action, ids, **opts):
        since = None
        if opts["since"]:
            since = parse_datetime(opts["since"])
            if since is None:
                raise CommandError(f"--since must be an ISO timestamp, got {opts['since']!r}.")
        letters = dead_letters_filter(
            consumer=opts["consumer"],
            event_type=opts["event_type"],
            aggregate_id=opts["aggregate_id"],
            reason=opts["reason"],
            since=since,
            ids=ids or None,
            include_replayed=opts["include_replayed"],
        )
        if action == "list":
            for d in letters:
                first_line = (d.error.strip().splitlines() or [""])[-1][:80]
                self.stdout.write(
                    f"{d.id}\t{d.consumer}\t{d.event_type}\t{d.aggregate_type}:{d.aggregate_id}"
                    f"#{d.sequence}\t{d.reason}\tattempts={d.attempts}\t{first_line}"
                )
            self.stdout.write(f"{letters.count()} parked")
        elif action == "show":
            if not ids:
                raise CommandError("show needs at least one dead letter id.")
            for d in letters:
                self.stdout.write(json.dumps(
                    {"id": d.id, "consumer": d.consumer, "reason": d.reason,
                     "attempts": d.attempts, "created_at": d.created_at.isoformat(),
                     "replayed_at": d.replayed_at and d.replayed_at.isoformat(),
                     "envelope": d.envelope, "error": d.error}, indent=2,
                ))  # fmt: skip
        elif action == "replay":
            self.stdout.write(f"replayed {dead_letter_replay(letters=letters)}")
        else:
            if not (ids or opts["consumer"] or opts["yes"]):
                raise CommandError("purge of everything needs --yes (or ids / --consumer).")
            self.stdout.write(f"purged {dead_letter_purge(letters=letters)}")
