"""GET /api/payments/, GET /api/payments/{id}/ and POST /api/payments/{id}/refund/."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.pagination import PageNumberPagination

from monolith.orders.models import Order
from monolith.payments.models import Payment
from monolith.payments.provider import DECLINE_CARD

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(auth_client, pay, order):
    """A succeeded payment of the user's order, as the API returned it."""
    return pay(auth_client, order.id).json()


def test_list_shows_only_ones_own_payments_paginated(
    auth_client, pay, make_order, user, make_user, client_for
):
    for _ in range(3):
        pay(auth_client, make_order(user).id)
    stranger = make_user()
    pay(client_for(stranger), make_order(stranger).id)

    response = auth_client.get("/api/payments/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert {p["id"] for p in body["results"]} == set(
        map(str, Payment.objects.filter(user=user).values_list("id", flat=True))
    )


def test_list_is_paginated_by_page_size(auth_client, pay, make_order, user, monkeypatch):
    # DRF reads PAGE_SIZE into the paginator class when it is imported.
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)
    for _ in range(3):
        pay(auth_client, make_order(user).id)

    first = auth_client.get("/api/payments/").json()
    second = auth_client.get(first["next"]).json()

    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert len(second["results"]) == 1
    assert second["next"] is None


def test_list_filters_by_status_and_order(auth_client, pay, make_order, user):
    declined_order = make_order(user)
    pay(auth_client, declined_order.id, card=DECLINE_CARD)
    pay(auth_client, make_order(user).id)

    failed = auth_client.get("/api/payments/", {"status": "failed"}).json()
    of_order = auth_client.get("/api/payments/", {"order_id": str(declined_order.id)}).json()

    assert [p["status"] for p in failed["results"]] == ["failed"]
    assert [p["order_id"] for p in of_order["results"]] == [str(declined_order.id)]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"status": "lost"}, "status"), ({"order_id": "nope"}, "order_id")],
)
def test_list_with_a_bad_filter_is_a_400_naming_it(auth_client, query, field):
    response = auth_client.get("/api/payments/", query)

    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_list_page_out_of_range_is_a_404(auth_client):
    response = auth_client.get("/api/payments/", {"page": 9})

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_list_needs_a_token(api_client):
    assert api_client.get("/api/payments/").status_code == 401


def test_owner_reads_a_payment(auth_client, paid):
    response = auth_client.get(f"/api/payments/{paid['id']}/")

    assert response.status_code == 200
    assert response.json() == paid


def test_someone_elses_payment_is_not_found(paid, make_user, client_for):
    stranger = client_for(make_user())

    read = stranger.get(f"/api/payments/{paid['id']}/")
    refund = stranger.post(f"/api/payments/{paid['id']}/refund/")

    assert read.status_code == refund.status_code == 404
    assert Payment.objects.get(pk=paid["id"]).status == "succeeded"


@pytest.mark.parametrize("payment_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_unknown_payment_is_a_json_404(auth_client, payment_id):
    read = auth_client.get(f"/api/payments/{payment_id}/")
    refund = auth_client.post(f"/api/payments/{payment_id}/refund/")

    for response in (read, refund):
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_refund_marks_the_payment_and_the_order_refunded(auth_client, paid, order, provider):
    response = auth_client.post(f"/api/payments/{paid['id']}/refund/")

    assert response.status_code == 200
    assert response.json()["status"] == "refunded"
    assert Payment.objects.get(pk=paid["id"]).status == "refunded"
    assert Order.objects.get(pk=order.pk).status == "refunded"
    assert [str(r["amount"]) for r in provider.refunds] == ["25.00"]


def test_refunding_twice_is_a_409_and_refunds_once(auth_client, paid, provider):
    auth_client.post(f"/api/payments/{paid['id']}/refund/")

    again = auth_client.post(f"/api/payments/{paid['id']}/refund/")

    assert again.status_code == 409
    assert (again.json()["from"], again.json()["to"]) == ("refunded", "refunded")
    assert len(provider.refunds) == 1


def test_refunding_a_failed_payment_is_a_409(auth_client, pay, order, provider):
    failed = pay(auth_client, order.id, card=DECLINE_CARD).json()["payment"]

    response = auth_client.post(f"/api/payments/{failed['id']}/refund/")

    assert response.status_code == 409
    assert response.json()["from"] == "failed"
    assert provider.refunds == []


def test_refunding_the_payment_of_a_shipped_order_is_a_409(auth_client, paid, order, provider):
    Order.objects.filter(pk=order.pk).update(status="shipped")

    response = auth_client.post(f"/api/payments/{paid['id']}/refund/")

    assert response.status_code == 409
    assert (response.json()["from"], response.json()["to"]) == ("shipped", "refunded")
    assert Payment.objects.get(pk=paid["id"]).status == "succeeded"
    assert provider.refunds == []


def test_refund_timeout_at_the_provider_is_a_504_and_changes_nothing(
    auth_client, paid, order, settings
):
    # A provider slower than the client's patience times out every call.
    settings.STRANGLER_PAYMENT_LATENCY_MS = 50
    settings.STRANGLER_PAYMENT_TIMEOUT_S = 0.01

    response = auth_client.post(f"/api/payments/{paid['id']}/refund/")

    assert response.status_code == 504
    assert response.json()["error"] == "provider_timeout"
    assert Payment.objects.get(pk=paid["id"]).status == "succeeded"
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_refund_the_provider_refuses_is_a_502_and_changes_nothing(auth_client, paid, order):
    Payment.objects.filter(pk=paid["id"]).update(provider_reference="sim_ch_unknown")

    response = auth_client.post(f"/api/payments/{paid['id']}/refund/")

    assert response.status_code == 502
    assert response.json()["error"] == "provider_error"
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_refund_accepts_no_body_and_ignores_none(auth_client, paid):
    response = auth_client.post(f"/api/payments/{paid['id']}/refund/", {}, format="json")

    assert response.status_code == 200
