"""Healthchecks of processes that serve no HTTP: `python -m migrations_playbook.health KIND ...`.

compose.yaml's healthchecks run these, one per kind of process (an HTTP process is asked
`GET /readyz` by `migrations_playbook.probe` instead). What each one proves:

* ``worker APP NODE``: the Celery worker NODE of app APP answers a control ping within 5 s, so
  it is connected to the broker and its consumer loop runs. ``%h`` in NODE stands for this
  host's name, as in ``celery worker -n``.
* ``beat``: the broker is reachable and beat's schedule file exists (beat creates it as it
  starts). Beat answers nothing, so this is the most that can be asked of it.
* ``relay``: the database and the broker are reachable, and no committed outbox row has waited
  longer than ``--max-pending-age`` seconds (60): rows are being published.
* ``consumer SERVICE``: on RabbitMQ, the queue ``SERVICE.events`` has a consumer attached (with
  one replica, this one); on the embedded broker, which cannot count consumers, the broker is
  reachable.

The process's own settings (DJANGO_SETTINGS_MODULE, DATABASE_URL, BROKER_URL...) are read as
the process reads them. Exit status: 0 healthy, 1 not, with the reason on stdout (Docker keeps
it in `docker inspect`), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path


class Unhealthy(Exception):
    """The process is not doing its work; the message says what was found."""


def _django() -> None:
    import django

    django.setup()


def _broker_reachable() -> str:
    """Connect to the process's broker; return its transport name, or raise Unhealthy."""
    from outbox.broker import broker_connection, connection_errors

    connection = broker_connection()
    try:
        connection.connect()
    except connection_errors(connection) as exc:
        raise Unhealthy(f"broker unreachable: {exc.__class__.__name__}: {exc}") from exc
    finally:
        connection.release()
    return connection.transport.driver_type


def worker_check(*, app: str, node: str) -> str:
    """Ping Celery worker `node` of app `app`; return what answered."""
    from celery import current_app
    from celery.app.utils import find_app

    node = node.replace("%h", socket.gethostname())
    celery_app = find_app(app) if app else current_app
    replies = celery_app.control.ping(destination=[node], timeout=5.0)
    if not any(node in reply for reply in replies):
        raise Unhealthy(f"the worker {node} did not answer a ping within 5 s")
    return f"{node} answered a ping"


def beat_check() -> str:
    """Check beat's broker and its schedule file."""
    from django.conf import settings

    transport = _broker_reachable()
    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE_FILENAME", "celerybeat-schedule")
    if not any(Path(schedule).parent.glob(f"{Path(schedule).name}*")):
        raise Unhealthy(f"beat's schedule file {schedule} does not exist: beat has not started")
    return f"broker reachable ({transport}); schedule file {schedule} present"


def relay_check(*, max_pending_age: float) -> str:
    """Check the relay's database and broker, and the age of the oldest unsent outbox row."""
    from django.db import DatabaseError

    from outbox.selectors import outbox_status

    try:
        status = outbox_status(consumers=[], broker=False)
    except DatabaseError as exc:
        raise Unhealthy(f"database unreachable: {exc.__class__.__name__}: {exc}") from exc
    transport = _broker_reachable()
    age = status["oldest_pending_age_s"]
    if age > max_pending_age:
        raise Unhealthy(
            f"{status['pending']} outbox rows unsent, the oldest for {age:.0f} s "
            f"(more than {max_pending_age:g} s): the relay is not publishing"
        )
    return f"broker reachable ({transport}); {status['pending']} rows pending, oldest {age:.1f} s"


def consumer_check(*, service: str) -> str:
    """Check that the queue of `service`'s events has a consumer attached."""
    from outbox.selectors import queue_depths
    from outbox.topology import service_queue_name

    transport = _broker_reachable()
    queue = service_queue_name(service)
    if transport != "amqp":
        return f"broker reachable ({transport}; it cannot count the consumers of {queue})"
    (depth,) = queue_depths([queue])
    if not depth.consumers:
        found = "no such queue" if depth.consumers is None else "no consumer"
        raise Unhealthy(f"{queue}: {found}; the consumer of {service!r} is not attached")
    return f"{queue}: {depth.consumers} consumer(s), {depth.messages} message(s) ready"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migrations_playbook.health",
        description="Exit 0 when a process that serves no HTTP is doing its work.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True)
    worker = kinds.add_parser("worker", help="ping a Celery worker")
    worker.add_argument("app", help="the Celery app, as `celery -A` takes it")
    worker.add_argument("node", help="the worker's node name, as `celery worker -n` takes it")
    kinds.add_parser("beat", help="Celery beat: broker reachable, schedule file present")
    relay = kinds.add_parser("relay", help="the outbox relay: no row waits too long")
    relay.add_argument(
        "--max-pending-age",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="oldest unsent outbox row allowed (default 60)",
    )
    consumer = kinds.add_parser("consumer", help="an outbox consumer: its queue has a consumer")
    consumer.add_argument("service", help="the consuming service (`outbox_consume --service`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one check; print its finding; return 0 when healthy, 1 otherwise."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _django()
        if args.kind == "worker":
            found = worker_check(app=args.app, node=args.node)
        elif args.kind == "beat":
            found = beat_check()
        elif args.kind == "relay":
            found = relay_check(max_pending_age=args.max_pending_age)
        else:
            found = consumer_check(service=args.service)
    except Unhealthy as exc:
        print(f"unhealthy: {exc}")
        return 1
    print(f"healthy: {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
