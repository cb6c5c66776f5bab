"""The Celery app's topology, routing, schedule and the retry policy every task carries."""

from __future__ import annotations

from celery.schedules import crontab

from monolith.celery import RETRY_POLICY, TRANSIENT_ERRORS
from monolith.celery import app as celery_app

OUR_TASKS = [
    "monolith.orders.tasks.send_order_confirmation",
    "monolith.orders.tasks.generate_sales_report",
    "monolith.users.tasks.send_welcome_email",
    "monolith.imports.tasks.run_import",
]


def test_every_monolith_task_is_registered_with_the_retry_policy():
    celery_app.loader.import_default_modules()
    ours = sorted(name for name in celery_app.tasks if name.startswith("monolith."))
    assert set(OUR_TASKS) <= set(ours)
    # Any task added later is held to the same policy.
    for name in ours:
        task = celery_app.tasks[name]
        assert task.autoretry_for == TRANSIENT_ERRORS, name
        assert task.retry_backoff == RETRY_POLICY["retry_backoff"], name
        assert task.retry_backoff_max == RETRY_POLICY["retry_backoff_max"], name
        assert task.retry_jitter is True, name
        assert task.max_retries == RETRY_POLICY["max_retries"], name


def test_tasks_are_acked_late_and_requeued_when_the_worker_dies():
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_reject_on_worker_lost is True
    assert celery_app.conf.worker_prefetch_multiplier == 1


def test_queues_hang_off_the_jobs_direct_exchange_and_emails_have_priorities():
    queues = {queue.name: queue for queue in celery_app.conf.task_queues}
    assert set(queues) == {"monolith.jobs", "monolith.emails"}
    for queue in queues.values():
        assert (queue.exchange.name, queue.exchange.type) == ("strangler.jobs", "direct")
        assert queue.durable
    assert queues["monolith.emails"].queue_arguments == {"x-max-priority": 10}
    assert celery_app.conf.task_default_queue == "monolith.jobs"


def test_email_tasks_are_routed_to_the_emails_queue_by_priority_and_the_rest_to_jobs():
    router = celery_app.amqp.router
    for name, queue, priority in [
        ("monolith.orders.tasks.send_order_confirmation", "monolith.emails", 7),
        ("monolith.users.tasks.send_welcome_email", "monolith.emails", 5),
        ("monolith.users.tasks.send_password_reset", "monolith.emails", None),
        ("monolith.orders.tasks.generate_sales_report", "monolith.jobs", None),
        ("monolith.imports.tasks.run_import", "monolith.jobs", None),
    ]:
        route = router.route({}, name)
        assert (route["queue"].name, route.get("priority")) == (queue, priority), name


def test_beat_writes_yesterdays_sales_report_every_night():
    entry = celery_app.conf.beat_schedule["daily-sales-report"]
    assert entry["task"] == "monolith.orders.tasks.generate_sales_report"
    assert entry["kwargs"] == {"days": 1}
    assert entry["schedule"] == crontab(hour=2, minute=0)
