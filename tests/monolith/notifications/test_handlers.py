"""The notifications subscriber: the right message, on the right channels, once per event."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils.module_loading import autodiscover_modules

from monolith.notifications.models import Notification, NotificationPreference
from monolith.notifications.services import notifications_deliver_pending
from outbox.inbox import Outcome, event_apply
from outbox.models import InboxEvent
from outbox.registry import Subscription, registry
from tests.monolith.events.builders import DECLINE_CARD, envelopes, pay, place, refund, ship

pytestmark = pytest.mark.django_db

CONSUMER = "notifications"


def deliver(envelope, capture) -> Outcome:
    """Apply one event as the consumer runtime would, running the post-commit delivery."""
    with capture(execute=True):
        return event_apply(
            consumer=CONSUMER,
            envelope=envelope,
            subscriptions=registry.matching(CONSUMER, envelope.type),
        )


def test_subscriber_is_bound_to_every_order_and_payment_event():
    autodiscover_modules("handlers")

    assert registry.binding_keys(CONSUMER) == ["order.#", "payment.#"]
    for event_type in (
        "order.placed", "order.paid", "order.cancelled", "order.shipped",
        "payment.succeeded", "payment.failed", "payment.refunded",
    ):  # fmt: skip
        assert registry.matching(CONSUMER, event_type), event_type
    assert not registry.matching(CONSUMER, "user.registered")


def test_order_placed_sends_nothing_since_the_receipt_is_the_celery_job(
    user, django_capture_on_commit_callbacks
):
    place(user)
    [placed] = envelopes("order.placed")

    # Handled (so the order's later events are not held back as a gap), but no second email.
    assert deliver(placed, django_capture_on_commit_callbacks) == Outcome.APPLIED

    assert mail.outbox == []
    assert Notification.objects.count() == 0


def test_order_paid_emails_the_customer_once(user, django_capture_on_commit_callbacks):
    order = pay(user, place(user)).order
    [placed], [paid] = envelopes("order.placed"), envelopes("order.paid")
    deliver(placed, django_capture_on_commit_callbacks)

    assert deliver(paid, django_capture_on_commit_callbacks) == Outcome.APPLIED

    [email] = mail.outbox
    assert email.to == [user.email]
    assert email.subject == f"Order {str(order.pk).split('-')[0]} paid"
    assert "25.00 EUR" in email.body
    [notification] = Notification.objects.all()
    assert (notification.channel, notification.status) == ("email", "sent")
    assert str(notification.event_id) == paid.id


def test_order_shipped_tells_the_customer_by_email_only(
    user, sms_file, django_capture_on_commit_callbacks
):
    NotificationPreference.objects.create(user=user, sms_phone="+4915112345678")
    order = ship(pay(user, place(user)).order)
    *before, shipped = envelopes()
    for envelope in before:  # placed, paid (and the payment's own): the order's sequence
        deliver(envelope, django_capture_on_commit_callbacks)
    sms_file.unlink(missing_ok=True)
    mail.outbox.clear()

    assert shipped.type == "order.shipped"
    assert deliver(shipped, django_capture_on_commit_callbacks) == Outcome.APPLIED

    [email] = mail.outbox
    assert email.to == [user.email]
    assert email.subject == f"Order {str(order.pk).split('-')[0]} shipped"
    assert "25.00 EUR is on its way" in email.body
    assert not sms_file.exists()
    [notification] = Notification.objects.filter(event_id=shipped.id)
    assert (notification.channel, str(notification.event_id)) == ("email", shipped.id)


def test_a_redelivered_event_sends_nothing_more(user, django_capture_on_commit_callbacks):
    pay(user, place(user))
    [placed], [paid] = envelopes("order.placed"), envelopes("order.paid")
    deliver(placed, django_capture_on_commit_callbacks)
    deliver(paid, django_capture_on_commit_callbacks)

    assert deliver(paid, django_capture_on_commit_callbacks) == Outcome.DUPLICATE

    assert len(mail.outbox) == 1
    assert Notification.objects.count() == 1


def test_a_declined_payment_goes_by_email_and_sms_to_a_user_with_a_phone(
    user, sms_file, django_capture_on_commit_callbacks
):
    NotificationPreference.objects.create(user=user, sms_phone="+4915112345678")
    pay(user, place(user), card=DECLINE_CARD)
    [failed] = envelopes("payment.failed")

    deliver(failed, django_capture_on_commit_callbacks)

    assert [m.subject for m in mail.outbox] == ["Payment declined"]
    [line] = sms_file.read_text().splitlines()
    sms = json.loads(line)
    assert sms["to"] == "+4915112345678"
    assert "card ending 0002 was declined" in sms["text"]
    assert sorted(Notification.objects.values_list("channel", "status")) == [
        ("email", "sent"), ("sms", "sent"),
    ]  # fmt: skip


def test_order_events_never_go_by_sms(user, sms_file, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=user, sms_phone="+4915112345678")
    pay(user, place(user))

    deliver(envelopes("order.placed")[0], django_capture_on_commit_callbacks)
    deliver(envelopes("order.paid")[0], django_capture_on_commit_callbacks)

    assert not sms_file.exists()
    assert len(mail.outbox) == 1


def test_a_user_who_switched_email_off_and_has_no_phone_gets_nothing(
    user, django_capture_on_commit_callbacks
):
    NotificationPreference.objects.create(user=user, email_enabled=False)
    payment = pay(user, place(user))
    refund(user, payment)

    for envelope in envelopes():
        deliver(envelope, django_capture_on_commit_callbacks)

    assert mail.outbox == []
    assert Notification.objects.count() == 0
    assert InboxEvent.objects.filter(consumer=CONSUMER).count() == 4


def test_place_pay_refund_sends_one_message_per_event(user, django_capture_on_commit_callbacks):
    refund(user, pay(user, place(user)))

    for envelope in envelopes():
        deliver(envelope, django_capture_on_commit_callbacks)

    assert [m.subject.split(" ")[0] + " " + m.subject.split(" ")[-1] for m in mail.outbox] == [
        "Payment received", "Order paid", "Payment refunded",
    ]  # fmt: skip


def test_a_failing_channel_is_recorded_and_sent_later_exactly_once(
    user, settings, django_capture_on_commit_callbacks
):
    settings.STRANGLER_NOTIFICATION_CHANNELS = {"email": "tests.monolith.notifications.broken.Down"}
    pay(user, place(user))
    deliver(envelopes("order.placed")[0], django_capture_on_commit_callbacks)
    deliver(envelopes("order.paid")[0], django_capture_on_commit_callbacks)

    [notification] = Notification.objects.all()
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "SMTP is down" in notification.last_error
    assert InboxEvent.objects.filter(consumer=CONSUMER).count() == 2  # both events were handled

    settings.STRANGLER_NOTIFICATION_CHANNELS = {}
    assert notifications_deliver_pending(older_than_s=0) == 1
    call_command("notifications_deliver", "--older-than", "0")

    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1


def test_nothing_is_sent_when_handling_the_event_rolls_back(
    user, django_capture_on_commit_callbacks
):
    pay(user, place(user))
    deliver(envelopes("order.placed")[0], django_capture_on_commit_callbacks)
    [placed] = envelopes("order.paid")

    def later_handler_fails(event) -> None:
        raise RuntimeError("the next handler broke")

    subscriptions = [
        *registry.matching(CONSUMER, placed.type),
        Subscription(CONSUMER, "order.paid", later_handler_fails),
    ]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        event_apply(consumer=CONSUMER, envelope=placed, subscriptions=subscriptions)

    assert mail.outbox == []
    assert Notification.objects.count() == 0
    assert InboxEvent.objects.filter(consumer=CONSUMER).count() == 1  # order.placed only
