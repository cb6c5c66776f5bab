"""Keep the service off the monolith's database: reads through the `monolith` alias, no writes."""

from __future__ import annotations

MONOLITH_ALIAS = "monolith"


class MonolithReadOnlyRouter:
    """Never migrate the monolith's database from here; its schema is the monolith's."""

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool | None:
        if db == MONOLITH_ALIAS or db.startswith(f"{MONOLITH_ALIAS}_"):
            return False
        return None
