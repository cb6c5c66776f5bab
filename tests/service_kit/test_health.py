import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_healthz_answers_ok_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "monolith"}


@pytest.mark.django_db
@pytest.mark.integration
def test_readyz_is_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ready"


@pytest.mark.django_db
def test_readyz_is_503_naming_the_broker_when_it_is_down(client):
    with override_settings(BROKER_URL="amqp://guest:guest@127.0.0.1:1//"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert any("broker unreachable" in reason for reason in body["reasons"])


@pytest.mark.django_db
def test_unknown_url_is_a_json_404(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
