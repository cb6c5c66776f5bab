"""Every model change of the orders service has its migration."""

from __future__ import annotations

import pytest

from tests.django_checks import assert_models_match_migrations


@pytest.mark.django_db
def test_models_and_migrations_agree():
    assert_models_match_migrations()
