"""One route table across worker processes: a shared state file, versioned, watched by each worker.

``strangler proxy --workers N`` gives its workers one state file (``STRANGLER_PROXY_STATE``).
A worker that changes its table (admin API, ``routes set``, reload) writes the new table, its
version and the change log to the file (under an exclusive lock, written aside then renamed,
so a reader never sees half a file); every worker checks the file's identity (inode, size,
mtime) every 50 ms and adopts a table whose version is newer than its own. Admin writes first
adopt any newer table, so a change is made on top of the latest one. It needs no Redis, and a
worker started late (or restarted) adopts the latest table on start.

Two writes that land on two workers within the same poll interval: the later one wins.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .routes import RouteTableError, table_from_dict

if TYPE_CHECKING:
    from .config import ProxyConfig
    from .gateway import Gateway

POLL_SECONDS = 0.05


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

    def sync(self, gateway: Gateway) -> bool:
        """Adopt a newer table from the file, if there is one; return whether one was adopted."""
        data = self.read_if_changed()
        if data is None:
            return False
        table_data = data.get("table") or {}
        version = int(table_data.get("version") or 0)
        if version <= gateway.table.version:
            return False
        try:
            table = table_from_dict(table_data, monolith_url=None, version=version)
        except RouteTableError:
            return False  # validated by the worker that wrote it; never install a broken one
        gateway.table_adopt(table, data.get("changes") or [])
        return True

    async def wait_change(self, gateway: Gateway) -> None:
        """Poll the file until a newer table is adopted."""
        while not self.sync(gateway):
            await asyncio.sleep(POLL_SECONDS)


def shared_table_from_config(config: ProxyConfig) -> SharedTable | None:
    """Return the shared table of this worker's proxy, or None for a single process."""
    return SharedTable(config.shared_state) if config.shared_state else None
