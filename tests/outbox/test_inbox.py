"""Applying events: once, in order per aggregate, echoes dropped, handler writes atomic."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group

from outbox.envelope import Envelope
from outbox.errors import PayloadInvalid
from outbox.inbox import Outcome, dead_letter_park, event_apply
from outbox.models import ConsumerCursor, InboxEvent
from outbox.registry import Subscription

from .conftest import order_payload

pytestmark = pytest.mark.django_db


def envelope(sequence: int = 1, *, aggregate_id: str = "A", origin: str = "monolith", **kw):
    return Envelope(
        id=kw.pop("id", str(uuid.uuid4())),
        type=kw.pop("type", "order.placed"),
        version=1,
        aggregate_type="order",
        aggregate_id=aggregate_id,
        sequence=sequence,
        occurred_at="2026-01-01T10:00:00+00:00",
        origin=origin,
        correlation_id="c",
        causation_id="",
        payload=kw.pop("payload", order_payload()),
    )


def effect(event: Envelope) -> None:
    # A non-idempotent effect: a second application would make a second group.
    Group.objects.create(name=f"{event.aggregate_id}-{event.sequence}-{uuid.uuid4().hex[:6]}")


SUBS = [Subscription("shop", "order.*", effect)]


def apply(env: Envelope, **kw) -> Outcome:
    return event_apply(consumer="shop", envelope=env, subscriptions=SUBS, **kw)


def test_redelivered_event_changes_nothing_the_second_time():
    first = envelope(1)
    assert apply(first) == Outcome.APPLIED
    assert apply(first) == Outcome.DUPLICATE
    assert Group.objects.count() == 1
    assert InboxEvent.objects.filter(consumer="shop").count() == 1


def test_sequence_n_plus_one_is_not_applied_before_n():
    assert apply(envelope(2)) == Outcome.GAP
    assert Group.objects.count() == 0
    assert apply(envelope(1)) == Outcome.APPLIED
    assert apply(envelope(2)) == Outcome.APPLIED
    assert ConsumerCursor.objects.get(consumer="shop", aggregate_id="A").last_sequence == 2


def test_aggregates_are_ordered_independently():
    assert apply(envelope(1, aggregate_id="A")) == Outcome.APPLIED
    assert apply(envelope(1, aggregate_id="B")) == Outcome.APPLIED


def test_event_from_the_consumers_own_origin_is_dropped_as_an_echo():
    assert apply(envelope(1, origin="shop")) == Outcome.ECHO
    assert Group.objects.count() == 0


def test_failing_handler_rolls_back_its_writes_and_the_inbox_row():
    def explode(event):
        effect(event)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        event_apply(
            consumer="shop",
            envelope=envelope(1),
            subscriptions=[Subscription("shop", "#", explode)],
        )
    assert Group.objects.count() == 0
    assert InboxEvent.objects.count() == 0
    assert apply(envelope(1)) == Outcome.APPLIED


def test_event_behind_a_parked_predecessor_is_blocked():
    parked = envelope(1)
    dead_letter_park(consumer="shop", envelope=parked, reason="failed", error="x", attempts=3)
    assert apply(envelope(2)) == Outcome.BLOCKED


def test_event_without_a_handler_still_moves_the_cursor():
    assert event_apply(consumer="shop", envelope=envelope(1), subscriptions=[]) == Outcome.APPLIED
    assert apply(envelope(2)) == Outcome.APPLIED


def test_payload_that_breaks_its_schema_is_refused_before_the_handler():
    with pytest.raises(PayloadInvalid):
        apply(envelope(1, payload={"order_id": "nope"}))
    assert Group.objects.count() == 0


def test_handler_sees_the_event_upcast_to_the_newest_version(settings, tmp_path):
    from outbox.schemas import _upcasters, upcaster

    (tmp_path / "order.placed.v2.json").write_text('{"type": "object"}')
    settings.OUTBOX_SCHEMA_DIRS = [str(tmp_path)]
    seen = []

    @upcaster("order.placed", 1)
    def add_channel(payload: dict) -> dict:
        return payload | {"channel": "web"}

    try:
        event_apply(
            consumer="shop",
            envelope=envelope(1),
            subscriptions=[Subscription("shop", "#", seen.append)],
        )
    finally:
        _upcasters.pop(("order.placed", 1))
    assert (seen[0].version, seen[0].payload["channel"]) == (2, "web")


def test_events_written_by_a_handler_keep_the_handled_events_origin_and_cause():
    import outbox
    from outbox.models import OutboxEvent

    def react(event: Envelope) -> None:
        outbox.publish(
            event_type="order.placed",
            aggregate_type="order",
            aggregate_id="other",
            payload=order_payload(),
        )

    handled = envelope(1, origin="payments")
    event_apply(consumer="shop", envelope=handled, subscriptions=[Subscription("shop", "#", react)])
    written = OutboxEvent.objects.get(aggregate_id="other")
    assert (written.origin, written.causation_id) == ("payments", handled.id)


def test_a_batch_applies_each_event_once_and_in_order_like_one_by_one():
    from django.db import transaction

    from outbox.inbox import events_apply_batch

    one, two, three = envelope(1), envelope(2), envelope(3)
    other = envelope(1, aggregate_id="B")
    batch = [one, two, one, three, envelope(5), other, envelope(1, origin="shop")]
    with transaction.atomic():
        outcomes = events_apply_batch(
            consumer="shop", envelopes=batch, subscriptions_for=lambda event_type: SUBS
        )
    assert outcomes == [
        Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED,
        Outcome.GAP, Outcome.APPLIED, Outcome.ECHO,
    ]  # fmt: skip
    assert Group.objects.count() == 4
    assert set(InboxEvent.objects.values_list("sequence", flat=True)) == {1, 2, 3}
    assert ConsumerCursor.objects.get(consumer="shop", aggregate_id="A").last_sequence == 3
    with transaction.atomic():
        again = events_apply_batch(
            consumer="shop", envelopes=[two, envelope(4)], subscriptions_for=lambda t: SUBS
        )
    assert again == [Outcome.DUPLICATE, Outcome.APPLIED]


def test_the_same_sequence_from_the_other_half_is_applied_not_dropped_as_old():
    # payment P: succeeded on the monolith (its seq 1), refunded on the payments service
    # (its own counter: seq 1 too) during a canary; a consumer hearing both must apply both.
    runs = []
    subs = [Subscription("notifications", "#", runs.append)]
    succeeded = envelope(1, aggregate_id="P", origin="monolith")
    refunded = envelope(1, aggregate_id="P", origin="payments")
    for event in (succeeded, refunded):
        outcome = event_apply(consumer="notifications", envelope=event, subscriptions=subs)
        assert outcome == Outcome.APPLIED
    assert [event.id for event in runs] == [succeeded.id, refunded.id]
    cursors = ConsumerCursor.objects.filter(consumer="notifications", aggregate_id="P")
    assert dict(cursors.values_list("origin", "last_sequence")) == {"monolith": 1, "payments": 1}


def test_each_writer_of_an_aggregate_is_ordered_on_its_own():
    assert apply(envelope(1, origin="monolith")) == Outcome.APPLIED
    assert apply(envelope(2, origin="payments")) == Outcome.GAP  # payments' 1 not seen yet
    assert apply(envelope(1, origin="monolith")) == Outcome.DUPLICATE  # a new id, an old seq
    assert apply(envelope(1, origin="payments")) == Outcome.APPLIED
    assert apply(envelope(2, origin="payments")) == Outcome.APPLIED
    assert apply(envelope(2, origin="monolith")) == Outcome.APPLIED


def test_a_batch_keeps_one_cursor_per_writer_of_an_aggregate():
    from django.db import transaction

    from outbox.inbox import events_apply_batch

    batch = [
        envelope(1, origin="monolith"), envelope(1, origin="payments"),
        envelope(2, origin="payments"), envelope(3, origin="monolith"),
    ]  # fmt: skip
    with transaction.atomic():
        outcomes = events_apply_batch(
            consumer="shop", envelopes=batch, subscriptions_for=lambda event_type: SUBS
        )
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.APPLIED, Outcome.GAP]
    cursors = ConsumerCursor.objects.filter(consumer="shop", aggregate_id="A")
    assert dict(cursors.values_list("origin", "last_sequence")) == {"monolith": 1, "payments": 2}


def test_an_event_is_not_blocked_by_a_parked_event_of_the_other_writer():
    parked = envelope(1, origin="monolith")
    dead_letter_park(consumer="shop", envelope=parked, reason="failed", error="x", attempts=3)
    assert apply(envelope(2, origin="payments")) == Outcome.GAP
    assert apply(envelope(1, origin="payments")) == Outcome.APPLIED
    assert apply(envelope(2, origin="monolith")) == Outcome.BLOCKED


def test_replaying_a_parked_event_takes_later_ones_of_its_writer_only():
    from outbox.models import DeadLetter
    from outbox.services import _with_followers

    for sequence, origin in [(1, "monolith"), (2, "monolith"), (3, "payments")]:
        dead_letter_park(
            consumer="shop", envelope=envelope(sequence, origin=origin), reason="blocked",
            error="x", attempts=0,
        )  # fmt: skip
    first = DeadLetter.objects.filter(sequence=1)
    assert [(d.origin, d.sequence) for d in _with_followers(first)] == [
        ("monolith", 1), ("monolith", 2),
    ]  # fmt: skip
