"""Checks every Django project's test run makes the same way (each run has its own settings)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command


def assert_models_match_migrations() -> None:
    """Fail, with makemigrations' own account, if a model changed without a migration."""
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"a model changed without a migration:\n{out.getvalue()}")
