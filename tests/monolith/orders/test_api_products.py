"""GET /api/products/: the public catalogue, the only source of an order line's price."""

from __future__ import annotations

import pytest

from monolith.orders.models import Product
from tests.catalogue import stock

pytestmark = pytest.mark.django_db

URL = "/api/products/"


def test_a_new_database_holds_the_demo_catalogue_so_one_can_order_at_once(api_client):
    # Migrations ran on the test database: the demo catalogue is there, priced.
    body = api_client.get(URL).json()
    assert 6 <= body["count"] <= 10
    assert all(item["unit_price"] != "0.00" for item in body["results"])


def test_anyone_lists_the_catalogue_by_sku_with_prices_as_two_place_strings(api_client):
    Product.objects.all().delete()
    stock("ZEBRA-1", "3", name="Zebra")
    stock("APPLE-1", "0.5", name="Apple")

    response = api_client.get(URL)

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {"sku": "APPLE-1", "name": "Apple", "unit_price": "0.50"},
            {"sku": "ZEBRA-1", "name": "Zebra", "unit_price": "3.00"},
        ],
    }


def test_the_catalogue_pages_with_links(api_client):
    Product.objects.all().delete()
    for n in range(5):
        stock(f"P-{n}", n + 1)

    first = api_client.get(URL, {"page_size": 2}).json()
    last = api_client.get(URL, {"page_size": 2, "page": 3}).json()

    assert first["count"] == 5
    assert [p["sku"] for p in first["results"]] == ["P-0", "P-1"]
    assert "page=2" in first["next"]
    assert [p["sku"] for p in last["results"]] == ["P-4"] and last["next"] is None


def test_a_catalogue_page_past_the_end_is_404(api_client):
    response = api_client.get(URL, {"page": 99})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_logged_in_user_reads_the_same_catalogue(auth_client, api_client):
    assert auth_client.get(URL).json() == api_client.get(URL).json()


def test_the_catalogue_cannot_be_written_over_the_api(auth_client):
    response = auth_client.post(URL, {"sku": "X", "name": "x", "unit_price": "0.01"})
    assert response.status_code == 405
    assert not Product.objects.filter(sku="X").exists()
