"""Register the monolith's event handlers with the outbox runtime (found by autodiscovery).

`manage.py outbox_consume --service monolith` loads every app's `handlers` module; this one
brings in `consumers`, which applies the payments service's events to the monolith.
"""

from . import consumers  # noqa: F401  (registers the handlers on import)
