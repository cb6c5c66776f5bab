"""Background jobs of the orders app: the confirmation email and the sales report.

Both carry the project's RETRY_POLICY (monolith.celery) and are safe to run twice: an email
sent twice is a duplicate the customer can live with, a report re-run replaces its file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from monolith.celery import RETRY_POLICY

from .reports import sales_report_window, sales_report_write


@shared_task(name="monolith.orders.tasks.send_order_confirmation", **RETRY_POLICY)
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


@shared_task(bind=True, name="monolith.orders.tasks.generate_sales_report", **RETRY_POLICY)
def generate_sales_report(self, days: int = 1, until: str | None = None) -> str:
    """Write the sales CSV of the `days` days before `until` (default today, UTC); return its path.

    Progress is published as the task state PROGRESS with meta {"done": n, "total": N} orders.
    """
    start, end = sales_report_window(
        days=days, until=dt.date.fromisoformat(until) if until else None
    )

    def progress(done: int, total: int) -> None:
        if self.request.id:  # a direct call (no task id) has no state to report into
            self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    path = sales_report_write(
        start=start, end=end, directory=Path(settings.MEDIA_ROOT) / "reports", progress=progress
    )
    return str(path)
