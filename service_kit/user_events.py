"""The `user.*` events both users halves write and apply: one module, so the two cannot drift.

While step 2 runs, the monolith and the users service (extracted/users) both hold every user and
every token digest, and each serves some requests: a write happens only in the half that served
it, and reaches the other through these events (the other applies them; its own come back as
echoes and are dropped by the outbox runtime, by origin).

| event                | payload                                   | applied as                    |
|----------------------|-------------------------------------------|-------------------------------|
| `user.registered` v2 | the user's shared state (below)           | insert, or newer `updated_at` |
| `user.updated` v2    | the state after the change, `changed`     | newer `updated_at` wins       |
| `user.token_issued`  | the token's SHA-512 `digest`, times       | insert unless revoked since   |
| `user.token_revoked` | `digests`; `before`: every older token    | delete; raise the watermark   |

The shared state is what both halves own and reconcile compares: id, email, full name, the
staff, active and superuser flags, `date_joined`, the Django **password hash** (so a password
moves intact: a user logs in on either half with the same password, before and after a switch
or a rollback), `updated_at` and `tokens_revoked_at`. The hash travels on the internal broker
only (never to a client); it is what each half's database holds anyway. Tokens travel as
digests only (knox keeps no token in clear anywhere).

Convergence: a user's state is taken whole when its `updated_at` is at least the local one
(last writer wins; both halves read one clock on one host, and a user's writes are sticky to one
half during canary). A token is refused when the user's tokens were revoked after it was made
(`tokens_revoked_at`), so a revocation overtaking a token's own event still wins.

Version 1 of `user.registered` / `user.updated` (before step 2) carried no hash nor flags; the
upcasters below fill them as "not known" (None, ""), and the apply keeps the local values then.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

import outbox
from outbox.schemas import upcaster

logger = logging.getLogger(__name__)

#: Default first id the users service allocates; the monolith's own ids stay below it.
DEFAULT_ID_START = 1_000_000_000
#: Fields of a user both halves own and keep equal, as the events name them.
SHARED_FIELDS = (
    "id",
    "email",
    "full_name",
    "is_staff",
    "is_active",
    "is_superuser",
    "date_joined",
    "password",
    "updated_at",
    "tokens_revoked_at",
)
_FLAGS = ("is_staff", "is_active", "is_superuser")


class ReplicaConflict(RuntimeError):
    """An event cannot be applied: it would break a rule of this half (an email taken, no user)."""


def users_id_start() -> int:
    """Return the first id the users service allocates (STRANGLER_USERS_ID_START)."""
    return int(getattr(settings, "STRANGLER_USERS_ID_START", DEFAULT_ID_START))


# ------------------------------------------------------------------ writing


def user_state(user) -> dict[str, Any]:
    """Return the shared state of `user` as the v2 payloads carry it."""
    return {
        "user_id": user.pk,
        "email": user.email,
        "full_name": user.full_name,
        "is_staff": user.is_staff,
        "is_active": user.is_active,
        "is_superuser": user.is_superuser,
        "date_joined": user.date_joined,
        "password_hash": user.password or "",
        "updated_at": user.updated_at,
    }


def user_registered_publish(*, user):
    """Record `user.registered` v2 for a user just created (inside its transaction)."""
    return outbox.publish(
        event_type="user.registered",
        aggregate_type="user",
        aggregate_id=str(user.pk),
        payload=user_state(user),
        version=2,
    )


def user_updated_publish(*, user, changed):
    """Record `user.updated` v2 naming the `changed` fields of a saved user (at least one)."""
    names = list(dict.fromkeys(changed))
    if not names:
        raise ValueError("user.updated needs at least one changed field; write no event instead.")
    return outbox.publish(
        event_type="user.updated",
        aggregate_type="user",
        aggregate_id=str(user.pk),
        payload=user_state(user) | {"changed": names},
        version=2,
    )


def token_issued_publish(*, token):
    """Record `user.token_issued` for a knox token just saved: its digest, never the token."""
    return outbox.publish(
        event_type="user.token_issued",
        aggregate_type="user",
        aggregate_id=str(token.user_id),
        payload={
            "user_id": token.user_id,
            "digest": token.digest,
            "created": token.created,
            "expiry": token.expiry,
        },
    )


def token_revoked_publish(*, user_id: int, digests: list[str], before: datetime | None = None):
    """Record `user.token_revoked`: these digests, and with `before` every older token too."""
    return outbox.publish(
        event_type="user.token_revoked",
        aggregate_type="user",
        aggregate_id=str(user_id),
        payload={"user_id": user_id, "digests": sorted(digests), "before": before},
    )


# ------------------------------------------------------------------ upcasting v1 -> v2


@upcaster("user.registered", 1)
def _registered_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return payload | {
        "is_active": None,
        "is_superuser": None,
        "password_hash": "",
        "updated_at": None,
    }


@upcaster("user.updated", 1)
def _updated_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return payload | {
        "is_staff": None,
        "is_active": None,
        "is_superuser": None,
        "date_joined": None,
        "password_hash": "",
    }


# ------------------------------------------------------------------ applying


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time.")
    return parsed


def local_user_id_next(model) -> int | None:
    """Return the id the monolith gives its next own user on SQLite; None elsewhere.

    PostgreSQL's sequence ignores the explicit ids the replica inserts, so it keeps handing out
    ids below the users service's range. SQLite's AUTOINCREMENT hands out one more than the
    largest id in the table, so a single replicated id from the service's range would move the
    monolith's next id into it: there the next id is the largest one below the range, plus one.
    Call inside the creating transaction (SQLite's are IMMEDIATE: writers take turns).
    """
    if connection.vendor != "sqlite":
        return None
    top = model.objects.filter(id__lt=users_id_start()).aggregate(top=Max("id"))["top"]
    return (top or 0) + 1


def user_replica_apply(*, payload: dict[str, Any]) -> str:
    """Apply a user's state from the other half; return "inserted", "updated" or "older".

    Inserts an unknown id as given; takes the state of a known one unless the local copy is
    newer (`updated_at`). Values the payload does not know (None, "") keep the local ones.
    Raises ReplicaConflict when another user of this half holds the email.
    """
    User = get_user_model()
    user_id = int(payload["user_id"])
    incoming_at = _when(payload.get("updated_at"))
    fields: dict[str, Any] = {"email": payload["email"], "full_name": payload["full_name"]}
    for name in _FLAGS:
        if payload.get(name) is not None:
            fields[name] = bool(payload[name])
    if payload.get("date_joined"):
        fields["date_joined"] = _when(payload["date_joined"])
    if payload.get("password_hash"):
        fields["password"] = payload["password_hash"]
    with transaction.atomic():
        taken = User.objects.filter(email__iexact=fields["email"]).exclude(pk=user_id).first()
        if taken is not None:
            raise ReplicaConflict(
                f"user {user_id} cannot take the email of user {taken.pk} here: both halves "
                "registered the address; resolve by hand (docs/step-2-users-service.md)"
            )
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            user = User(pk=user_id, **fields)
            if "password" not in fields:
                user.set_unusable_password()
            user.save(force_insert=True)
            outcome = "inserted"
        elif incoming_at is not None and user.updated_at and incoming_at < user.updated_at:
            logger.info("user %s: kept the local state, newer than the other half's", user_id)
            return "older"
        else:
            outcome = "updated"
        # update(): auto_now would stamp updated_at with our clock, not the writer's.
        stamp = {"updated_at": incoming_at} if incoming_at is not None else {}
        User.objects.filter(pk=user_id).update(**fields, **stamp)
    return outcome


def token_issued_apply(*, payload: dict[str, Any]) -> str:
    """Store the digest of a token the other half issued; return "inserted", "known" or "revoked".

    A token made before the user's tokens were last revoked here is refused: the revocation
    (a password change) happened after it, whatever order the two events arrived in.
    """
    from knox.models import get_token_model
    from knox.settings import CONSTANTS

    AuthToken = get_token_model()
    User = get_user_model()
    digest, user_id = payload["digest"], int(payload["user_id"])
    created = _when(payload["created"])
    with transaction.atomic():
        if AuthToken.objects.filter(digest=digest).exists():
            return "known"
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise ReplicaConflict(f"token for user {user_id}: no such user here yet")
        if user.tokens_revoked_at is not None and created <= user.tokens_revoked_at:
            return "revoked"
        token = AuthToken(
            digest=digest,
            token_key=digest[: CONSTANTS.TOKEN_KEY_LENGTH],
            user_id=user_id,
            expiry=_when(payload.get("expiry")),
        )
        token.save(force_insert=True)
        AuthToken.objects.filter(digest=digest).update(created=created)
    return "inserted"


def token_revoked_apply(*, payload: dict[str, Any]) -> int:
    """Delete the listed digests (and, with `before`, every older token of the user); count."""
    from knox.models import get_token_model

    AuthToken = get_token_model()
    User = get_user_model()
    user_id = int(payload["user_id"])
    before = _when(payload.get("before"))
    with transaction.atomic():
        listed = AuthToken.objects.filter(user_id=user_id, digest__in=payload["digests"])
        deleted, _ = listed.delete()
        if before is not None:
            more, _ = AuthToken.objects.filter(user_id=user_id, created__lte=before).delete()
            deleted += more
            User.objects.filter(pk=user_id).filter(_older_watermark(before)).update(
                tokens_revoked_at=before
            )
    return deleted


def _older_watermark(before: datetime):
    """Return the filter of users whose token watermark is unset or older than `before`."""
    from django.db.models import Q

    return Q(tokens_revoked_at__isnull=True) | Q(tokens_revoked_at__lt=before)


def tokens_watermark_raise(*, user, at: datetime | None = None) -> datetime:
    """Mark every token of `user` made until `at` (now) as revoked; return the mark."""
    mark = at or timezone.now()
    type(user).objects.filter(pk=user.pk).filter(_older_watermark(mark)).update(
        tokens_revoked_at=mark
    )
    return mark
