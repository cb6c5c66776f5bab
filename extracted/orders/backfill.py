"""Copy the monolith's catalogue and orders into the service, resumably, as event streams.

Each monolith order becomes a stream whose replay equals the order as it stands: an
`OrderImported` (the order as placed: pending, its lines and total, its creation time)
followed by the moves the monolith's database knows of: paid (with the payment's id and time
when the monolith holds the payment), then shipped or refunded, or cancelled; the last move is
stamped with the order's `updated_at`. Nothing is announced: it is the monolith's history.

`orders_backfill` walks each table in key order, `batch` rows at a time; per batch, in ONE
transaction of the service's database, it writes the streams (and read models) and moves the
checkpoint: a kill loses at most the batch in flight, a rerun goes on after the last id.

Handing over to the live stream with no gap and no duplicate (as the payments backfill does):
the consumer's queue (`orders.events`) is bound BEFORE the backfill; per batch the monolith's
outbox sequence of each order is read BEFORE its row, and the consumer's cursor for (order,
origin "monolith") is raised to it in the batch's transaction, so queued monolith events the
copy already holds are skipped as duplicates and later ones apply in order. An order already
here (its `order.placed` arrived first) is moved forward to the row's status instead; if the
cursor is already past the sequence read, the copy is older than what the stream applied and
is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from tqdm import tqdm

from outbox.models import ConsumerCursor

from . import source
from .handlers import CONSUMER
from .models import BackfillCheckpoint, OrderStatus, Product
from .services import imported_data, order_mirror

PHASES = ("products", "orders")
SOURCE_ORIGIN = "monolith"


@dataclass
class BackfillResult:
    copied: dict[str, int] = field(default_factory=dict)
    skipped_as_older: int = 0
    already_finished: tuple[str, ...] = ()


def _cursor_claim(*, aggregate_id: str, sequence: int) -> bool:
    """Raise the cursor of the monolith's order events to `sequence`; False if already past."""
    cursor, _ = ConsumerCursor.objects.select_for_update().get_or_create(
        consumer=CONSUMER, aggregate_type="order", aggregate_id=aggregate_id, origin=SOURCE_ORIGIN
    )
    if cursor.last_sequence > sequence:
        return False
    if cursor.last_sequence < sequence:
        cursor.last_sequence = sequence
        cursor.save(update_fields=["last_sequence", "updated_at"])
    return True


def order_history(row: dict[str, Any]) -> list[tuple[str, Any, str | None]]:
    """Return the moves (status, when, payment id) that led the monolith's order to its status."""
    status, updated, payment = row["status"], row["updated_at"], row["payment"] or {}
    payment_id = payment.get("payment_id")
    if status == OrderStatus.PENDING:
        return []
    if status == OrderStatus.CANCELLED:
        return [(OrderStatus.CANCELLED, updated, None)]
    if status == OrderStatus.PAID:
        return [(OrderStatus.PAID, updated, payment_id)]
    paid_at = payment.get("paid_at") or row["created_at"]
    return [(OrderStatus.PAID, paid_at, payment_id), (status, updated, payment_id)]


def order_copy(row: dict[str, Any]) -> None:
    """Write one monolith order as a stream here, or move the copy here forward to it."""
    order_mirror(
        order_id=row["order_id"],
        status=row["status"],
        at=row["updated_at"],
        placed=imported_data(
            user_id=row["user_id"],
            status=OrderStatus.PENDING,
            currency=row["currency"],
            items=row["items"],
            total=row["total"],
            created_at=row["created_at"],
            source="backfill",
        ),
        history=order_history(row),
        source="backfill",
    )


def _products(source_db, checkpoint: BackfillCheckpoint, batch: int, bar, after_batch) -> int:
    copied = 0
    while True:
        found = source.product_rows(source_db, after=checkpoint.last_id, limit=batch)
        if not found:
            return copied
        with transaction.atomic():
            for row in found:
                Product.objects.update_or_create(sku=row["sku"], defaults=row)
            checkpoint.last_id = found[-1]["sku"]
            checkpoint.copied += len(found)
            checkpoint.save(update_fields=["last_id", "copied", "updated_at"])
        copied += len(found)
        bar.update(len(found))
        if after_batch is not None:
            after_batch("products", checkpoint.copied)


def _orders(source_db, checkpoint, batch: int, bar, after_batch, result: BackfillResult) -> int:
    copied = 0
    while True:
        ids = source.ids_after(
            source_db, table="orders_order", after=checkpoint.last_id, limit=batch
        )
        if not ids:
            return copied
        # Sequences before rows: a row read later holds at least those events' effects.
        seqs = source.sequences(source_db, aggregate_type="order", ids=ids)
        found = source.order_rows(source_db, ids)
        with transaction.atomic():
            for name, row in found.items():
                if _cursor_claim(aggregate_id=name, sequence=seqs.get(name, 0)):
                    order_copy(row)
                    copied += 1
                else:
                    result.skipped_as_older += 1
            checkpoint.last_id = str(ids[-1])
            checkpoint.copied += len(ids)
            checkpoint.save(update_fields=["last_id", "copied", "updated_at"])
        bar.update(len(ids))
        if after_batch is not None:
            after_batch("orders", checkpoint.copied)


def orders_backfill(
    *,
    source_db: BaseDatabaseWrapper,
    batch: int = 500,
    restart: bool = False,
    phases: tuple[str, ...] = PHASES,
    progress: bool = True,
    after_batch: Callable[[str, int], None] | None = None,
) -> BackfillResult:
    """Copy the catalogue then the orders from the monolith database `source_db`; resumable.

    `after_batch(phase, copied_so_far)` runs after each committed batch (tests interrupt here).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1; got {batch}.")
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise ValueError(f"Unknown phase(s) {sorted(unknown)}; choose from {PHASES}.")
    if restart:
        BackfillCheckpoint.objects.filter(name__in=phases).delete()
    result = BackfillResult()
    finished = []
    for phase in (p for p in PHASES if p in phases):
        checkpoint, _ = BackfillCheckpoint.objects.get_or_create(name=phase)
        if checkpoint.finished_at is not None:
            finished.append(phase)
            result.copied[phase] = 0
            continue
        table = "orders_product" if phase == "products" else "orders_order"
        total = source.count(source_db, table=table)
        with tqdm(
            total=total,
            initial=min(checkpoint.copied, total),
            desc=f"backfill {phase}",
            unit="row",
            disable=not progress,
        ) as bar:
            if phase == "products":
                copied = _products(source_db, checkpoint, batch, bar, after_batch)
            else:
                copied = _orders(source_db, checkpoint, batch, bar, after_batch, result)
        checkpoint.finished_at = timezone.now()
        checkpoint.save(update_fields=["finished_at", "updated_at"])
        result.copied[phase] = copied
    result.already_finished = tuple(finished)
    return result
