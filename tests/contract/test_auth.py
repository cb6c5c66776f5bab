"""Authentication across the API: every user endpoint refuses a missing or bad token alike."""

from __future__ import annotations

import uuid

import pytest

from .helpers import assert_error

pytestmark = pytest.mark.contract

SOME_ID = str(uuid.UUID(int=1))
USER_ENDPOINTS = [
    ("GET", "/api/users/me/"),
    ("PATCH", "/api/users/me/"),
    ("GET", "/api/users/"),
    ("POST", "/api/auth/logout/"),
    ("GET", "/api/orders/"),
    ("POST", "/api/orders/"),
    ("GET", f"/api/orders/{SOME_ID}/"),
    ("POST", f"/api/orders/{SOME_ID}/cancel/"),
    ("POST", f"/api/orders/{SOME_ID}/ship/"),
    ("GET", "/api/payments/"),
    ("POST", "/api/payments/"),
    ("GET", f"/api/payments/{SOME_ID}/"),
    ("POST", f"/api/payments/{SOME_ID}/refund/"),
]


@pytest.mark.parametrize("method,path", USER_ENDPOINTS, ids=[" ".join(e) for e in USER_ENDPOINTS])
def test_no_token_is_a_401_with_a_bearer_challenge(api, method, path):
    response = api.request(method, path, json={})

    assert_error(response, 401, "not_authenticated")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.parametrize("method,path", USER_ENDPOINTS, ids=[" ".join(e) for e in USER_ENDPOINTS])
def test_a_bad_token_is_a_401_with_a_bearer_challenge(api, method, path):
    response = api.with_token("0" * 40).request(method, path, json={})

    assert_error(response, 401, "authentication_failed")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_a_token_of_another_scheme_is_not_accepted(api, customer):
    response = api.get("/api/users/me/", headers={"Authorization": f"Token {customer.token}"})

    assert response.status_code == 401
    assert response.json()["error"] in {"not_authenticated", "authentication_failed"}


def test_a_revoked_token_is_refused_everywhere(customer):
    customer.api.post("/api/auth/logout/")

    for method, path in USER_ENDPOINTS:
        response = customer.api.request(method, path, json={})
        assert_error(response, 401, "authentication_failed")
