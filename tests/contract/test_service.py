"""What every half serves besides the API: health, readiness and the OpenAPI document."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.contract

# The API surface of the design's table: every half that serves a path documents it.
DOCUMENTED_PATHS = {
    "/api/users/",
    "/api/users/me/",
    "/api/auth/token/",
    "/api/auth/logout/",
    "/api/orders/",
    "/api/orders/{order_id}/",
    "/api/orders/{order_id}/cancel/",
    "/api/orders/{order_id}/ship/",
    "/api/payments/",
    "/api/payments/{payment_id}/",
    "/api/payments/{payment_id}/refund/",
}


def test_healthz_says_the_process_is_alive(api):
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_says_the_deployment_is_ready(api):
    response = api.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


def test_the_openapi_document_describes_every_endpoint_of_the_contract(api):
    response = api.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})

    assert response.status_code == 200, response.text[:300]
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    missing = DOCUMENTED_PATHS - set(schema["paths"])
    assert not missing, missing


def test_an_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/no-such-thing/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
