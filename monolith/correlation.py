"""Give every event written while serving one request the same correlation id.

The id is the request's `X-Request-ID` (the proxy sets it and carries it end to end), so an
operator can find every event a request caused by the id in the proxy's logs; a request without
a usable one gets a fresh uuid. Nothing is added to the response: a random header would be
noise in the proxy's shadow comparisons.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from outbox.context import event_context

HEADER = "X-Request-ID"
# The envelope's correlation_id holds at most 64 characters; anything odd is replaced, not cut.
_USABLE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_correlation_id(request: HttpRequest) -> str:
    """Return the request's X-Request-ID if it can serve as a correlation id, else a new uuid."""
    candidate = request.headers.get(HEADER, "")
    if _USABLE.fullmatch(candidate):
        return candidate
    return str(uuid.uuid4())


class CorrelationMiddleware:
    """Run the view inside outbox.context.event_context(correlation_id=...)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with event_context(correlation_id=request_correlation_id(request)):
            return self.get_response(request)
