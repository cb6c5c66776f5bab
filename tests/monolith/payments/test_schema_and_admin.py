"""The payments API in the OpenAPI schema, and the read-only admin pages."""

from __future__ import annotations

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from monolith.payments.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_schema_documents_the_payments_api_without_warnings(capsys):
    GENERATOR_STATS.reset()

    schema = SchemaGenerator().get_schema(request=None, public=True)

    validate_schema(schema)
    ours = [line for line in capsys.readouterr().err.splitlines() if "payments" in line.lower()]
    assert ours == []
    paths = schema["paths"]
    assert {
        "/api/payments/",
        "/api/payments/{payment_id}/",
        "/api/payments/{payment_id}/refund/",
    } <= set(paths)
    pay = paths["/api/payments/"]["post"]
    header = next(p for p in pay["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header"
    assert header["required"] is True
    assert {"201", "400", "402", "404", "409", "422", "504"} <= set(pay["responses"])
    body = schema["components"]["schemas"]["PaymentCreateRequest"]
    assert set(body["properties"]) == {"order_id", "card_number"}


def test_schema_endpoint_serves_the_payments_paths(api_client):
    response = api_client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert "/api/payments/" in response.json()["paths"]


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_admin_lists_and_shows_payments_and_idempotency_records(
    admin_client, auth_client, pay, order
):
    payment_id = pay(auth_client, order.id, key="admin-key").json()["id"]
    record = IdempotencyRecord.objects.get()

    pages = [
        "/admin/payments/payment/",
        f"/admin/payments/payment/{payment_id}/change/",
        "/admin/payments/payment/?q=4242",
        "/admin/payments/idempotencyrecord/",
        f"/admin/payments/idempotencyrecord/{record.pk}/change/",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
    assert b"admin-key" in admin_client.get("/admin/payments/idempotencyrecord/").content


def test_admin_cannot_add_or_delete_payments(admin_client, auth_client, pay, order):
    payment_id = pay(auth_client, order.id).json()["id"]

    add = admin_client.get("/admin/payments/payment/add/")
    delete = admin_client.post(f"/admin/payments/payment/{payment_id}/delete/", {"post": "yes"})

    assert add.status_code == 403
    assert delete.status_code == 403
