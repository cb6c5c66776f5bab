"""Copy the monolith's orders (as replicas) and payments into the service, resumably.

`payments_backfill` walks each monolith table in primary-key order, `batch` rows at a time. Per
batch, in ONE transaction of the service's database, it upserts the rows by id and moves the
checkpoint; a kill loses at most the batch in flight, and a rerun resumes after the last
committed id. Upserts make a rerun (or an overlap with the live stream) change nothing.

Handing over to the live stream with no gap and no duplicate:

1. The consumer's queue (`payments.events`) is bound BEFORE the backfill starts, so every event
   committed from then on is queued; every row that existed before is in the table the backfill
   walks (new rows below the walk's position are covered by their events).
2. Per batch the backfill reads the monolith's outbox sequence of each aggregate FIRST, then the
   rows: the copied row includes at least the effects of events up to that sequence.
3. In the same transaction it moves the consumer's cursor for that aggregate and the origin
   "monolith" up to the sequence (`outbox.models.ConsumerCursor`, locked like the runtime locks
   it; cursors are per writer because each half numbers an aggregate's events apart). Queued
   monolith events at or below it are then duplicates the runtime skips; later ones apply in
   order, without waiting for predecessors that were published before the queue existed. If the
   cursor is already ahead (the stream applied a newer event first), the older copy is skipped.
4. The handlers are upserts that only move statuses forward, so an event whose effect a copy
   already holds changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from tqdm import tqdm

from outbox.models import ConsumerCursor

from . import source
from .handlers import CONSUMER
from .models import BackfillCheckpoint, ReplicaSource
from .replicas import order_replica_apply
from .sync import payment_sync_apply

PHASES = ("orders", "payments")
# The origin of the events the monolith's counter numbers (its STRANGLER_SERVICE_NAME).
SOURCE_ORIGIN = "monolith"


@dataclass
class BackfillResult:
    copied: dict[str, int]
    skipped_as_older: int = 0
    already_finished: tuple[str, ...] = ()


def _cursor_claim(*, aggregate_type: str, aggregate_id: str, sequence: int) -> bool:
    """Move the cursor of the monolith's events up to `sequence`; False if the stream is past it."""
    cursor, _ = ConsumerCursor.objects.select_for_update().get_or_create(
        consumer=CONSUMER,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        origin=SOURCE_ORIGIN,
    )
    if cursor.last_sequence > sequence:
        return False
    if cursor.last_sequence < sequence:
        cursor.last_sequence = sequence
        cursor.save(update_fields=["last_sequence", "updated_at"])
    return True


def _apply_order(row: dict) -> None:
    order_replica_apply(**row, source=ReplicaSource.BACKFILL)


def _apply_payment(row: dict) -> None:
    payment_sync_apply(**row, source=ReplicaSource.BACKFILL)


_TABLES = {
    "orders": ("orders_order", "order", source.order_rows, "order_id", _apply_order),
    "payments": ("payments_payment", "payment", source.payment_rows, "payment_id", _apply_payment),
}


def payments_backfill(
    *,
    source_db: BaseDatabaseWrapper,
    batch: int = 500,
    restart: bool = False,
    progress: bool = True,
    after_batch: Callable[[str, int], None] | None = None,
) -> BackfillResult:
    """Copy orders then payments from the monolith database `source_db`; resume from checkpoints.

    `after_batch(phase, copied_so_far)` runs after each committed batch (tests interrupt here).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}.")
    if restart:
        BackfillCheckpoint.objects.filter(name__in=PHASES).delete()
    result = BackfillResult(copied={})
    finished = []
    for phase in PHASES:
        table, aggregate_type, read, key, apply = _TABLES[phase]
        checkpoint, _ = BackfillCheckpoint.objects.get_or_create(name=phase)
        if checkpoint.finished_at is not None:
            finished.append(phase)
            result.copied[phase] = 0
            continue
        copied = 0
        total = source.count(source_db, table=table)
        with tqdm(
            total=total,
            initial=min(checkpoint.copied, total),
            desc=f"backfill {phase}",
            unit="row",
            disable=not progress,
        ) as bar:
            while True:
                ids = source.ids_after(
                    source_db, table=table, after=checkpoint.last_id, limit=batch
                )
                if not ids:
                    break
                # Sequences before rows: a row read later holds at least those events' effects.
                seqs = source.sequences(source_db, aggregate_type=aggregate_type, ids=ids)
                found = list(read(source_db, ids))
                with transaction.atomic():
                    for row in found:
                        name = str(row[key])
                        if _cursor_claim(
                            aggregate_type=aggregate_type,
                            aggregate_id=name,
                            sequence=seqs.get(name, 0),
                        ):
                            apply(row)
                        else:
                            result.skipped_as_older += 1
                    checkpoint.last_id = str(ids[-1])
                    checkpoint.copied += len(ids)
                    checkpoint.save(update_fields=["last_id", "copied", "updated_at"])
                copied += len(found)
                bar.update(len(ids))
                if after_batch is not None:
                    after_batch(phase, checkpoint.copied)
        checkpoint.finished_at = timezone.now()
        checkpoint.save(update_fields=["finished_at", "updated_at"])
        result.copied[phase] = copied
    result.already_finished = tuple(finished)
    return result
