"""Hostile input anywhere in the users API is a 4xx JSON error, never a 500."""

from __future__ import annotations

import json

import pytest

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_nul_character_in_search_is_refused_not_a_500(staff_client):
    response = staff_client.get("/api/users/", {"search": "a\x00b"})

    assert response.status_code == 400
    assert response.json()["fields"] == {"search": ["Null characters are not allowed."]}


@pytest.mark.parametrize("field", ["email", "password", "full_name"])
def test_a_nul_character_in_a_registration_field_is_a_400(api_client, field):
    body = {"email": "a@example.com", "password": PASSWORD, "full_name": "A"}
    body[field] += "\x00"

    response = api_client.post("/api/users/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_a_nul_character_in_login_is_a_400(api_client):
    response = api_client.post(
        "/api/auth/token/", {"email": "a@example.com", "password": "x\x00"}, format="json"
    )

    assert response.status_code == 400
    assert "password" in response.json()["fields"]


def test_a_huge_body_is_refused_with_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"email": "a@example.com", "password": PASSWORD, "full_name": "x" * 20_000})

    response = api_client.post("/api/users/", data=body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_deeply_nested_json_is_a_4xx(api_client):
    body = "[" * 100_000 + "]" * 100_000

    response = api_client.post("/api/users/", data=body, content_type="application/json")

    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    "url", ["/api/users/", "/api/users/me/", "/api/auth/token/", "/api/auth/logout/"]
)
def test_options_on_every_endpoint_answers_without_a_500(auth_client, url):
    response = auth_client.options(url)

    assert response.status_code == 200
    assert "POST" in response["Allow"] or "PATCH" in response["Allow"]


def test_options_on_registration_needs_no_token(api_client):
    response = api_client.options("/api/users/")

    assert response.status_code == 200
    assert "email" in response.json()["actions"]["POST"]
