"""The monolith's Celery app: `celery -A monolith worker|beat`, broker from `BROKER_URL`."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monolith.settings")

app = Celery("monolith")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "daily-sales-report": {
        "task": "monolith.orders.tasks.generate_sales_report",
        "schedule": crontab(hour=2, minute=0),
        "kwargs": {"days": 1},
    },
}
