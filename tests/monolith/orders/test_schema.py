"""drf-spectacular describes the orders API without a warning, and the schema is valid OpenAPI."""

from __future__ import annotations

import pytest
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


@pytest.fixture
def orders_schema() -> dict:
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/", include("monolith.orders.urls"))])
    schema = generator.get_schema(request=None, public=True)
    # Warnings and errors are counted, not raised: read them before anyone resets them.
    assert not GENERATOR_STATS, "drf-spectacular warned about the orders views"
    return schema


def test_orders_schema_is_valid_openapi(orders_schema):
    validate_schema(orders_schema)


def test_orders_schema_lists_every_endpoint(orders_schema):
    paths = orders_schema["paths"]
    assert set(paths["/api/orders/"]) == {"get", "post"}
    assert set(paths["/api/orders/{order_id}/"]) == {"get"}
    assert set(paths["/api/orders/{order_id}/cancel/"]) == {"post"}
    assert set(paths["/api/orders/{order_id}/ship/"]) == {"post"}


def test_orders_schema_shows_pagination_status_filter_and_errors(orders_schema):
    listing = orders_schema["paths"]["/api/orders/"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["status"]["schema"]["enum"] == [
        "pending",
        "paid",
        "shipped",
        "cancelled",
        "refunded",
    ]
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("PaginatedOrderOutputList")
    cancel = orders_schema["paths"]["/api/orders/{order_id}/cancel/"]["post"]
    assert {"200", "401", "404", "409"} <= set(cancel["responses"])
    components = orders_schema["components"]["schemas"]
    assert components["OrderOutput"]["properties"]["total"]["type"] == "string"
    assert "total" not in components["OrderCreateInputRequest"]["properties"]


def test_full_project_schema_endpoint_answers(api_client, db):
    response = api_client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/orders/{order_id}/cancel/" in response.content


def test_schema_documents_the_public_paginated_catalogue(orders_schema):
    listing = orders_schema["paths"]["/api/products/"]["get"]
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("PaginatedProductList")
    components = orders_schema["components"]["schemas"]
    assert set(components["Product"]["properties"]) == {"sku", "name", "unit_price"}
    assert components["Product"]["properties"]["unit_price"]["type"] == "string"
    # Anyone may call it: an anonymous caller is one of the accepted security requirements.
    assert {} in listing["security"]


def test_schema_shows_an_order_line_naming_only_sku_and_quantity(orders_schema):
    line = orders_schema["components"]["schemas"]["OrderItemInputRequest"]
    assert set(line["properties"]) == {"sku", "quantity"}
    assert set(line["required"]) == {"sku", "quantity"}
