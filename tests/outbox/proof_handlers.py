"""Handlers the proof tests register for a consumer named by OUTBOX_TEST_CONSUMER.

The effect is deliberately not idempotent (one row per application, no unique key), so a
second application of an event would show as a second row.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.db import connection

from outbox.envelope import Envelope
from outbox.registry import handler

EFFECT_TABLE = "outbox_test_effect"


def effect_table_create() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {EFFECT_TABLE} "
            "(consumer text, event_id text, aggregate_id text, sequence int)"
        )


def effect_rows(consumer: str) -> list[tuple[str, str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, aggregate_id, sequence FROM {EFFECT_TABLE} "  # noqa: S608
            "WHERE consumer = %s ORDER BY aggregate_id, sequence",
            [consumer],
        )
        return list(cursor.fetchall())


def apply_effect(consumer: str, event: Envelope) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EFFECT_TABLE} VALUES (%s, %s, %s, %s)",  # noqa: S608
            [consumer, event.id, event.aggregate_id, event.sequence],
        )
    crash_marker = os.environ.get("OUTBOX_TEST_CRASH_MARKER")
    if crash_marker and Path(crash_marker).exists():
        # Die mid-handler, after writing, before commit: like a pod killed by the OOM killer.
        Path(crash_marker).unlink()
        os._exit(137)


def register(consumer: str) -> None:
    @handler("order.placed", consumer=consumer)
    def on_order_placed(event: Envelope) -> None:
        apply_effect(consumer, event)


if os.environ.get("OUTBOX_TEST_CONSUMER"):
    register(os.environ["OUTBOX_TEST_CONSUMER"])
