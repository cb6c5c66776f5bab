"""`/healthz` (the process is alive) and `/readyz` (its database and broker are reachable)."""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection


def check_database(alias: str = "default") -> str | None:
    """Return None if the database answers, else the reason it does not."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"database {alias!r} unreachable: {exc.__class__.__name__}: {exc}".strip()
    return None


def check_broker(url: str, transport_options: dict | None = None) -> str | None:
    """Return None if the broker accepts a connection within two seconds, else why not."""
    try:
        with Connection(url, transport_options=transport_options or {}, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker unreachable: {exc.__class__.__name__}: {exc}".strip()
    return None


@require_GET
def healthz(request):
    """Answer 200 while the process can serve requests at all."""
    return JsonResponse({"status": "ok", "service": settings.STRANGLER_SERVICE_NAME})


@require_GET
def readyz(request):
    """Answer 200 when the database and broker are reachable, 503 naming what is not."""
    problems = [
        problem
        for problem in (
            check_database(),
            check_broker(settings.BROKER_URL, settings.BROKER_TRANSPORT_OPTIONS),
        )
        if problem
    ]
    body = {"service": settings.STRANGLER_SERVICE_NAME}
    if problems:
        return JsonResponse(body | {"status": "unavailable", "reasons": problems}, status=503)
    return JsonResponse(body | {"status": "ready"})
