"""Compare the monolith's users with the service's: every user, field by field, tokens included.

Per user, the fields both halves own (`service_kit.user_events.SHARED_FIELDS`: id, email, full
name, the staff/active/superuser flags, `date_joined`, the password hash, `updated_at`,
`tokens_revoked_at`) and the set of its live token digests, canonicalised (times in UTC to the
microsecond) and hashed with SHA-256. Every difference is listed:

* `missing_in_service`   a monolith user the service does not have
* `missing_in_monolith`  a service user the monolith does not have
* `mismatch`             both have it, and these fields differ (each with both values, except
                         the password hash and the tokens, which are only said to differ)

A lost registration is a missing user; a lost password change a `password` mismatch; a lost
login or token revocation a `tokens` mismatch. Tokens that expire during the comparison are left
out (each half purges them on its own schedule).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone
from knox.models import get_token_model

from service_kit.user_events import SHARED_FIELDS

from . import source
from .models import User

SECRET_FIELDS = ("password", "tokens")
COMPARED = (*[name for name in SHARED_FIELDS if name != "id"], "tokens")


@dataclass(frozen=True)
class Difference:
    kind: str
    user_id: int
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind != "mismatch":
            return f"{self.kind}: user {self.user_id}"
        parts = ", ".join(
            f"{name} monolith={values['monolith']!r} service={values['service']!r}"
            for name, values in self.fields.items()
        )
        return f"mismatch: user {self.user_id}: {parts}"


@dataclass
class ReconcileReport:
    monolith_count: int
    service_count: int
    differences: list[Difference]

    @property
    def exact(self) -> bool:
        return not self.differences and self.monolith_count == self.service_count

    def as_dict(self) -> dict[str, Any]:
        return {
            "monolith_count": self.monolith_count,
            "service_count": self.service_count,
            "exact": self.exact,
            "differences": [asdict(d) for d in self.differences],
        }


def _time(value: Any) -> str | None:
    when = source.as_datetime(value)
    return when.isoformat(timespec="microseconds") if when is not None else None


def canonical(row: dict[str, Any], digests: list[str]) -> dict[str, Any]:
    """Return a user's shared fields and live token digests as plain comparable values."""
    return {
        "id": int(row["id"]),
        "email": row["email"],
        "full_name": row["full_name"],
        "is_staff": bool(row["is_staff"]),
        "is_active": bool(row["is_active"]),
        "is_superuser": bool(row["is_superuser"]),
        "date_joined": _time(row["date_joined"]),
        "password": row["password"],
        "updated_at": _time(row["updated_at"]),
        "tokens_revoked_at": _time(row["tokens_revoked_at"]),
        "tokens": sorted(digests),
    }


def digest(user: dict[str, Any]) -> str:
    text = json.dumps(user, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _live(tokens: list[dict[str, Any]], horizon) -> dict[int, list[str]]:
    by_user: dict[int, list[str]] = {}
    for token in tokens:
        expiry = source.as_datetime(token["expiry"])
        if expiry is None or expiry > horizon:
            by_user.setdefault(int(token["user_id"]), []).append(token["digest"])
    return by_user


def _monolith_users(source_db, horizon) -> dict[int, dict[str, Any]]:
    tokens = _live(source.tokens(source_db), horizon)
    return {
        int(row["id"]): canonical(row, tokens.get(int(row["id"]), []))
        for row in source.users(source_db)
    }


def _service_users(horizon) -> dict[int, dict[str, Any]]:
    columns = source.TOKEN_COLUMNS
    tokens = _live(
        [dict(zip(columns, values, strict=True))
         for values in get_token_model().objects.values_list(*columns)],
        horizon,
    )  # fmt: skip
    return {
        int(values[0]): canonical(dict(zip(source.USER_COLUMNS, values, strict=True)),
                                  tokens.get(int(values[0]), []))
        for values in User.objects.order_by().values_list(*source.USER_COLUMNS).iterator(2000)
    }  # fmt: skip


def users_reconcile(*, source_db) -> ReconcileReport:
    """Compare every user in the monolith database `source_db` with ours; list the gaps."""
    # Tokens expiring within the next minute may be purged by one half during the comparison.
    horizon = timezone.now() + timedelta(seconds=60)
    monolith, service = _monolith_users(source_db, horizon), _service_users(horizon)
    differences: list[Difference] = []
    for pk in sorted(monolith.keys() - service.keys()):
        differences.append(Difference("missing_in_service", pk))
    for pk in sorted(service.keys() - monolith.keys()):
        differences.append(Difference("missing_in_monolith", pk))
    for pk in sorted(monolith.keys() & service.keys()):
        ours, theirs = service[pk], monolith[pk]
        if digest(ours) == digest(theirs):
            continue
        changed = {}
        for name in COMPARED:
            if theirs[name] == ours[name]:
                continue
            if name == "tokens":
                changed[name] = {"monolith": f"{len(theirs[name])} live",
                                 "service": f"{len(ours[name])} live"}  # fmt: skip
            elif name in SECRET_FIELDS:
                changed[name] = {"monolith": "(hash)", "service": "(a different hash)"}
            else:
                changed[name] = {"monolith": theirs[name], "service": ours[name]}
        differences.append(Difference("mismatch", pk, changed))
    return ReconcileReport(
        monolith_count=len(monolith), service_count=len(service), differences=differences
    )
