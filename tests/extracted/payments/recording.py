"""A SimulatedProvider that counts its calls, so tests can prove a card was charged once."""

from __future__ import annotations

import threading

from service_kit.payment_provider import SimulatedProvider


class RecordingProvider(SimulatedProvider):
    """Record every charge and refund call, across instances and threads."""

    charges: list[dict] = []
    refunds: list[dict] = []
    _calls_lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        with cls._calls_lock:
            cls.charges.clear()
            cls.refunds.clear()

    def charge(self, **kwargs):
        with self._calls_lock:
            self.charges.append(kwargs)
        return super().charge(**kwargs)

    def refund(self, **kwargs):
        with self._calls_lock:
            self.refunds.append(kwargs)
        return super().refund(**kwargs)
