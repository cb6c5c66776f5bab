"""Background jobs of the users app."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from monolith.celery import RETRY_POLICY


@shared_task(name="monolith.users.tasks.send_welcome_email", **RETRY_POLICY)
def send_welcome_email(user_id: int) -> str:
    """Email a newly registered user a welcome; return the address written to."""
    user = get_user_model().objects.get(pk=user_id)
    name = user.full_name or user.email
    send_mail(
        subject="Welcome to the shop",
        message=f"Hello {name},\n\nyour account {user.email} is ready.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    return user.email
