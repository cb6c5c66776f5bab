"""The relay as a Celery task, for teams that run beat instead of `manage.py outbox_relay`.

Add to the beat schedule (e.g. in the project's celery.py):

    app.conf.beat_schedule["outbox-relay"] = outbox.tasks.BEAT_ENTRY

One drain per tick: delivery is as safe as the long-running relay's, latency is the tick.
"""

from __future__ import annotations

import time

from celery import shared_task

from .conf import setting

_next_cleanup = 0.0  # monotonic time of this worker process's next cleanup

BEAT_ENTRY = {"task": "outbox.tasks.outbox_relay_tick", "schedule": 1.0, "options": {"expires": 5}}


@shared_task(name="outbox.tasks.outbox_relay_tick", ignore_result=True)
def outbox_relay_tick(max_seconds: float = 4.0) -> int:
    """Publish what is pending (for at most `max_seconds`), clean up, return rows sent."""
    from .broker import EnvelopePublisher
    from .relay import outbox_cleanup, relay_drain

    publisher = EnvelopePublisher()
    try:
        sent = relay_drain(publisher=publisher, max_seconds=max_seconds)
    finally:
        publisher.close()
    global _next_cleanup
    if time.monotonic() >= _next_cleanup:  # as the relay process: once per interval, not per tick
        _next_cleanup = time.monotonic() + float(setting("OUTBOX_CLEANUP_INTERVAL_S"))
        outbox_cleanup()
    return sent
