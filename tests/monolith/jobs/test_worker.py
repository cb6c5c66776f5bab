"""The jobs through a real `celery -A monolith worker`, RabbitMQ, Redis and the test database.

The worker gets a RabbitMQ virtual host of its own (created with rabbitmqctl, deleted after),
so it declares the real topology (`strangler.jobs`, `monolith.jobs`, `monolith.emails`) without
touching, or consuming from, the queues of anyone else sharing the broker.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from monolith.celery import app as celery_app
from monolith.imports.models import ImportJob
from monolith.orders.models import Order, OrderItem
from monolith.orders.tasks import generate_sales_report, send_order_confirmation

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 30


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path
    var_dir: Path
    media_root: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _use_broker(url: str) -> None:
    """Point this process's Celery app at `url`, dropping its pooled connections to the old one."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    if not settings.BROKER_URL.startswith("amqp") or not settings.REDIS_URL:
        pytest.skip("needs BROKER_URL=amqp://... and REDIS_URL (make test sets both)")
    if connection.vendor != "postgresql" or not shutil.which("rabbitmqctl"):
        pytest.skip("needs PostgreSQL (a database the worker can share) and rabbitmqctl")

    vhost = f"strangler-jobs-test-{uuid.uuid4().hex[:12]}"
    parts = urlsplit(settings.BROKER_URL)
    broker_url = urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")

    root = tmp_path_factory.mktemp("worker")
    var_dir, media_root, log = root / "var", root / "media", root / "worker.log"
    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "BROKER_URL": broker_url,
        "REDIS_URL": settings.REDIS_URL,
        "STRANGLER_VAR_DIR": str(var_dir),
        "STRANGLER_MEDIA_ROOT": str(media_root),
        "STRANGLER_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "STRANGLER_FAST_PASSWORD_HASHER": "1",
    }
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery), "-A", "monolith", "worker", "-Q", "monolith.jobs,monolith.emails"]
    command += ["--pool", "solo", "--without-mingle", "--without-gossip", "-l", "INFO"]
    command += ["-n", f"{vhost}@%h"]
    saved_broker = celery_app.conf.broker_url
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _use_broker(broker_url)
        handle = Worker(process, log, var_dir, media_root)
        _wait_until_ready(handle)
        yield handle
    finally:
        _use_broker(saved_broker)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _rabbitmqctl("delete_vhost", vhost)


def _wait_until_ready(worker: Worker) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited with {worker.process.returncode}:\n{worker.output()}")
        if " ready." in worker.output():
            return
        time.sleep(0.2)
    pytest.fail(f"the worker was not ready after {TIMEOUT}s:\n{worker.output()}")


def _result(async_result, worker: Worker):
    try:
        return async_result.get(timeout=TIMEOUT)
    except Exception as exc:
        pytest.fail(f"{async_result.id} did not succeed ({exc!r}); worker log:\n{worker.output()}")


def _order(user, *, created_at: dt.datetime | None = None, status: str = "pending") -> Order:
    order = Order.objects.create(user=user, status=status, total=Decimal("25.00"))
    OrderItem.objects.create(order=order, sku="BOOK-1", quantity=2, unit_price=Decimal("12.50"))
    if created_at:
        Order.objects.filter(pk=order.pk).update(created_at=created_at)
    return order


def test_confirmation_email_is_written_by_the_worker(worker, make_user):
    order = _order(make_user(email="buyer@example.com"))

    result = send_order_confirmation.delay(str(order.id))

    assert _result(result, worker) == str(order.id)
    (mail,) = (worker.var_dir / "mail").iterdir()
    text = mail.read_text()
    assert "To: buyer@example.com" in text
    assert f"Your order {order.id} is confirmed" in text
    assert "Total: 25.00 EUR" in text


def test_sales_report_runs_in_the_worker_and_publishes_progress(worker, make_user):
    user = make_user()
    today = dt.datetime.now(dt.UTC).date()
    yesterday_noon = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
    for status in ("paid", "paid", "shipped"):
        _order(user, created_at=yesterday_noon, status=status)
    task_id = str(uuid.uuid4())
    # The Redis result backend publishes every state it stores on the task's key: listen first.
    updates = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    updates.subscribe(f"celery-task-meta-{task_id}")
    try:
        result = generate_sales_report.apply_async(kwargs={"days": 1}, task_id=task_id)
        path = Path(_result(result, worker))
        states = []
        deadline = time.monotonic() + 5
        # get_message() answers None for the (ignored) subscribe confirmation too: poll to SUCCESS.
        while "SUCCESS" not in [state for state, _ in states] and time.monotonic() < deadline:
            if message := updates.get_message(timeout=0.5):
                meta = json.loads(message["data"])
                states.append((meta["status"], meta["result"]))
    finally:
        updates.close()
        result.forget()

    assert path.parent == worker.media_root / "reports"
    with path.open(newline="") as handle:
        rows = [(r["status"], r["count"], r["total"]) for r in csv.DictReader(handle)]
    assert rows == [("paid", "2", "50.00"), ("shipped", "1", "25.00")]
    assert ("PROGRESS", {"done": 0, "total": 3}) in states
    assert ("PROGRESS", {"done": 3, "total": 3}) in states
    assert states[-1][0] == "SUCCESS"


def test_bulk_import_uploaded_through_the_api_runs_in_the_worker(
    worker, make_user, client_for, settings
):
    settings.MEDIA_ROOT = worker.media_root  # the worker reads the upload where the API saved it
    staff = client_for(make_user(is_staff=True))
    content = b"email,full_name,password\nnew@example.com,New Person,\nbroken,Broken,\n"

    response = staff.post(
        "/api/imports/",
        {"kind": "users", "file": SimpleUploadedFile("people.csv", content)},
        format="multipart",
    )

    assert response.status_code == 202, response.json()
    job_id = response.json()["id"]
    summary = _result(celery_app.AsyncResult(job_id), worker)
    assert summary == {"id": job_id, "status": "completed", "imported": 1, "errors": 1}
    shown = staff.get(f"/api/imports/{job_id}/").json()
    assert shown["errors"][0]["row"] == 3
    assert shown["errors"][0]["field"] == "email"
    assert ImportJob.objects.get(pk=job_id).imported_count == 1
