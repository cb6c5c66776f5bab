"""Handlers per consumer and event type, and each subscription's delivery mode.

    from outbox.registry import handler, AT_MOST_ONCE

    @handler("order.placed", consumer="analytics")
    def count_order(event: Envelope) -> None: ...          # at-least-once, effect-once

    @handler("user.updated", consumer="search", mode=AT_MOST_ONCE)
    def refresh_cache(event: Envelope) -> None: ...        # acked first; lost on failure

Handlers live in each app's `handlers.py` (imported by `outbox_consume`). They run inside the
transaction that records the inbox row, so their database writes commit with it or not at all.
A consumer's queue is bound to whole aggregates (`order.#` for any `order.*` handler): events
it has no handler for still move its per-aggregate cursor, so sequences have no holes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .envelope import Envelope

AT_LEAST_ONCE = "at-least-once"
AT_MOST_ONCE = "at-most-once"
MODES = (AT_LEAST_ONCE, AT_MOST_ONCE)

Handler = Callable[[Envelope], None]


@dataclass(frozen=True)
class Subscription:
    consumer: str
    event_type: str
    handler: Handler
    mode: str = AT_LEAST_ONCE

    def matches(self, event_type: str) -> bool:
        return _topic_regex(self.event_type).fullmatch(event_type) is not None


def _topic_regex(pattern: str) -> re.Pattern[str]:
    # AMQP topic semantics: `*` is one word, `#` is zero or more words.
    parts = [
        r"[^.]+" if word == "*" else r".*" if word == "#" else re.escape(word)
        for word in pattern.split(".")
    ]
    return re.compile(r"\.".join(parts).replace(r"\..*", r"(\..*)?"))


class Registry:
    """The subscriptions of every consumer in this process."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def handler(
        self, event_type: str, *, consumer: str, mode: str = AT_LEAST_ONCE
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function for `event_type` (a topic pattern) of `consumer`."""
        if mode not in MODES:
            raise ValueError(f"Unknown delivery mode {mode!r}; choose one of {MODES}.")

        def register(fn: Handler) -> Handler:
            self.subscribe(Subscription(consumer, event_type, fn, mode))
            return fn

        return register

    def subscribe(self, subscription: Subscription) -> None:
        if subscription not in self._subscriptions:
            self._subscriptions.append(subscription)

    def unsubscribe(self, *, consumer: str) -> None:
        """Forget every subscription of `consumer` (tests register and drop their own)."""
        self._subscriptions = [s for s in self._subscriptions if s.consumer != consumer]

    def subscriptions(self, consumer: str) -> list[Subscription]:
        return [s for s in self._subscriptions if s.consumer == consumer]

    def consumers(self) -> list[str]:
        return sorted({s.consumer for s in self._subscriptions})

    def matching(self, consumer: str, event_type: str) -> list[Subscription]:
        return [s for s in self.subscriptions(consumer) if s.matches(event_type)]

    def binding_keys(self, consumer: str) -> list[str]:
        """Return the queue's binding keys: every aggregate the consumer has a handler for."""
        return sorted({f"{s.event_type.split('.')[0]}.#" for s in self.subscriptions(consumer)})


registry = Registry()
handler = registry.handler
