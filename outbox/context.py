"""Carry the correlation and causation ids of the work in progress to the events it writes.

The consumer runtime sets them from the event being handled, so the events a handler writes
name their cause (and keep its origin); a view may set the correlation id from `X-Request-ID`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_correlation: ContextVar[str | None] = ContextVar("outbox_correlation_id", default=None)
_causation: ContextVar[str | None] = ContextVar("outbox_causation_id", default=None)
_origin: ContextVar[str | None] = ContextVar("outbox_origin", default=None)


def current_ids() -> tuple[str | None, str | None]:
    """Return the (correlation id, causation id) in effect, each None when unset."""
    return _correlation.get(), _causation.get()


def current_origin() -> str | None:
    """Return the origin inherited from the event being handled, or None."""
    return _origin.get()


@contextlib.contextmanager
def event_context(
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    origin: str | None = None,
) -> Iterator[None]:
    """Make events written inside the block carry these ids (and `origin`, when given).

    The consumer runtime passes the handled event's origin: a change applied from another
    service keeps that service as its origin, so the event it causes here is dropped as an
    echo when it reaches that service again, and two-way sync cannot loop.
    """
    tokens = (_correlation.set(correlation_id), _causation.set(causation_id), _origin.set(origin))
    try:
        yield
    finally:
        _correlation.reset(tokens[0])
        _causation.reset(tokens[1])
        _origin.reset(tokens[2])
