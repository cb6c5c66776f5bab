"""Settings for outbox processes started by tests: the monolith's plus the test's names."""

import json
import os

from monolith.settings import *  # noqa: F403

globals().update(json.loads(os.environ.get("OUTBOX_TEST_SETTINGS", "{}")))
