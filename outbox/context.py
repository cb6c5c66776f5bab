"""Carry the correlation and causation ids of the work in progress to the events it writes.

The consumer runtime sets them from the event being handled, so the events a handler writes
name their cause; an HTTP view may set the correlation id from its `X-Request-ID`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_correlation: ContextVar[str | None] = ContextVar("outbox_correlation_id", default=None)
_causation: ContextVar[str | None] = ContextVar("outbox_causation_id", default=None)


def current_ids() -> tuple[str | None, str | None]:
    """Return the (correlation id, causation id) in effect, each None when unset."""
    return _correlation.get(), _causation.get()


@contextlib.contextmanager
def event_context(
    *, correlation_id: str | None = None, causation_id: str | None = None
) -> Iterator[None]:
    """Make events written inside the block carry these correlation and causation ids."""
    tokens = (_correlation.set(correlation_id), _causation.set(causation_id))
    try:
        yield
    finally:
        _correlation.reset(tokens[0])
        _causation.reset(tokens[1])
