"""The monolith's Celery app: `celery -A monolith worker|beat`, broker from `BROKER_URL`.

Topology, retry policy and schedule (see docs/background-jobs.md):

* Exchange `strangler.jobs` (direct) with queues `monolith.jobs` (default) and
  `monolith.emails` (`x-max-priority` 10; every `*.tasks.send_*` task is routed there).
* Every task is acked late and re-queued if its worker dies, so each task body is written to
  be safe to run twice.
* `RETRY_POLICY`: transient errors (broken connections, SMTP hiccups, a database that went
  away) are retried with exponential backoff and full jitter; anything else fails at once.
* Beat: the sales report for the previous day, every day at 02:00 UTC.
"""

from __future__ import annotations

import os
import smtplib

from celery import Celery
from celery.schedules import crontab
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monolith.settings")

# Errors worth another try: the same call may well succeed a few seconds later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    OperationalError,
    InterfaceError,
)

# The one retry policy every task is declared with: `@shared_task(**RETRY_POLICY)`.
# Delays grow 2, 4, 8... seconds up to 10 minutes, each drawn at random below that bound
# (full jitter) so a burst of failures does not come back as a burst of retries.
RETRY_POLICY: dict = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 6,
}

app = Celery("monolith")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Keep retrying the broker at start-up, as Celery 5 did by default (and says it will stop doing).
app.conf.broker_connection_retry_on_startup = True
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "daily-sales-report": {
        "task": "monolith.orders.tasks.generate_sales_report",
        "schedule": crontab(hour=2, minute=0),
        "kwargs": {"days": 1},
    },
}
