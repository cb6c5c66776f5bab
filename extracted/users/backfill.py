"""Copy the monolith's users and their token digests into the service, resumably.

`users_backfill` walks `users_user` in id order, `batch` users at a time. Per batch, in ONE
transaction of the service's database, it upserts the users (hash, flags, dates), stores the
digests of their live tokens, and moves the checkpoint: a kill loses at most the batch in
flight, and a rerun resumes after the last committed id. The upserts make a rerun (or an
overlap with the live stream) change nothing.

Handing over to the live stream with no gap and no duplicate (as the payments backfill does,
docs/step-1-payments-service.md):

1. the consumer's queue (`users.events`) is bound BEFORE the backfill starts, so every `user.*`
   event committed from then on is queued;
2. per batch the backfill reads each user's outbox sequence in the monolith FIRST, then the
   rows: a copied row holds at least the effects of the events up to that sequence;
3. in the same transaction it raises the consumer's cursor of that user (origin "monolith") to
   that sequence: queued events at or below it are duplicates the runtime skips, later ones
   apply at once; if the stream already applied a newer event, the older copy is skipped;
4. the apply rules are the events' own (newer `updated_at` wins, a token older than the
   user's revocation watermark is refused), so a copy never undoes a newer change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from outbox.models import ConsumerCursor
from service_kit.user_events import token_issued_apply, user_replica_apply

from . import source
from .handlers import CONSUMER
from .models import BackfillCheckpoint, User

PHASE = "users"
SOURCE_ORIGIN = "monolith"


@dataclass
class BackfillResult:
    users: int = 0
    tokens: int = 0
    skipped_as_older: int = 0
    already_finished: bool = False


def _cursor_claim(*, user_id: int, sequence: int) -> bool:
    """Move the cursor of the monolith's events of this user up to `sequence`; False if past."""
    cursor, _ = ConsumerCursor.objects.select_for_update().get_or_create(
        consumer=CONSUMER, aggregate_type="user", aggregate_id=str(user_id), origin=SOURCE_ORIGIN
    )
    if cursor.last_sequence > sequence:
        return False
    if cursor.last_sequence < sequence:
        cursor.last_sequence = sequence
        cursor.save(update_fields=["last_sequence", "updated_at"])
    return True


def user_copy_apply(*, row: dict) -> None:
    """Upsert one monolith user row (source.USER_COLUMNS) by the events' rules."""
    user_replica_apply(
        payload={
            "user_id": int(row["id"]),
            "email": row["email"],
            "full_name": row["full_name"],
            "is_staff": bool(row["is_staff"]),
            "is_active": bool(row["is_active"]),
            "is_superuser": bool(row["is_superuser"]),
            "date_joined": source.as_datetime(row["date_joined"]),
            "password_hash": row["password"],
            "updated_at": source.as_datetime(row["updated_at"]),
        }
    )
    mark = source.as_datetime(row["tokens_revoked_at"])
    if mark is not None:
        User.objects.filter(pk=row["id"]).exclude(tokens_revoked_at__gte=mark).update(
            tokens_revoked_at=mark
        )


def token_copy_apply(*, row: dict) -> str:
    """Store one monolith token digest (source.TOKEN_COLUMNS) unless revoked since."""
    return token_issued_apply(
        payload={
            "user_id": int(row["user_id"]),
            "digest": row["digest"],
            "created": source.as_datetime(row["created"]),
            "expiry": source.as_datetime(row["expiry"]),
        }
    )


def users_backfill(
    *,
    source_db,
    batch: int = 500,
    restart: bool = False,
    progress: bool = True,
    after_batch: Callable[[int], None] | None = None,
) -> BackfillResult:
    """Copy the monolith's users and token digests from `source_db`; resume from the checkpoint.

    `after_batch(copied_so_far)` runs after each committed batch (tests interrupt there).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}.")
    if restart:
        BackfillCheckpoint.objects.filter(name=PHASE).delete()
    result = BackfillResult()
    checkpoint, _ = BackfillCheckpoint.objects.get_or_create(name=PHASE)
    if checkpoint.finished_at is not None:
        result.already_finished = True
        return result
    total = source.user_count(source_db)
    now = timezone.now()
    with tqdm(
        total=total,
        initial=min(checkpoint.copied, total),
        desc="backfill users",
        unit="user",
        disable=not progress,
    ) as bar:
        while True:
            ids = source.user_ids_after(source_db, after=checkpoint.last_id, limit=batch)
            if not ids:
                break
            # Sequences before rows: a row read later holds at least those events' effects.
            seqs = source.sequences(source_db, ids=ids)
            found = source.users(source_db, ids)
            live = [t for t in source.tokens(source_db, ids)
                    if t["expiry"] is None or source.as_datetime(t["expiry"]) > now]  # fmt: skip
            with transaction.atomic():
                claimed = set()
                for row in sorted(found, key=lambda r: r["id"]):
                    if _cursor_claim(user_id=row["id"], sequence=seqs.get(str(row["id"]), 0)):
                        user_copy_apply(row=row)
                        claimed.add(int(row["id"]))
                        result.users += 1
                    else:
                        result.skipped_as_older += 1
                for token in live:
                    if int(token["user_id"]) in claimed and token_copy_apply(row=token) == (
                        "inserted"
                    ):
                        result.tokens += 1
                checkpoint.last_id = ids[-1]
                checkpoint.copied += len(ids)
                checkpoint.save(update_fields=["last_id", "copied", "updated_at"])
            bar.update(len(ids))
            if after_batch is not None:
                after_batch(checkpoint.copied)
    checkpoint.finished_at = timezone.now()
    checkpoint.save(update_fields=["finished_at", "updated_at"])
    return result
