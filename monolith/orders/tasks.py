"""Background jobs of the orders app."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail


@shared_task(name="monolith.orders.tasks.send_order_confirmation")
def send_order_confirmation(order_id: str) -> str:
    """Email the order's owner that it was placed."""
    from .models import Order

    order = Order.objects.select_related("user").prefetch_related("items").get(pk=order_id)
    lines = [f"{item.quantity} x {item.sku} at {item.unit_price}" for item in order.items.all()]
    send_mail(
        subject=f"Your order {order.id} is confirmed",
        message="\n".join([*lines, f"Total: {order.total} {order.currency}"]),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[order.user.email],
    )
    return str(order.id)
