"""A channel that always fails, to prove failures are recorded and sent again."""

from __future__ import annotations


class Down:
    def send(self, *, recipient: str, subject: str, body: str) -> None:
        raise ConnectionRefusedError("SMTP is down")
