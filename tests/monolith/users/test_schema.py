"""GET /api/schema/: the OpenAPI document describes the users endpoints."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_schema_lists_the_users_paths_with_their_methods(api_client):
    response = api_client.get("/api/schema/")

    assert response.status_code == 200
    paths = yaml.safe_load(response.content)["paths"]
    assert set(paths["/api/users/"]) >= {"get", "post"}
    assert set(paths["/api/users/me/"]) >= {"get", "patch"}
    assert "post" in paths["/api/auth/token/"]
    assert "post" in paths["/api/auth/logout/"]
    assert "password" not in str(paths["/api/users/me/"]["get"]["responses"])


def test_schema_generation_of_the_users_views_raises_no_warning():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    from monolith.users import urls

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=urls.urlpatterns).get_schema(request=None, public=True)

    assert set(schema["paths"]) == {"/users/", "/users/me/", "/auth/token/", "/auth/logout/"}
    assert not GENERATOR_STATS
