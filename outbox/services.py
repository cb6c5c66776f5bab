"""Operations on parked events: replay them to their consumer, or purge them."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu import Producer

from .broker import broker_connection
from .envelope import CONTENT_TYPE, Envelope
from .models import DeadLetter
from .topology import service_queue_name


def _with_followers(letters: QuerySet[DeadLetter]) -> list[DeadLetter]:
    """Add every later parked event of the same consumer, aggregate and writer, in order.

    Sequences of one aggregate from two writers are unrelated counters: only the same
    origin's later events were held back by these.
    """
    chosen = list(letters)
    if not chosen:
        return []
    followers = Q()
    for letter in chosen:
        followers |= Q(
            consumer=letter.consumer,
            aggregate_type=letter.aggregate_type,
            aggregate_id=letter.aggregate_id,
            origin=letter.origin,
            sequence__gt=letter.sequence,
        )
    extra = DeadLetter.objects.filter(followers, replayed_at=None)
    merged = {letter.id: letter for letter in [*chosen, *extra]}
    return sorted(
        merged.values(),
        key=lambda d: (d.consumer, d.aggregate_type, d.aggregate_id, d.origin, d.sequence),
    )


def dead_letter_replay(*, letters: QuerySet[DeadLetter], broker_url: str | None = None) -> int:
    """Send parked events back to their consumer's queue, in sequence order; return the count.

    Later parked events of the same aggregate and writer go along: they were parked only
    because these were. A replayed event that fails again is parked again, with its attempts
    counted afresh.
    """
    replay = _with_followers(letters)
    if not replay:
        return 0
    connection = broker_connection(broker_url)
    connection.transport_options["confirm_publish"] = True
    with connection:
        producer = Producer(connection.default_channel)
        for letter in replay:
            envelope = Envelope.from_dict(letter.envelope)
            # Marked first: if the consumer fails it again at once, its fresh park must win.
            DeadLetter.objects.filter(id=letter.id).update(replayed_at=timezone.now())
            try:
                producer.publish(
                    envelope.to_json(),
                    exchange="",
                    routing_key=service_queue_name(letter.consumer),
                    content_type=CONTENT_TYPE,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    headers={"x-outbox-replayed": True},
                )
            except Exception:
                DeadLetter.objects.filter(id=letter.id).update(replayed_at=None)
                raise
    return len(replay)


def dead_letter_purge(*, letters: QuerySet[DeadLetter]) -> int:
    """Delete parked events for good; return how many."""
    deleted, _ = DeadLetter.objects.filter(id__in=letters.values("id")).delete()
    return deleted
