"""Plant rows in a real monolith database with plain SQL (the service never imports monolith)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def user_insert(cursor, user_id: int) -> None:
    cursor.execute(
        "INSERT INTO users_user (id, password, is_superuser, first_name, last_name, is_staff, "
        "is_active, date_joined, email, full_name, updated_at) "
        "VALUES (%s, '', false, '', '', false, true, now(), %s, '', now())",
        [user_id, f"user{user_id}@example.com"],
    )


def order_insert(cursor, *, user_id: int, status: str = "pending", total: str = "10.00"):
    order_id = uuid.uuid4()
    cursor.execute(
        "INSERT INTO orders_order (id, user_id, status, total, currency, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, 'EUR', now(), now())",
        [str(order_id), user_id, status, total],
    )
    return order_id


def payment_insert(
    cursor, *, order_id, user_id: int, status: str = "succeeded", amount: str = "10.00", n: int = 0
):
    payment_id = uuid.uuid4()
    created = BASE_TIME + timedelta(seconds=n, microseconds=123)
    cursor.execute(
        "INSERT INTO payments_payment (id, order_id, user_id, amount, currency, status, "
        "card_last4, provider_reference, failure_reason, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, 'EUR', %s, '4242', %s, %s, %s, %s)",
        [
            str(payment_id),
            str(order_id),
            user_id,
            amount,
            status,
            f"sim_ch_{n}" if status != "failed" else "",
            "generic_decline" if status == "failed" else "",
            created,
            created,
        ],
    )
    return payment_id


def sequence_set(cursor, *, aggregate_type: str, aggregate_id, last: int) -> None:
    cursor.execute(
        "INSERT INTO outbox_aggregatesequence (aggregate_type, aggregate_id, last_sequence) "
        "VALUES (%s, %s, %s) ON CONFLICT (aggregate_type, aggregate_id) "
        "DO UPDATE SET last_sequence = EXCLUDED.last_sequence",
        [aggregate_type, str(aggregate_id), last],
    )


def shop_seed(connection, *, payments: int, user_id: int = 501) -> list[uuid.UUID]:
    """Plant one user with `payments` paid orders (every fifth payment refunded); return ids."""
    ids = []
    with connection.cursor() as cursor:
        user_insert(cursor, user_id)
        for n in range(payments):
            status = "refunded" if n % 5 == 4 else "succeeded"
            order_status = "refunded" if status == "refunded" else "paid"
            order_id = order_insert(cursor, user_id=user_id, status=order_status)
            ids.append(
                payment_insert(cursor, order_id=order_id, user_id=user_id, status=status, n=n)
            )
    return ids
