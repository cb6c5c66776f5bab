"""Attack: publish a forged `payment.succeeded` so that the monolith marks an order paid.

First against the step-1 stack of this package (`strangler up` with defaults: the runner made
the per-half broker users), as an outsider who holds the broker's administrator credentials;
then in detail against the monolith's consumer alone, on a vhost of the test's own.

Anyone who can publish to RabbitMQ (here: the operator's own `guest`, an administrator of the
vhost) sends a well-formed envelope that claims `origin: payments`. The monolith's consumer must
refuse it because RabbitMQ does not vouch for the sender: its `user_id` is not the payments
half's broker user. The refused event is parked with the reason and nothing changes. Against the
real broker, with the per-half users `strangler up` creates (docs/security.md, "Broker").
"""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace

import amqp
import pytest
import requests
from django.db import connection
from kombu import Connection

from monolith.orders.models import Order
from monolith.payments.models import Payment
from outbox.broker import EnvelopePublisher
from outbox.consumer import EventConsumer
from outbox.envelope import Envelope
from outbox.models import DeadLetter
from outbox.registry import registry
from outbox.selectors import queue_depths
from tests.outbox.half_users import half_users_vhost

from .conftest import TIMEOUT, stack_log

pytestmark = [pytest.mark.integration]
in_this_database = pytest.mark.django_db(transaction=True)


def payment_succeeded(order: Order, *, origin: str = "payments") -> Envelope:
    payment_id = str(uuid.uuid4())
    return Envelope(
        id=str(uuid.uuid4()),
        type="payment.succeeded",
        version=1,
        aggregate_type="payment",
        aggregate_id=payment_id,
        sequence=1,
        occurred_at="2026-01-02T03:04:05+00:00",
        origin=origin,
        correlation_id=str(uuid.uuid4()),
        causation_id="",
        payload={
            "payment_id": payment_id,
            "order_id": str(order.id),
            "user_id": order.user_id,
            "amount": "25.00",
            "currency": order.currency,
            "card_last4": "4242",
            "status": "succeeded",
            "provider_reference": "forged",
            "created_at": "2026-01-02T03:04:05+00:00",
        },
    )


def publish_as_outsider(url: str, envelope: Envelope, **properties) -> None:
    """Publish `envelope` to the events exchange with the outsider's connection, confirmed."""
    with Connection(url) as conn:
        conn.connect()
        channel = conn.connection.channel()
        message = amqp.Message(envelope.to_json(), content_type="application/json", **properties)
        # Waits for the broker's confirm, so a refusal surfaces here.
        channel.basic_publish_confirm(message, "strangler.events", envelope.type)
        channel.close()


@pytest.fixture(scope="module")
def half_vhost(tmp_path_factory):
    """A vhost with the per-half broker users (made once: rabbitmqctl is slow to start)."""
    with half_users_vhost(tmp_path_factory.mktemp("var")) as vhost:
        yield vhost


@pytest.fixture
def monolith_consumer(settings, half_vhost):
    """The monolith's consumer running as the monolith half's broker user, on a fresh vhost."""
    import monolith.payments.consumers  # noqa: F401 - registers the "monolith" handlers

    vhost = half_vhost
    settings.OUTBOX_BROKER_URL = vhost.users["monolith"].url
    settings.OUTBOX_BROKER_USERS = vhost.mapping
    settings.OUTBOX_EXCHANGE = "strangler.events"
    stop = threading.Event()
    consumer = EventConsumer(service="monolith", registry=registry, should_stop=stop.is_set)

    def run() -> None:
        try:
            consumer.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while (queue_depths(["monolith.events"])[0].consumers or 0) == 0:
        assert time.monotonic() < deadline, "the monolith's consumer never subscribed"
        time.sleep(0.05)
    try:
        yield vhost
    finally:
        stop.set()
        thread.join(10)


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@in_this_database
def test_forged_payment_succeeded_from_an_outsider_is_parked_and_the_order_stays_unpaid(
    monolith_consumer, make_user
):
    stack = monolith_consumer
    order = Order.objects.create(user=make_user(), total="25.00", currency="EUR")
    without_user = payment_succeeded(order)
    as_itself = payment_succeeded(order)

    publish_as_outsider(stack.admin_url, without_user)  # no user_id at all
    publish_as_outsider(stack.admin_url, as_itself, user_id="guest")  # honest about who it is
    # Claiming to be the payments half: RabbitMQ itself refuses the publish.
    with pytest.raises(amqp.exceptions.PreconditionFailed, match="user_id property set to"):
        publish_as_outsider(
            stack.admin_url, payment_succeeded(order), user_id=stack.users["payments"].user
        )

    parked = {without_user.id, as_itself.id}
    assert wait_for(
        lambda: (
            set(
                str(e)
                for e in DeadLetter.objects.filter(
                    consumer="monolith", reason="untrusted"
                ).values_list("event_id", flat=True)
            )
            == parked
        )
    )
    letters = {str(d.event_id): d for d in DeadLetter.objects.filter(consumer="monolith")}
    payments_user = stack.users["payments"].user
    assert "no user_id" in letters[without_user.id].error
    refusal = letters[as_itself.id].error
    assert "sent by broker user 'guest'" in refusal
    assert f"origin 'payments' must come from broker user '{payments_user}'" in refusal
    order.refresh_from_db()
    assert order.status == "pending"
    assert not Payment.objects.filter(order_id=order.id).exists()


@in_this_database
def test_the_same_event_from_the_payments_halfs_own_user_does_mark_the_order_paid(
    monolith_consumer, make_user
):
    stack = monolith_consumer
    order = Order.objects.create(user=make_user(), total="25.00", currency="EUR")
    publisher = EnvelopePublisher(stack.users["payments"].url)
    try:
        publisher.publish([payment_succeeded(order)])
    finally:
        publisher.close()
    assert wait_for(lambda: Order.objects.get(id=order.id).status == "paid")
    assert not DeadLetter.objects.filter(consumer="monolith").exists()


def test_a_forged_payment_succeeded_sent_to_the_stacks_broker_leaves_the_order_unpaid(
    stack, proxy, customer
):
    catalogue = requests.get(f"{proxy}/api/products/", timeout=TIMEOUT)
    item = {"sku": "SKU-1", "quantity": 1, "unit_price": "5.00"}  # before the catalogue
    if catalogue.status_code == 200:
        item = {"sku": catalogue.json()["results"][0]["sku"], "quantity": 1}
    placed = requests.post(
        f"{proxy}/api/orders/",
        json={"items": [item]},
        headers=customer.auth,
        timeout=TIMEOUT,
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    forged = payment_succeeded(
        SimpleNamespace(id=order["id"], user_id=customer.id, currency=order["currency"])
    )
    forged = Envelope(
        **(forged.to_dict() | {"payload": forged.payload | {"amount": order["total"]}})
    )
    publish_as_outsider(stack.env["BROKER_URL"], forged)  # the operator's own user, no user_id

    refused = stack_log(stack, until=f"refusing payment.succeeded {forged.id}", timeout=20)
    assert f"refusing payment.succeeded {forged.id}" in refused
    assert "origin 'payments' must come from broker user 'strangler-payments@" in refused
    time.sleep(1.0)  # room for a wrong payment to land
    seen = requests.get(
        f"{proxy}/api/orders/{order['id']}/", headers=customer.auth, timeout=TIMEOUT
    )
    assert seen.json()["status"] == "pending"
