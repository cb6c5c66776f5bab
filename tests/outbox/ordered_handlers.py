"""Handlers of the fault tests: every application of an event is a row, numbered in order.

Registered for the consumer named by OUTBOX_TEST_CONSUMER. The effect is deliberately not
idempotent (no unique key), so an event applied twice shows as two rows, and `applied` numbers
the rows in the order one consumer process applied them (one transaction after the other), so
the order of application per aggregate can be read back.
"""

from __future__ import annotations

import os

from django.db import connection

from outbox.envelope import Envelope
from outbox.registry import handler

TABLE = "outbox_test_ordered_effect"


def ordered_table_create() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (applied bigserial PRIMARY KEY, "
            "consumer text, event_id text, aggregate_id text, sequence int)"
        )


def ordered_rows(consumer: str) -> list[tuple[str, str, int]]:
    """Return (event id, aggregate id, sequence) of every application, in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, aggregate_id, sequence FROM {TABLE} "  # noqa: S608
            "WHERE consumer = %s ORDER BY applied",
            [consumer],
        )
        return cursor.fetchall()


def apply_ordered(event: Envelope) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (consumer, event_id, aggregate_id, sequence) "  # noqa: S608
            "VALUES (%s, %s, %s, %s)",
            [os.environ["OUTBOX_TEST_CONSUMER"], event.id, event.aggregate_id, event.sequence],
        )


if os.environ.get("OUTBOX_TEST_CONSUMER"):
    handler("order.placed", consumer=os.environ["OUTBOX_TEST_CONSUMER"])(apply_ordered)
