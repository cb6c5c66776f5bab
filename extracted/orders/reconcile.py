"""Compare the monolith's orders (and catalogue) with the service's read model, row by row.

An order is compared on what a client sees of it: owner, status, total, currency, creation
time and its lines in order (sku, quantity, unit price), canonicalised (uuids as text, money
with two places, times in UTC to the microsecond). The service's side is the serving
generation of `OrderView`, the read model the API answers from. Every difference is listed:

* `missing_in_service`   a monolith order the service does not have
* `missing_in_monolith`  a service order the monolith does not have
* `mismatch`             both have it, and these fields differ (each with both values)
* `product_missing_in_service`, `product_missing_in_monolith`, `product_mismatch`: the same
  for the catalogue, by sku (name and unit price)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from . import source
from .models import OrderView, Product
from .projections import active_generation

ORDER_FIELDS = ("user_id", "status", "total", "currency", "created_at", "items")
_BATCH = 2000


@dataclass(frozen=True)
class Difference:
    kind: str
    key: str
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        what = "product" if self.kind.startswith("product") else "order"
        if not self.kind.endswith("mismatch"):
            return f"{self.kind}: {what} {self.key}"
        parts = ", ".join(
            f"{name} monolith={values['monolith']!r} service={values['service']!r}"
            for name, values in self.fields.items()
        )
        return f"{self.kind}: {what} {self.key}: {parts}"


@dataclass
class ReconcileReport:
    monolith_count: int
    service_count: int
    differences: list[Difference]
    monolith_products: int = 0
    service_products: int = 0

    @property
    def exact(self) -> bool:
        return not self.differences and self.monolith_count == self.service_count

    def as_dict(self) -> dict[str, Any]:
        return {
            "monolith_count": self.monolith_count,
            "service_count": self.service_count,
            "monolith_products": self.monolith_products,
            "service_products": self.service_products,
            "exact": self.exact,
            "differences": [asdict(d) for d in self.differences],
        }


def canonical(row: dict[str, Any]) -> dict[str, Any]:
    """Return an order's compared fields as plain comparable values."""
    return {
        "user_id": int(row["user_id"]),
        "status": row["status"],
        "total": f"{source.as_money(row['total']):.2f}",
        "currency": row["currency"],
        "created_at": source.as_datetime(row["created_at"]).isoformat(timespec="microseconds"),
        "items": [
            [item["sku"], int(item["quantity"]), f"{source.as_money(item['unit_price']):.2f}"]
            for item in row["items"]
        ],
    }


def _monolith_orders(source_db: BaseDatabaseWrapper) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = ""
    while True:
        ids = source.ids_after(source_db, table="orders_order", after=after, limit=_BATCH)
        if not ids:
            return found
        for key, row in source.order_rows(source_db, ids).items():
            found[key] = canonical(row)
        after = str(ids[-1])


def _service_orders() -> dict[str, dict[str, Any]]:
    views = OrderView.objects.filter(generation=active_generation()).order_by()
    columns = ("order_id", *ORDER_FIELDS)
    return {
        str(values[0]): canonical(dict(zip(columns, values, strict=True)))
        for values in views.values_list(*columns).iterator(chunk_size=_BATCH)
    }


def _compare(theirs: dict, ours: dict, *, prefix: str = "") -> list[Difference]:
    differences: list[Difference] = []
    for key in sorted(theirs.keys() - ours.keys()):
        differences.append(Difference(f"{prefix}missing_in_service", key))
    for key in sorted(ours.keys() - theirs.keys()):
        differences.append(Difference(f"{prefix}missing_in_monolith", key))
    for key in sorted(theirs.keys() & ours.keys()):
        if theirs[key] == ours[key]:
            continue
        changed = {
            name: {"monolith": theirs[key][name], "service": ours[key][name]}
            for name in theirs[key]
            if theirs[key][name] != ours[key][name]
        }
        differences.append(Difference(f"{prefix}mismatch", key, changed))
    return differences


def _products(source_db: BaseDatabaseWrapper) -> tuple[dict, dict]:
    theirs, after = {}, ""
    while True:
        found = source.product_rows(source_db, after=after, limit=_BATCH)
        if not found:
            break
        for row in found:
            theirs[row["sku"]] = {"name": row["name"], "unit_price": f"{row['unit_price']:.2f}"}
        after = found[-1]["sku"]
    ours = {
        sku: {"name": name, "unit_price": f"{price:.2f}"}
        for sku, name, price in Product.objects.values_list("sku", "name", "unit_price")
    }
    return theirs, ours


def orders_reconcile(*, source_db: BaseDatabaseWrapper) -> ReconcileReport:
    """Compare every order (and product) of the monolith database `source_db` with ours."""
    monolith, service = _monolith_orders(source_db), _service_orders()
    differences = _compare(monolith, service)
    products_theirs, products_ours = _products(source_db)
    differences += _compare(products_theirs, products_ours, prefix="product_")
    return ReconcileReport(
        monolith_count=len(monolith),
        service_count=len(service),
        differences=differences,
        monolith_products=len(products_theirs),
        service_products=len(products_ours),
    )
