"""Backfill from a real monolith database (resumable, idempotent); reconcile lists every gap."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command

import extracted.payments.handlers  # noqa: F401  (registers the handlers)
from extracted.payments.backfill import payments_backfill
from extracted.payments.models import BackfillCheckpoint, OrderReplica, Payment
from extracted.payments.reconcile import payments_reconcile
from extracted.payments.source import source_connection
from outbox.envelope import Envelope
from outbox.inbox import Outcome, event_apply
from outbox.models import ConsumerCursor
from outbox.registry import registry

from .monolith_seed import order_insert, payment_insert, sequence_set, shop_seed, user_insert

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source_db(monolith_db_url, monolith_sql):
    return source_connection(url=monolith_db_url)


class Killed(Exception):
    """Stands for SIGKILL between two batches: nothing after the last commit survives."""


def test_backfill_copies_every_payment_and_order_and_then_reconciles_exactly(
    source_db, monolith_sql
):
    shop_seed(monolith_sql, payments=23)

    result = payments_backfill(source_db=source_db, batch=5, progress=False)

    assert result.copied == {"orders": 23, "payments": 23}
    assert Payment.objects.count() == 23
    assert Payment.objects.filter(status="refunded").count() == 4
    assert OrderReplica.objects.filter(status="paid").count() == 19
    report = payments_reconcile(source_db=source_db)
    assert report.exact, [d.describe() for d in report.differences]
    assert (report.monolith_count, report.service_count) == (23, 23)


def test_backfill_resumes_after_a_kill_from_its_checkpoint(source_db, monolith_sql):
    shop_seed(monolith_sql, payments=20)
    batches = []

    def kill_after_two_payment_batches(phase, copied):
        batches.append((phase, copied))
        if phase == "payments" and copied >= 8:
            raise Killed

    with pytest.raises(Killed):
        payments_backfill(
            source_db=source_db, batch=4, progress=False, after_batch=kill_after_two_payment_batches
        )
    assert Payment.objects.count() == 8
    assert BackfillCheckpoint.objects.get(name="payments").copied == 8

    resumed = []
    result = payments_backfill(
        source_db=source_db,
        batch=4,
        progress=False,
        after_batch=lambda p, c: resumed.append((p, c)),
    )

    assert result.copied == {"orders": 0, "payments": 12}
    assert resumed == [("payments", 12), ("payments", 16), ("payments", 20)]
    assert Payment.objects.count() == 20
    assert payments_reconcile(source_db=source_db).exact


def test_backfill_run_again_from_scratch_changes_nothing(source_db, monolith_sql):
    shop_seed(monolith_sql, payments=7)
    payments_backfill(source_db=source_db, batch=3, progress=False)
    before = list(Payment.objects.order_by("id").values())

    again = payments_backfill(source_db=source_db, batch=3, restart=True, progress=False)

    assert again.copied == {"orders": 7, "payments": 7}
    assert list(Payment.objects.order_by("id").values()) == before


def test_backfill_hands_over_to_the_stream_with_no_gap_and_no_duplicate(source_db, monolith_sql):
    with monolith_sql.cursor() as cursor:
        user_insert(cursor, 77)
        order_id = order_insert(cursor, user_id=77, status="paid", total="12.00")
        payment_id = payment_insert(cursor, order_id=order_id, user_id=77, amount="12.00")
        # payment.succeeded (1) was published before the service's queue existed.
        sequence_set(cursor, aggregate_type="payment", aggregate_id=payment_id, last=1)

    payments_backfill(source_db=source_db, batch=10, progress=False)

    cursor_row = ConsumerCursor.objects.get(
        consumer="payments", aggregate_id=str(payment_id), origin="monolith"
    )
    assert cursor_row.last_sequence == 1
    payload = {
        "payment_id": str(payment_id),
        "order_id": str(order_id),
        "user_id": 77,
        "amount": "12.00",
        "currency": "EUR",
        "card_last4": "4242",
    }
    replayed = _envelope("payment.succeeded", payment_id, 1, payload | {
        "status": "succeeded", "provider_reference": "sim_ch_0",
        "created_at": "2026-01-01T12:00:00.000123+00:00",
    })  # fmt: skip
    refunded = _envelope(
        "payment.refunded",
        payment_id,
        2,
        payload | {"status": "refunded", "refunded_at": "2026-01-02T00:00:00+00:00"},
    )

    assert _apply(replayed) == Outcome.DUPLICATE  # already in the copy
    assert _apply(refunded) == Outcome.APPLIED  # no wait for a predecessor never queued
    assert Payment.objects.get().status == "refunded"
    assert OrderReplica.objects.get().status == "refunded"


def test_backfill_skips_a_copy_older_than_what_the_stream_applied(source_db, monolith_sql):
    with monolith_sql.cursor() as cursor:
        user_insert(cursor, 78)
        order_id = order_insert(cursor, user_id=78, status="paid")
        payment_id = payment_insert(cursor, order_id=order_id, user_id=78)
        sequence_set(cursor, aggregate_type="payment", aggregate_id=payment_id, last=1)
    ConsumerCursor.objects.create(
        consumer="payments", aggregate_type="payment", aggregate_id=str(payment_id),
        origin="monolith", last_sequence=2,
    )  # fmt: skip

    result = payments_backfill(source_db=source_db, batch=10, progress=False)

    assert result.skipped_as_older == 1
    assert not Payment.objects.exists()


def test_reconcile_lists_every_planted_difference(source_db, monolith_sql):
    ids = shop_seed(monolith_sql, payments=6)
    payments_backfill(source_db=source_db, batch=10, progress=False)
    # Plant: one missing in the service, one only in the service, two field mismatches.
    Payment.objects.filter(pk=ids[0]).delete()
    extra = Payment.objects.get(pk=ids[1])
    extra.pk = uuid.uuid4()
    extra.order_id = uuid.uuid4()
    extra.save(force_insert=True)
    Payment.objects.filter(pk=ids[2]).update(amount="10.01")
    Payment.objects.filter(pk=ids[3]).update(status="refunded", card_last4="0000")

    report = payments_reconcile(source_db=source_db)

    found = {(d.kind, d.payment_id): d for d in report.differences}
    assert set(found) == {
        ("missing_in_service", str(ids[0])),
        ("missing_in_monolith", str(extra.pk)),
        ("mismatch", str(ids[2])),
        ("mismatch", str(ids[3])),
    }
    assert found["mismatch", str(ids[2])].fields == {
        "amount": {"monolith": "10.00", "service": "10.01"}
    }
    assert set(found["mismatch", str(ids[3])].fields) == {"status", "card_last4"}
    assert not report.exact


def test_reconcile_command_exits_non_zero_and_names_each_difference(
    source_db, monolith_sql, monolith_db_url, capsys
):
    ids = shop_seed(monolith_sql, payments=2)
    payments_backfill(source_db=source_db, batch=10, progress=False)
    call_command("payments_reconcile", source_url=monolith_db_url)
    assert "reconcile: exact" in capsys.readouterr().out
    Payment.objects.filter(pk=ids[1]).delete()

    with pytest.raises(CommandError, match="1 difference"):
        call_command("payments_reconcile", source_url=monolith_db_url)

    assert f"missing_in_service: payment {ids[1]}" in capsys.readouterr().out


def test_backfill_command_reports_and_says_when_it_is_already_done(
    monolith_sql, monolith_db_url, capsys
):
    shop_seed(monolith_sql, payments=3)

    call_command("payments_backfill", source_url=monolith_db_url, batch=2, no_progress=True)
    call_command("payments_backfill", source_url=monolith_db_url, no_progress=True)

    out = capsys.readouterr().out
    assert "payments: 3 copied" in out
    assert "already finished" in out


def _envelope(event_type, payment_id, sequence, payload):
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        version=1,
        aggregate_type="payment",
        aggregate_id=str(payment_id),
        sequence=sequence,
        occurred_at="2026-01-02T00:00:00+00:00",
        origin="monolith",
        correlation_id=str(uuid.uuid4()),
        causation_id="",
        payload=payload,
    )


def _apply(envelope):
    subscriptions = registry.matching("payments", envelope.type)
    return event_apply(consumer="payments", envelope=envelope, subscriptions=subscriptions)
