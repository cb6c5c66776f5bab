"""`manage.py seed --users N --orders M [--seed S]`: fill the database with a realistic shop.

* Users: `first.lastN@example.com`, all sharing one password hash computed once (the password
  is printed), so seeding stays fast whatever the hasher; joined 3 to 12 months ago.
* A catalogue of products (created if missing); orders of 1-5 distinct products, created over
  the last 90 days, across every status.
* Payments consistent with each order: one succeeded payment for paid and shipped orders, a
  refunded one for refunded orders (amount = order total), and now and then a declined
  attempt before it, or on a cancelled or pending order.
* Bulk inserts in batches (one transaction per batch), with a tqdm progress bar on stderr.
* The same `--seed` on the same database state gives the same data set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.utils import timezone
from tqdm import tqdm

from monolith.orders.models import Order, OrderItem, OrderStatus, Product
from monolith.payments.models import Payment, PaymentStatus

SEED_PASSWORD = "seed-Passw0rd!"  # noqa: S105 - demo data, printed on purpose
FIRST_NAMES = [
    "Ada",
    "Alan",
    "Barbara",
    "Brian",
    "Claude",
    "Dennis",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "Guido",
    "Hedy",
    "Ivan",
    "John",
    "Katherine",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Ruth",
    "Shafi",
    "Sophie",
    "Tim",
    "Whitfield",
    "Yukihiro",
]
LAST_NAMES = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Kernighan",
    "Shannon",
    "Ritchie",
    "Knuth",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Rossum",
    "Lamarr",
    "Sutherland",
    "McCarthy",
    "Johnson",
    "Thompson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Teitelbaum",
    "Goldwasser",
    "Wilson",
    "Berners-Lee",
    "Diffie",
    "Matsumoto",
]
ADJECTIVES = [
    "Red",
    "Blue",
    "Green",
    "Small",
    "Large",
    "Classic",
    "Deluxe",
    "Organic",
    "Smart",
    "Vintage",
]
NOUNS = [
    "Mug",
    "Lamp",
    "Chair",
    "Notebook",
    "Backpack",
    "Kettle",
    "Headphones",
    "Blanket",
    "Plant",
    "Watch",
]
# Shares of each final status; a web shop ships most of what it sells.
STATUS_WEIGHTS = {
    OrderStatus.PENDING: 15,
    OrderStatus.PAID: 15,
    OrderStatus.SHIPPED: 45,
    OrderStatus.CANCELLED: 12,
    OrderStatus.REFUNDED: 13,
}
CENT = Decimal("0.01")


@contextlib.contextmanager
def explicit_timestamps(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let created_at/updated_at take the values we set instead of now(), for back-dated rows."""
    switched = []
    for model in model_classes:
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                switched.append((field, field.auto_now, field.auto_now_add))
                field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in switched:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


class Command(BaseCommand):
    help = "Fill the database with realistic users, products, orders and payments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=100, help="users to create (100)")
        parser.add_argument("--orders", type=int, default=1000, help="orders to create (1000)")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatability")
        parser.add_argument("--products", type=int, default=50, help="catalogue size (50)")
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per insert")

    def handle(self, *args, **options) -> None:
        for name in ("users", "orders", "products", "batch_size"):
            if options[name] < 0:
                flag = "--" + name.replace("_", "-")
                raise CommandError(f"{flag} must be zero or more, got {options[name]}.")
        if options["batch_size"] == 0:
            raise CommandError("--batch-size must be at least 1, got 0.")
        self.rng = random.Random(options["seed"])
        self.batch_size = options["batch_size"]
        self.quiet = options["verbosity"] == 0
        self.now = timezone.now()
        started = time.perf_counter()

        products = self._catalogue(options["products"])
        user_ids = self._users(options["users"])
        if options["orders"] and not user_ids:
            raise CommandError("--orders needs users: pass --users N, or seed users first.")
        if options["orders"] and not products:
            raise CommandError("--orders needs products: pass --products N (at least 1).")
        counts = self._orders(options["orders"], user_ids, products)

        elapsed = time.perf_counter() - started
        if not self.quiet:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded {len(user_ids) if options['users'] else 0} users, "
                    f"{options['orders']} orders ({counts['items']} items, "
                    f"{counts['payments']} payments) in {elapsed:.1f}s. "
                    f"Seeded users log in with the password {SEED_PASSWORD!r}."
                )
            )

    def _bar(self, total: int, unit: str) -> tqdm:
        return tqdm(total=total, unit=unit, file=self.stderr, disable=self.quiet or not total)

    def _catalogue(self, size: int) -> list[tuple[str, Decimal]]:
        """Create products SKU-0001.. up to `size` if missing; return (sku, price) to order from."""
        wanted = [
            Product(
                sku=f"SKU-{n:04d}",
                name=f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}",
                unit_price=Decimal(self.rng.randint(199, 14999)) / 100,
            )
            for n in range(1, size + 1)
        ]
        Product.objects.bulk_create(wanted, ignore_conflicts=True, batch_size=self.batch_size)
        return list(
            Product.objects.filter(sku__in=[p.sku for p in wanted]).values_list("sku", "unit_price")
        )

    def _users(self, count: int) -> list[int]:
        """Create `count` users; return their ids (or existing users' ids when count is 0)."""
        user_model = get_user_model()
        if not count:
            return list(user_model.objects.filter(is_active=True).values_list("id", flat=True))
        password = make_password(SEED_PASSWORD)  # hashed once, shared: fast on any hasher
        offset = user_model.objects.count()
        ids: list[int] = []
        with self._bar(count, "users") as bar:
            for start in range(0, count, self.batch_size):
                batch = []
                for n in range(start, min(count, start + self.batch_size)):
                    first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
                    joined = self.now - dt.timedelta(days=self.rng.uniform(90, 365))
                    batch.append(
                        user_model(
                            email=f"{first}.{last}{offset + n + 1}@example.com".lower(),
                            full_name=f"{first} {last}",
                            password=password,
                            date_joined=joined,
                        )
                    )
                created = user_model.objects.bulk_create(batch)
                ids.extend(user.pk for user in created)
                bar.update(len(batch))
        return ids

    def _orders(
        self, count: int, user_ids: list[int], products: list[tuple[str, Decimal]]
    ) -> dict[str, int]:
        """Create `count` orders with items and consistent payments, a batch per transaction."""
        statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)
        counts = {"items": 0, "payments": 0}
        with self._bar(count, "orders") as bar, explicit_timestamps(Order, Payment):
            for start in range(0, count, self.batch_size):
                size = min(self.batch_size, count - start)
                orders, items, payments = [], [], []
                for status in self.rng.choices(statuses, weights, k=size):
                    order, lines = self._order(self.rng.choice(user_ids), status, products)
                    orders.append(order)
                    items.extend(lines)
                    payments.extend(self._payments(order))
                with transaction.atomic():
                    Order.objects.bulk_create(orders)
                    OrderItem.objects.bulk_create(items)
                    Payment.objects.bulk_create(payments)
                counts["items"] += len(items)
                counts["payments"] += len(payments)
                bar.update(size)
        return counts

    def _order(
        self, user_id: int, status: str, products: list[tuple[str, Decimal]]
    ) -> tuple[Order, list[OrderItem]]:
        created = self.now - dt.timedelta(seconds=self.rng.uniform(0, 90 * 86400))
        order = Order(id=uuid.UUID(int=self.rng.getrandbits(128), version=4), user_id=user_id)
        picked = self.rng.sample(products, k=min(len(products), self.rng.randint(1, 5)))
        lines = [
            OrderItem(
                order=order, sku=sku, quantity=self.rng.choice((1, 1, 1, 2, 2, 3)), unit_price=price
            )
            for sku, price in picked
        ]
        order.status = status
        order.total = sum((line.quantity * line.unit_price for line in lines), Decimal("0.00"))
        order.total = order.total.quantize(CENT)
        order.currency = "EUR"
        order.created_at = created
        # Paid orders moved on after they were placed; the rest were last touched then.
        order.updated_at = created
        if status != OrderStatus.PENDING:
            order.updated_at = min(self.now, created + dt.timedelta(hours=self.rng.uniform(0, 72)))
        return order, lines

    def _payments(self, order: Order) -> list[Payment]:
        payments = []
        declined_first = self.rng.random() < 0.08
        if order.status in (OrderStatus.CANCELLED, OrderStatus.PENDING) and declined_first:
            payments.append(self._payment(order, PaymentStatus.FAILED))
        elif order.status in (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.REFUNDED):
            if declined_first:
                payments.append(self._payment(order, PaymentStatus.FAILED))
            final = (
                PaymentStatus.REFUNDED
                if order.status == OrderStatus.REFUNDED
                else PaymentStatus.SUCCEEDED
            )
            payments.append(self._payment(order, final))
        return payments

    def _payment(self, order: Order, status: str) -> Payment:
        failed = status == PaymentStatus.FAILED
        at = order.created_at + dt.timedelta(seconds=self.rng.uniform(5, 600))
        return Payment(
            id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            order=order,
            user_id=order.user_id,
            amount=order.total,
            currency=order.currency,
            status=status,
            card_last4="0002" if failed else "4242",
            provider_reference="" if failed else f"sim_{self.rng.getrandbits(64):016x}",
            failure_reason="card_declined" if failed else "",
            created_at=at,
            updated_at=at if status != PaymentStatus.REFUNDED else max(at, order.updated_at),
        )
