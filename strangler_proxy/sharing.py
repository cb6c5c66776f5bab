"""One route table across worker processes: a shared state file, versioned, watched by each worker.

``strangler proxy --workers N`` gives its workers one state file (``STRANGLER_PROXY_STATE``).
A worker that changes its table (admin API, ``routes set``, reload) writes the new table, its
version and the change log to the file (under an exclusive lock, written aside then renamed,
so a reader never sees half a file); every worker checks the file's identity (inode, size,
mtime) every 50 ms and adopts a table whose version is newer than its own. Admin writes first
adopt any newer table, so a change is made on top of the latest one. It needs no Redis, and a
worker started late (or restarted) adopts the latest table on start.

Two writes that land on two workers within the same poll interval: the later one wins.

Metrics are shared beside the table too, one file per worker in ``<state>.metrics/``: each
worker writes its figures there every second (and on close), and a scrape of
``/_strangler/metrics`` through any worker answers with its own live figures plus every other
worker's latest file. The answering worker writes its own file first, so a total never drops
from one scrape to the next, whichever worker the kernel hands the scrape to.

Token revocations (a logout or a password change through one worker) are shared beside the
table, in ``<state>.revoked``: a small file every worker maps into memory, holding a generation
counter and a ring of the latest revocation messages (a token's hash, or ``user:<id>``). The
worker that saw the logout writes the message, then bumps the counter, before the client has
its answer; every worker compares the counter on each
auth-cache hit (a memory read, no system call) and drops what is new. So no worker trusts a
token after its logout's answer has left, and nothing polls.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
import os
import time
from pathlib import Path
from typing import Any

from .config import ProxyConfig
from .metrics import Metrics

log = logging.getLogger("strangler_proxy")

POLL_SECONDS = 0.05
METRICS_SECONDS = 1.0  # how often each worker publishes its metrics for the others
_RING = 4096  # revocations kept; a worker further behind than that forgets every token
_SLOT = 40  # one revocation: kind byte, then a token's 32-byte hash or a user id's digits
_REVOKED_SIZE = 8 + _RING * _SLOT
_TOKEN, _USER = 1, 2
_RANK = {"closed": 0, "half_open": 1, "open": 2}  # breaker states, the worst last


def _slot_encode(message: str) -> bytes:
    """Return the ring slot of a revocation message (``<64 hex>`` or ``user:<id>``)."""
    if message.startswith("user:"):
        digits = message[5:].encode("ascii")
        return bytes((_USER, len(digits))) + digits.ljust(_SLOT - 2, b"\0")
    return bytes((_TOKEN,)) + bytes.fromhex(message).ljust(_SLOT - 1, b"\0")


def _slot_decode(slot: bytes) -> str | None:
    if slot[0] == _TOKEN:
        return slot[1:33].hex()
    if slot[0] == _USER:
        return "user:" + slot[2 : 2 + slot[1]].decode("ascii", "replace")
    return None


class SharedTable:
    """The route table file shared by the workers of one proxy."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._seen: tuple[int, int, int] | None = None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def publish(self, *, table_data: dict[str, Any], changes: list[dict[str, Any]]) -> None:
        """Write the table in force and the change log for every worker to adopt."""
        payload = json.dumps({"table": table_data, "changes": changes[-500:]}, default=str)
        lock = self.path.with_suffix(".lock")
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            aside = self.path.with_suffix(f".{os.getpid()}.tmp")
            aside.write_text(payload, encoding="utf-8")
            os.replace(aside, self.path)
        self._seen = self._stamp()

    def read_if_changed(self) -> dict[str, Any] | None:
        """Return the file's content when it changed since the last look, else None."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        self._seen = stamp
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._seen = None  # caught mid-replace on an odd filesystem: look again next time
            return None


class SharedMetrics:
    """Each worker's metrics in a file of its own; a scrape sums its own and the others'."""

    def __init__(self, path: str):
        self.directory = Path(path + ".metrics")
        # One file per worker (the pid, and a token for gateways sharing a process in tests).
        self.mine = self.directory / f"{os.getpid()}-{os.urandom(4).hex()}.json"

    def publish(self, snapshot: dict[str, Any]) -> None:
        """Write this worker's figures (aside, then renamed: a reader never sees half a file)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        aside = self.mine.with_suffix(".tmp")
        aside.write_text(json.dumps(snapshot), encoding="utf-8")
        os.replace(aside, self.mine)

    def view(self, own: Metrics, breakers: dict[str, str]) -> tuple[Metrics, dict[str, str]]:
        """Return every worker's figures summed, and each instance's worst breaker state.

        This worker publishes its own figures first: a worker's file then never holds less than
        any scrape already reported for it, so totals never drop from one scrape to the next,
        whichever worker answers. A file that is malformed is skipped whole; breaker states
        from a file not refreshed for 3 s (a worker that is gone) are ignored.
        """
        self.publish_safely(own.snapshot() | {"breakers": breakers})
        breakers = dict(breakers)
        others = []
        for data, age in self.others():
            try:
                others.append(Metrics.from_snapshot(data))
            except ValueError as exc:
                log.warning("skipping another worker's metrics: %s", exc)
                continue
            theirs = data.get("breakers")
            if age > 3 * METRICS_SECONDS or not isinstance(theirs, dict):
                continue
            for url, state in theirs.items():
                if (
                    isinstance(state, str)
                    and state in _RANK
                    and (url not in breakers or _RANK[state] > _RANK.get(breakers[url], 0))
                ):
                    breakers[url] = state
        return Metrics.merged(own, others), breakers

    def publish_safely(self, snapshot: dict[str, Any]) -> None:
        """Publish, logging a failure: a full disk must not stop a worker serving or answering."""
        try:
            self.publish(snapshot)
        except Exception:
            log.exception("publishing this worker's metrics failed")

    def others(self) -> list[tuple[dict[str, Any], float]]:
        """Return the latest figures every other worker published, each with its age in seconds
        (unreadable files skipped)."""
        found = []
        now = time.time()
        for path in sorted(self.directory.glob("*.json")):
            if path == self.mine:
                continue
            try:
                age = now - path.stat().st_mtime
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                found.append((data, age))
        return found


def shared_metrics_from_config(config: ProxyConfig) -> SharedMetrics | None:
    """Return the metrics shared by this worker's proxy, or None for a single process."""
    return SharedMetrics(config.shared_state) if config.shared_state else None


def shared_table_from_config(config: ProxyConfig) -> SharedTable | None:
    """Return the shared table of this worker's proxy, or None for a single process."""
    return SharedTable(config.shared_state) if config.shared_state else None


class SharedRevocations:
    """Revocations shared by the workers of one proxy through a memory-mapped file."""

    def __init__(self, path: str):
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < _REVOKED_SIZE:
                os.ftruncate(fd, _REVOKED_SIZE)  # zeros: generation 0, an empty ring
            self._map = mmap.mmap(fd, _REVOKED_SIZE)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.seen = self.generation()  # a worker starting now has nothing cached to drop

    def generation(self) -> int:
        return int.from_bytes(self._map[:8], "little")

    def publish(self, message: str) -> None:
        """Record a revocation (a token's hex SHA-256, or ``user:<id>``) for every worker."""
        data = _slot_encode(message)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            generation = self.generation()
            slot = 8 + (generation % _RING) * _SLOT
            self._map[slot : slot + _SLOT] = data
            # The message first, then the counter: a reader that sees the new count sees it.
            self._map[:8] = (generation + 1).to_bytes(8, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def apply(self, auth) -> None:
        """Drop from `auth`'s cache every token revoked since the last look."""
        generation = int.from_bytes(self._map[:8], "little")
        if generation == self.seen:
            return
        if generation - self.seen > _RING:
            auth.clear()  # too far behind to know which: forget them all
        else:
            for number in range(self.seen, generation):
                slot = 8 + (number % _RING) * _SLOT
                message = _slot_decode(self._map[slot : slot + _SLOT])
                if message is not None:
                    auth.revoke(message)
        self.seen = generation

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def shared_revocations_from_config(config: ProxyConfig) -> SharedRevocations | None:
    """Return the revocation ring this worker shares with the others, or None alone."""
    return SharedRevocations(config.shared_state + ".revoked") if config.shared_state else None
