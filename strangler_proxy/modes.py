"""Route modes, and the one parser that every reader of a mode uses.

The route table, the admin API, the step files of the playbook and the ``routes`` command all
read a mode with ``mode_parse`` (or ``mode_problem``), so a mode one accepts the others accept.

* ``monolith``: the monolith answers; the lean path, nothing else happens.
* ``shadow``: the monolith answers; GET/HEAD/OPTIONS are mirrored to the service after the
  client has its answer, and the answers compared.
* ``canary:P``: the service answers P% of callers (sticky per user), the monolith the rest.
  0 < P < 100: ``canary:0`` would be ``monolith`` and ``canary:100`` ``extracted`` under another
  name, so both are refused (one spelling per behaviour: the playbook and its gates read a
  route's stage by its mode).
* ``extracted``: the service answers; safe methods fall back to the monolith when allowed.

P may have decimals (``canary:2.5``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ModeError

MONOLITH, SHADOW, CANARY, EXTRACTED = "monolith", "shadow", "canary", "extracted"
FIXED = (MONOLITH, SHADOW, EXTRACTED)
_CANARY = re.compile(r"^canary:([0-9]{1,3}(?:\.[0-9]+)?)$")
_KINDS = "monolith, shadow, canary:P, extracted"


@dataclass(frozen=True, slots=True)
class Mode:
    """A parsed mode: its kind, and the candidate's share of callers for a canary."""

    kind: str
    percent: float = 0.0

    @property
    def needs_service(self) -> bool:
        """Whether a route in this mode names a service other than the monolith."""
        return self.kind != MONOLITH


def mode_parse(value: Any) -> Mode:
    """Return the mode `value` names, or raise ModeError saying what was expected."""
    if value in FIXED:
        return Mode(kind=value)
    if isinstance(value, str) and value.startswith("canary:"):
        found = _CANARY.match(value)
        percent = float(found.group(1)) if found else -1.0
        if 0.0 < percent < 100.0:
            return Mode(kind=CANARY, percent=percent)
        raise ModeError(
            f"canary percentage in {value!r} must be between 0 and 100, both excluded "
            f"(use 'monolith' for 0, 'extracted' for 100)"
        )
    raise ModeError(f"mode {value!r} is not one of {_KINDS}")


def mode_problem(value: Any) -> str | None:
    """Return why `value` is not a mode, or None if it is one."""
    try:
        mode_parse(value)
    except ModeError as exc:
        return str(exc)
    return None
