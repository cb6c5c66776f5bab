"""Say whether the broker vouches for an event's sender; an event nobody vouches for is refused.

An envelope's `origin` is a claim written by whoever published it. On RabbitMQ the claim is
checked against something the publisher cannot forge: the `user_id` message property, which
RabbitMQ validates (a publish whose `user_id` differs from the connection's user is refused
with PRECONDITION_FAILED; only users tagged `impersonator` may do otherwise, and ours are not).
Each half publishes as its own broker user (`strangler up` and compose create one per half),
so the rule is one lookup:

    an event whose origin is O is accepted only if it arrived with user_id == user(O)

where user(O) comes from OUTBOX_BROKER_USERS (`{"monolith": "strangler-monolith", ...}`).
Unset, every origin is expected from this process's own broker user: a broker with one user for
everything (guest in development) keeps working, and a half given its own user but no map
refuses the other half's events, loudly, rather than accepting them unchecked.

Events a consumer sends itself (to its retry tiers and wait queue) carry its own user_id and
the sender it verified in the `x-outbox-sender` header; only this half's user can publish with
that user_id, so the header is believed from it alone. An event replayed from the dead-letter
table is believed when it is exactly the envelope parked there after passing this check.

Supports: RabbitMQ only. Other transports (`filesystem://`, the embedded default) have no broker
authentication: anyone who can write to the broker folder can publish anything, so there the
folder's file permissions are the only guard (see docs/security.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from .conf import setting
from .envelope import Envelope

SENDER_HEADER = "x-outbox-sender"
REPLAYED_HEADER = "x-outbox-replayed"


def expected_user(origin: str, *, own_user: str) -> str | None:
    """Return the broker user events of `origin` must come from (None: nobody may send them)."""
    users: Mapping[str, str] = setting("OUTBOX_BROKER_USERS") or {}
    if not users:
        return own_user
    return users.get(origin)


def message_sender(*, user_id: str | None, headers: Mapping, own_user: str) -> str | None:
    """Return the broker user that vouches for a message, or None when none does.

    `user_id` is the property RabbitMQ validated. A message this half published itself (its
    own user) speaks for the sender it recorded when it first verified the event.
    """
    if not user_id:
        return None
    if user_id == own_user and headers.get(SENDER_HEADER):
        return str(headers[SENDER_HEADER])
    return user_id


def sender_refusal(*, envelope: Envelope, sender: str | None, own_user: str) -> str | None:
    """Return why `envelope` must be refused given who sent it, or None when it is vouched for."""
    expected = expected_user(envelope.origin, own_user=own_user)
    if expected is None:
        return (
            f"origin {envelope.origin!r} has no broker user in OUTBOX_BROKER_USERS "
            f"(known: {sorted(setting('OUTBOX_BROKER_USERS'))}); sent by {sender!r}"
        )
    if sender is None:
        return (
            f"no user_id: the broker does not vouch for the sender; origin {envelope.origin!r} "
            f"must come from broker user {expected!r}"
        )
    if sender != expected:
        return (
            f"sent by broker user {sender!r}, but origin {envelope.origin!r} must come from "
            f"broker user {expected!r}"
        )
    return None
