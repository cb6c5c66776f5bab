"""Confirmation and welcome emails: content, and retries of transient SMTP failures."""

from __future__ import annotations

import smtplib
from unittest import mock

import pytest

from monolith.orders import tasks as order_tasks
from monolith.orders.tasks import send_order_confirmation
from monolith.users.tasks import send_welcome_email

pytestmark = pytest.mark.django_db


def test_confirmation_email_lists_the_items_and_total_to_the_owner(place_order, mailoutbox):
    order = place_order(items=(("BOOK-1", 2, "12.50"), ("PEN-9", 1, "3.00")))

    assert send_order_confirmation(str(order.id)) == str(order.id)

    (message,) = mailoutbox
    assert message.to == [order.user.email]
    assert str(order.id) in message.subject
    assert "2 x BOOK-1 at 12.50" in message.body
    assert "1 x PEN-9 at 3.00" in message.body
    assert "Total: 28.00 EUR" in message.body


def test_confirmation_email_is_retried_after_a_dropped_smtp_connection(place_order, mailoutbox):
    order = place_order()
    real_send = order_tasks.send_mail
    failures = [smtplib.SMTPServerDisconnected("gone"), ConnectionResetError("reset")]

    def send(**kwargs):
        if failures:
            raise failures.pop(0)
        return real_send(**kwargs)

    with mock.patch.object(order_tasks, "send_mail", side_effect=send) as patched:
        result = send_order_confirmation.apply(args=[str(order.id)])

    assert result.successful()
    assert patched.call_count == 3
    assert len(mailoutbox) == 1


def test_retries_back_off_exponentially_with_jitter(place_order):
    order = place_order()
    task = send_order_confirmation
    failing = mock.patch.object(
        order_tasks, "send_mail", side_effect=smtplib.SMTPConnectError(421, "busy")
    )
    with failing, mock.patch.object(task, "retry", wraps=task.retry) as retry:
        result = task.apply(args=[str(order.id)])

    assert result.failed()
    assert isinstance(result.result, smtplib.SMTPConnectError)
    countdowns = [call.kwargs["countdown"] for call in retry.call_args_list]
    assert len(countdowns) == task.max_retries + 1  # the last call finds the retries used up
    for attempt, countdown in enumerate(countdowns):
        assert 0 <= countdown <= min(task.retry_backoff_max, 2 * 2**attempt)


def test_a_missing_order_fails_at_once_without_retrying(db, mailoutbox):
    with mock.patch.object(send_order_confirmation, "retry") as retry:
        result = send_order_confirmation.apply(args=["00000000-0000-4000-8000-000000000000"])

    assert result.failed()
    retry.assert_not_called()
    assert mailoutbox == []


def test_welcome_email_greets_the_user_by_name(make_user, mailoutbox):
    user = make_user(email="ada@example.com", full_name="Ada Lovelace")

    assert send_welcome_email(user.pk) == "ada@example.com"

    (message,) = mailoutbox
    assert message.to == ["ada@example.com"]
    assert "Hello Ada Lovelace" in message.body
