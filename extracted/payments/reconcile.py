"""Compare the monolith's payments with the service's: counts, then a digest per row.

The digest covers the fields both halves own and keep equal (`sync.SHARED_FIELDS`): id, order,
user, amount, currency, status, last four digits, provider reference, failure reason and
creation time, canonicalised (uuids as text, money with two places, times in UTC to the
microsecond) and hashed with SHA-256. Every difference is listed:

* `missing_in_service`   a monolith payment the service does not have
* `missing_in_monolith`  a service payment the monolith does not have
* `mismatch`             both have it, and these fields differ (each with both values)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from . import source
from .models import Payment
from .sync import SHARED_FIELDS

DIFFERENT_FIELDS = tuple(name for name in SHARED_FIELDS if name != "id")


@dataclass(frozen=True)
class Difference:
    kind: str
    payment_id: str
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind != "mismatch":
            return f"{self.kind}: payment {self.payment_id}"
        parts = ", ".join(
            f"{name} monolith={values['monolith']!r} service={values['service']!r}"
            for name, values in self.fields.items()
        )
        return f"mismatch: payment {self.payment_id}: {parts}"


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


def canonical(row: dict[str, Any]) -> dict[str, Any]:
    """Return the shared fields of a payment as plain comparable values."""
    return {
        "id": str(source.as_uuid(row["id"])),
        "order_id": str(source.as_uuid(row["order_id"])),
        "user_id": int(row["user_id"]),
        "amount": f"{source.as_money(row['amount']):.2f}",
        "currency": row["currency"],
        "status": row["status"],
        "card_last4": row["card_last4"],
        "provider_reference": row["provider_reference"] or "",
        "failure_reason": row["failure_reason"] or "",
        "created_at": source.as_datetime(row["created_at"]).isoformat(timespec="microseconds"),
    }


def digest(row: dict[str, Any]) -> str:
    text = json.dumps(canonical(row), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _monolith_rows(source_db: BaseDatabaseWrapper) -> dict[str, dict[str, Any]]:
    sql = f"SELECT {', '.join(SHARED_FIELDS)} FROM payments_payment"  # noqa: S608
    found = {}
    for values in source.rows(source_db, sql):
        row = canonical(dict(zip(SHARED_FIELDS, values, strict=True)))
        found[row["id"]] = row
    return found


def _service_rows() -> dict[str, dict[str, Any]]:
    found = {}
    for values in Payment.objects.order_by().values_list(*SHARED_FIELDS).iterator(chunk_size=2000):
        row = canonical(dict(zip(SHARED_FIELDS, values, strict=True)))
        found[row["id"]] = row
    return found


def payments_reconcile(*, source_db: BaseDatabaseWrapper) -> ReconcileReport:
    """Compare every payment in the monolith database `source_db` with ours; list the gaps."""
    monolith, service = _monolith_rows(source_db), _service_rows()
    differences: list[Difference] = []
    for pk in sorted(monolith.keys() - service.keys()):
        differences.append(Difference("missing_in_service", pk))
    for pk in sorted(service.keys() - monolith.keys()):
        differences.append(Difference("missing_in_monolith", pk))
    for pk in sorted(monolith.keys() & service.keys()):
        ours, theirs = service[pk], monolith[pk]
        if digest(ours) == digest(theirs):
            continue
        changed = {
            name: {"monolith": theirs[name], "service": ours[name]}
            for name in DIFFERENT_FIELDS
            if theirs[name] != ours[name]
        }
        differences.append(Difference("mismatch", pk, changed))
    return ReconcileReport(
        monolith_count=len(monolith), service_count=len(service), differences=differences
    )
