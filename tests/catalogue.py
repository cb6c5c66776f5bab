"""Put products in the monolith's catalogue for a test, then order them as a client does.

Prices come only from the catalogue, so a test that wants a line at 12.50 stocks its sku at
12.50 first: `order_create(user=user, items=stocked([{"sku": "A", "quantity": 2,
"unit_price": "12.50"}]))`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal


def stock(sku: str, unit_price, name: str | None = None):
    """Create (or reprice) the product `sku` at `unit_price`; return it."""
    from monolith.orders.models import Product

    product, _ = Product.objects.update_or_create(
        sku=sku, defaults={"name": name or f"Product {sku}", "unit_price": Decimal(str(unit_price))}
    )
    return product


def stocked(items: Iterable[Mapping]) -> list[dict]:
    """Stock each line's sku at its `unit_price`; return the lines as orders name them.

    A line without `unit_price` names a product that must already be in the catalogue.
    """
    lines = []
    for item in items:
        if "unit_price" in item:
            stock(item["sku"], item["unit_price"])
        lines.append({"sku": item["sku"], "quantity": item["quantity"]})
    return lines
