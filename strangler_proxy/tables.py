"""The route table in force: the one module that swaps, adopts, syncs and reloads it.

* **Swap** (``swap``): a new validated table replaces the one in force by one reference, with a
  version one higher; each request keeps the table it started with. Every swap is recorded in
  the change log (who: the admin token's holder; ``claimed_actor``: what the client said, never
  trusted; client address; the versions; each changed route from what to what).
* **Adopt** (``adopt``): a table another worker published, with its version and change log.
* **Sync** (``sync``): adopt the newest table the workers share (sharing.SharedTable) before a
  change, so a change builds on the latest one; ``follow`` adopts them as they appear.
* **Reload** (``reload``): re-read the route file and swap it in; an invalid file changes
  nothing (RouteTableError names every problem).

Whoever needs to know of a new table (the upstream pools) registers ``on_install``; it runs
before the new table is in force.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import RouteTableError
from .routes import RouteTable, table_from_dict, table_from_file
from .sharing import SharedTable

log = logging.getLogger("strangler_proxy")
CHANGES_KEPT = 500


class TableStore:
    """The table in force, its change log, and how both change."""

    def __init__(
        self, table: RouteTable, *, routes_file: str | None = None,
        monolith_url: str | None = None, shared: SharedTable | None = None,
        on_install: Callable[[RouteTable], None] | None = None,
    ):  # fmt: skip
        self.routes_file, self.monolith_url, self.shared = routes_file, monolith_url, shared
        self.on_install = on_install
        self.changes: deque[dict[str, Any]] = deque(maxlen=CHANGES_KEPT)
        if on_install is not None:
            on_install(table)
        self.table = table

    def swap(
        self, *, new: RouteTable, actor: str, reason: str, claimed_actor: str | None = None,
        client: str | None = None,
    ) -> RouteTable:  # fmt: skip
        """Install `new` atomically and record who changed what; return the old table.

        With worker processes the new table and the change log are published for every worker.
        """
        old = self.table
        new = RouteTable(
            services=new.services, routes=new.routes, rate_limits=new.rate_limits,
            version=old.version + 1,
        )  # fmt: skip
        if self.on_install is not None:
            self.on_install(new)
        self.table = new  # one reference: requests in flight keep the table they started with
        before = {r.name: r.as_dict() for r in old.routes}
        after = {r.name: r.as_dict() for r in new.routes}
        changed = {
            name: {"from": before.get(name), "to": after.get(name)}
            for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)
        }
        self.changes.append(
            {
                "at": time.time(), "who": actor, "claimed_actor": claimed_actor,
                "client": client, "reason": reason, "from_version": old.version,
                "to_version": new.version, "routes": changed,
            }
        )  # fmt: skip
        log.info(
            "route table v%s -> v%s by %s (%s): %s",
            old.version, new.version, actor, reason, sorted(changed),
        )  # fmt: skip
        if self.shared is not None:
            self.shared.publish(table_data=new.as_dict(), changes=list(self.changes))
        return old

    def adopt(self, table: RouteTable, changes: list[dict[str, Any]]) -> None:
        """Install a table another worker published (its version and change log included)."""
        if self.on_install is not None:
            self.on_install(table)
        self.table = table
        self.changes = deque(changes, maxlen=CHANGES_KEPT)
        log.info("route table v%s adopted from another worker", table.version)

    def sync(self) -> bool:
        """Adopt the newest table the workers share, if newer; return whether one was adopted."""
        if self.shared is None:
            return False
        data = self.shared.read_if_changed()
        if data is None:
            return False
        table_data = data.get("table") or {}
        version = int(table_data.get("version") or 0)
        if version <= self.table.version:
            return False
        try:
            table = table_from_dict(table_data, monolith_url=None, version=version)
        except RouteTableError:
            return False  # validated by the worker that wrote it; never install a broken one
        self.adopt(table, data.get("changes") or [])
        return True

    async def follow(self, poll: float) -> None:
        """Adopt the tables other workers publish, as soon as they are seen (every `poll` s)."""
        while True:
            try:
                self.sync()
            except Exception:  # a broken shared store must not stop this worker serving
                log.exception("reading the shared route table failed")
                await asyncio.sleep(1.0)
            await asyncio.sleep(poll)

    def reload(
        self, *, actor: str, claimed_actor: str | None = None, client: str | None = None
    ) -> RouteTable:
        """Re-read the route file and swap it in; if invalid, raise and keep the old table."""
        if not self.routes_file:
            raise RouteTableError(
                ["table: the proxy was started without a route file (STRANGLER_ROUTES)"]
            )
        new = table_from_file(self.routes_file, monolith_url=self.monolith_url)
        self.swap(
            new=new, actor=actor, reason=f"reload {self.routes_file}",
            claimed_actor=claimed_actor, client=client,
        )  # fmt: skip
        return self.table
