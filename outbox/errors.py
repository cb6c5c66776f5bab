"""The outbox's errors, one tree so callers can catch the whole boundary at once.

OutboxError
├── SchemaNotFound       no `<type>.v<version>.json` for an event being written or read
├── PayloadInvalid       a payload (or envelope) does not match its schema
└── NotInTransaction     `publish()` called outside `transaction.atomic()`
"""

from __future__ import annotations


class OutboxError(Exception):
    """Something about an event is wrong; the message names the event and the problem."""


class SchemaNotFound(OutboxError):
    """No schema file exists for an event type and version."""


class PayloadInvalid(OutboxError):
    """A payload or envelope does not match its JSON schema."""

    def __init__(self, message: str, *, errors: list[str]) -> None:
        super().__init__(message)
        self.errors = errors


class NotInTransaction(OutboxError):
    """An event was written outside the transaction that changes the data."""
