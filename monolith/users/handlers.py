"""Register the users app's event handlers with the outbox runtime (found by autodiscovery).

`manage.py outbox_consume --service monolith` loads every app's `handlers` module; this one
brings in `consumers`, which applies the users service's events to the monolith (step 2).
"""

from . import consumers  # noqa: F401  (registers the handlers on import)
