"""POST /api/orders/: placing an order, and every way of getting it wrong (400/401/413/415).

Lines name a sku and a quantity; prices come from the catalogue, stocked here per test.
"""

from __future__ import annotations

import json

import pytest

from monolith.orders.models import Order
from tests.catalogue import stock

pytestmark = pytest.mark.django_db

URL = "/api/orders/"
GOOD_LINE = {"sku": "BOOK-1", "quantity": 1}


@pytest.fixture(autouse=True)
def catalogue():
    """The products these tests order: a book at 9.99 and a pen at 0.10."""
    stock("BOOK-1", "9.99")
    stock("pen_2.blue", "0.10")


def post_raw(client, body: str):
    return client.post(URL, data=body, content_type="application/json")


def with_line(**changes) -> dict:
    """Return an order body whose only line is GOOD_LINE with `changes` (None removes a key)."""
    line = {**GOOD_LINE, **changes}
    return {"items": [{k: v for k, v in line.items() if v is not None}]}


def test_order_is_placed_with_the_total_computed_by_the_server(auth_client, user):
    response = auth_client.post(
        URL,
        {"items": [{"sku": "BOOK-1", "quantity": 3}, {"sku": "pen_2.blue", "quantity": 1}]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["total"] == "30.07"
    assert body["currency"] == "EUR"
    assert body["items"] == [
        {"sku": "BOOK-1", "quantity": 3, "unit_price": "9.99", "line_total": "29.97"},
        {"sku": "pen_2.blue", "quantity": 1, "unit_price": "0.10", "line_total": "0.10"},
    ]
    assert set(body) == {"id", "status", "total", "currency", "items", "created_at", "updated_at"}
    order = Order.objects.get(pk=body["id"])
    assert order.user == user
    assert str(order.total) == "30.07"


def test_order_of_a_free_product_and_the_dearest_possible_one_is_placed(auth_client):
    stock("FREE", "0")
    stock("YACHT", "99999999.99")
    body = {"items": [{"sku": "FREE", "quantity": 1}, {"sku": "YACHT", "quantity": 1}]}
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["total"] == "99999999.99"
    assert response.json()["items"][0]["unit_price"] == "0.00"


@pytest.mark.parametrize("unit_price", ["0.00", 0, "9.99", "-1", None, "abc"], ids=repr)
def test_client_setting_its_own_price_is_refused_naming_unit_price(auth_client, unit_price):
    response = auth_client.post(
        URL, {"items": [{**GOOD_LINE, "unit_price": unit_price}]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "items": {"0": {"unit_price": ["'unit_price' is set by the server; do not send it."]}}
    }
    assert Order.objects.count() == 0


def test_unknown_sku_is_refused_naming_it_and_its_line(auth_client):
    body = {"items": [GOOD_LINE, {"sku": "NO-SUCH-THING", "quantity": 1}]}
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert response.json()["fields"] == {"items": {"1": {"sku": ["Unknown sku 'NO-SUCH-THING'."]}}}
    assert "NO-SUCH-THING" in response.json()["detail"]
    assert Order.objects.count() == 0


def test_line_price_is_the_catalogue_price_at_order_time(auth_client):
    first = auth_client.post(URL, {"items": [GOOD_LINE]}, format="json").json()
    stock("BOOK-1", "11.00")
    second = auth_client.post(URL, {"items": [GOOD_LINE]}, format="json").json()
    assert [first["total"], second["total"]] == ["9.99", "11.00"]
    reread = auth_client.get(f"{URL}{first['id']}/").json()
    assert reread["items"][0]["unit_price"] == "9.99"


@pytest.mark.parametrize("field", ["total", "status", "id", "currency", "created_at"])
def test_order_with_a_server_owned_field_is_refused_naming_it(auth_client, field):
    body = {**with_line(), field: "0.01"}
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert list(response.json()["fields"]) == [field]
    assert Order.objects.count() == 0


def test_client_total_is_refused_alongside_other_errors(auth_client):
    response = auth_client.post(URL, {"total": "1.00", "items": []}, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"total", "items"}


def test_line_total_sent_by_the_client_is_refused_naming_the_line(auth_client):
    response = auth_client.post(URL, with_line(line_total="0.01"), format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "items": {"0": {"line_total": ["'line_total' is set by the server; do not send it."]}}
    }


@pytest.mark.parametrize(
    "body",
    [{}, {"items": None}, {"items": []}, {"items": "BOOK-1"}, {"items": {"sku": "BOOK-1"}}],
    ids=["missing", "null", "empty", "string", "object"],
)
def test_order_without_a_list_of_items_is_refused_naming_items(auth_client, body):
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["items"]


def test_order_with_more_than_100_lines_is_refused(auth_client):
    response = auth_client.post(URL, {"items": [GOOD_LINE] * 101}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["items"] == {
        "non_field_errors": ["Ensure this field has no more than 100 elements."]
    }


def test_order_with_exactly_100_lines_is_placed(auth_client):
    response = auth_client.post(URL, {"items": [GOOD_LINE] * 100}, format="json")
    assert response.status_code == 201
    assert response.json()["total"] == "999.00"


@pytest.mark.parametrize("field", ["sku", "quantity"])
def test_line_missing_a_field_is_refused_naming_it(auth_client, field):
    response = auth_client.post(URL, with_line(**{field: None}), format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"items": {"0": {field: ["This field is required."]}}}


@pytest.mark.parametrize(
    "quantity",
    ["3", 2.5, 3.0, True, False, -1, 0, 10_001, None, [1], {"n": 1}],
    ids=repr,
)
def test_line_with_a_bad_quantity_is_refused(auth_client, quantity):
    response = auth_client.post(
        URL, {"items": [{**GOOD_LINE, "quantity": quantity}]}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]["items"]["0"]) == ["quantity"]
    assert Order.objects.count() == 0


def test_negative_quantity_is_refused_with_its_reason(auth_client):
    response = auth_client.post(URL, with_line(quantity=-5), format="json")
    assert response.json()["fields"]["items"]["0"]["quantity"] == [
        "Ensure this value is greater than or equal to 1."
    ]


@pytest.mark.parametrize("quantity", [1, 10_000])
def test_line_with_a_quantity_at_the_bounds_is_accepted(auth_client, quantity):
    response = auth_client.post(URL, with_line(quantity=quantity), format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "sku", ["", "a" * 65, "has space", "semi;colon", "é", 123, None, ["A"]], ids=repr
)
def test_line_with_a_bad_sku_is_refused(auth_client, sku):
    response = auth_client.post(URL, {"items": [{**GOOD_LINE, "sku": sku}]}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]["items"]["0"]) == ["sku"]


def test_sku_of_64_allowed_characters_is_accepted(auth_client):
    sku = ("Az09._-" * 10)[:64]
    stock(sku, "1.00")
    response = auth_client.post(URL, with_line(sku=sku), format="json")
    assert response.status_code == 201
    assert response.json()["items"][0]["sku"] == sku


def test_errors_name_the_line_they_belong_to(auth_client):
    body = {"items": [GOOD_LINE, {**GOOD_LINE, "quantity": 0}, GOOD_LINE, {"sku": "B"}]}
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 400
    # Keyed by the index of each bad line; good lines are not listed.
    lines = response.json()["fields"]["items"]
    assert set(lines) == {"1", "3"}
    assert list(lines["1"]) == ["quantity"]
    assert set(lines["3"]) == {"quantity"}


def test_line_that_is_not_an_object_is_refused_naming_the_line(auth_client):
    response = auth_client.post(URL, {"items": [GOOD_LINE, 7]}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]["items"]) == ["1"]
    assert "non_field_errors" in response.json()["fields"]["items"]["1"]


def test_order_whose_total_would_overflow_is_refused_naming_items(auth_client):
    stock("GOLD", "99999999.99")
    line = {"sku": "GOLD", "quantity": 10_000}
    response = auth_client.post(URL, {"items": [line]}, format="json")
    assert response.status_code == 400
    assert "items" in response.json()["fields"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "raw", ["{not json", '{"items": [{"sku": "A", "quantity": NaN}]}', "[]", "7"]
)
def test_body_that_is_not_a_json_object_is_refused(auth_client, raw):
    response = post_raw(auth_client, raw)
    assert response.status_code == 400
    assert response.json()["error"] in {"malformed_request", "validation_error"}


def test_form_encoded_body_is_refused_as_unsupported(auth_client):
    response = auth_client.post(URL, {"items": "x"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_body_larger_than_the_upload_limit_is_refused_with_413(auth_client, settings):
    # The real default limit (1 MiB): a body just over it, built from valid lines.
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({"items": [GOOD_LINE], "padding": "x" * limit})
    assert len(body) > limit
    response = post_raw(auth_client, body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert Order.objects.count() == 0


def test_body_at_a_lowered_upload_limit_is_refused_with_413(auth_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 150  # five lines take 165 bytes
    response = auth_client.post(URL, {"items": [GOOD_LINE] * 5}, format="json")
    assert response.status_code == 413
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = auth_client.post(URL, {"items": [GOOD_LINE] * 5}, format="json")
    assert response.status_code == 201


def test_unauthenticated_order_is_refused_with_401(api_client):
    response = api_client.post(URL, with_line(), format="json")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert Order.objects.count() == 0


def test_bad_token_is_refused_with_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    response = api_client.post(URL, with_line(), format="json")
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_placed_order_schedules_its_confirmation_email(
    auth_client, django_capture_on_commit_callbacks, confirmation_apply_async
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = auth_client.post(URL, with_line(), format="json")
    assert response.status_code == 201
    assert len(callbacks) == 1
    confirmation_apply_async.assert_called_once_with(
        kwargs={"order_id": response.json()["id"]}, priority=7
    )


def test_refused_order_schedules_no_email(
    auth_client, django_capture_on_commit_callbacks, confirmation_apply_async
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = auth_client.post(URL, with_line(quantity=0), format="json")
    assert response.status_code == 400
    assert callbacks == []
    confirmation_apply_async.assert_not_called()


def test_body_nested_too_deep_is_400_not_500(auth_client):
    response = post_raw(auth_client, '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_request"


@pytest.mark.parametrize("sku", ["A\x00B", "\x00", "A\nB"], ids=repr)
def test_sku_with_control_characters_is_refused(auth_client, sku):
    response = auth_client.post(URL, with_line(sku=sku), format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]["items"]["0"]) == ["sku"]


def test_unknown_top_level_fields_are_ignored(auth_client):
    response = auth_client.post(URL, {**with_line(), "coupon": "FREE"}, format="json")
    assert response.status_code == 201
    assert "coupon" not in response.json()
