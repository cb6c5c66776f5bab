"""`manage.py seed`: counts, a data set whose orders, items and payments agree, bad arguments."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Q, Sum

from monolith.orders.models import Order, OrderItem, Product
from monolith.payments.models import Payment

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_seed_creates_the_asked_numbers_in_batches():
    output = seed("--users", "12", "--orders", "75", "--seed", "3", "--batch-size", "20")

    assert get_user_model().objects.count() == 12
    assert Order.objects.count() == 75
    assert Product.objects.filter(sku__startswith="SKU-").count() == 50  # beside the demo ones
    assert "Seeded 12 users, 75 orders" in output


def test_seeded_orders_items_and_payments_are_consistent():
    seed("--users", "10", "--orders", "200", "--seed", "11")

    assert set(Order.objects.values_list("status", flat=True)) == {
        "pending",
        "paid",
        "shipped",
        "cancelled",
        "refunded",
    }
    for order in Order.objects.annotate(n_items=Count("items")):
        assert 1 <= order.n_items <= 5
        lines = OrderItem.objects.filter(order=order)
        assert order.total == sum((i.quantity * i.unit_price for i in lines), Decimal("0.00"))
        settled = list(Payment.objects.filter(order=order, status__in=["succeeded", "refunded"]))
        expected = {"paid": "succeeded", "shipped": "succeeded", "refunded": "refunded"}
        if order.status in expected:
            (payment,) = settled
            assert payment.status == expected[order.status]
            assert (payment.amount, payment.user_id) == (order.total, order.user_id)
            assert payment.created_at >= order.created_at
        else:
            assert settled == []
    assert not Payment.objects.exclude(status="failed").filter(card_last4="0002").exists()


def test_seeded_users_share_one_password_hash_and_can_log_in():
    seed("--users", "3", "--orders", "0", "--seed", "1")

    users = list(get_user_model().objects.all())
    assert len({user.password for user in users}) == 1
    assert all(user.check_password("seed-Passw0rd!") for user in users)
    assert all(user.email.endswith("@example.com") and user.full_name for user in users)


def test_seed_is_repeatable_with_the_same_seed():
    def statuses() -> Counter:
        return Counter(Order.objects.values_list("status", flat=True))

    seed("--users", "5", "--orders", "60", "--seed", "42")
    first = statuses(), Order.objects.aggregate(total=Sum("total"))["total"]
    Payment.objects.all().delete()
    Order.objects.all().delete()
    get_user_model().objects.all().delete()

    seed("--users", "5", "--orders", "60", "--seed", "42")

    assert (statuses(), Order.objects.aggregate(total=Sum("total"))["total"]) == first


def test_seed_runs_twice_without_email_clashes():
    seed("--users", "4", "--orders", "0", "--seed", "5")
    seed("--users", "4", "--orders", "0", "--seed", "5")

    assert get_user_model().objects.count() == 8


def test_orders_alone_go_to_existing_users(make_user):
    owner = make_user()

    seed("--orders", "7", "--users", "0", "--seed", "2")

    assert Order.objects.filter(user=owner).count() == 7
    assert not Order.objects.filter(~Q(user=owner)).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "-1"], "--users must be zero or more, got -1."),
        (["--orders", "-5"], "--orders must be zero or more, got -5."),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0."),
        (["--users", "many"], "argument --users: invalid int value: 'many'"),
        (["--users", "0", "--orders", "3"], "--orders needs users"),
    ],
)
def test_bad_arguments_are_refused_with_a_message_naming_them(args, message):
    with pytest.raises(CommandError, match=message):
        seed(*args)
    assert Order.objects.count() == 0
