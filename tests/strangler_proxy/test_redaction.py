"""The deny-list: what recordings, diffs and replays never hold, extended but never shrunk."""

from __future__ import annotations

import json

import pytest

from strangler_proxy.redaction import Redactor
from strangler_proxy.routes import RouteTableError, table_from_dict


@pytest.mark.parametrize(
    "key",
    ["password", "current_password", "Password", "token", "refresh_token", "accessToken",
     "client_secret", "card_number", "cardNumber", "card-number", "cvc", "CVV"],
)  # fmt: skip
def test_body_keys_holding_a_secret_are_redacted_at_any_depth(key):
    body = json.dumps({"user": {"items": [{key: "hunter2", "sku": "A-1"}]}, "email": "a@b.c"})

    redacted = json.loads(Redactor().body(body))

    assert redacted == {"user": {"items": [{key: "<redacted>", "sku": "A-1"}]}, "email": "a@b.c"}


@pytest.mark.parametrize(
    ("name", "value", "kept"),
    [("Authorization", "Bearer abc", "Bearer <redacted>"), ("cookie", "s=1", "<redacted>"),
     ("Set-Cookie", "s=1; HttpOnly", "<redacted>"), ("X-Strangler-Identity", "e.y.J", "<redacted>"),
     ("Proxy-Authorization", "Basic eg==", "Basic <redacted>"), ("Accept", "*/*", "*/*")],
)  # fmt: skip
def test_secret_headers_are_redacted_and_others_kept(name, value, kept):
    assert Redactor().header(name, value) == kept


def test_configuration_and_routes_add_to_the_defaults():
    redactor = Redactor(headers=["X-Api-Key"], fields=["iban"]).extended(fields=("pin",))

    assert redactor.header("x-api-key", "k") == "<redacted>"
    assert redactor.header("Authorization", "Bearer t") == "Bearer <redacted>"
    body = json.loads(redactor.body('{"IBAN": "x", "pin": 1, "password": "p", "ok": 2}'))
    assert body == {"IBAN": "<redacted>", "pin": "<redacted>", "password": "<redacted>", "ok": 2}


def test_a_body_that_is_not_json_is_kept_as_it_is():
    assert Redactor().body("password=hunter2") == "password=hunter2"


def test_a_route_can_add_to_the_deny_list_and_nothing_else():
    table = table_from_dict(
        {"routes": [{"name": "r", "prefix": "/", "redact": {"headers": ["X-Key"],
                                                            "fields": ["iban"]}}]},
        monolith_url="http://127.0.0.1:9",
    )  # fmt: skip
    route = table.route("r")
    assert (route.redact_headers, route.redact_fields) == (("x-key",), ("iban",))
    assert route.as_dict()["redact"] == {"headers": ["x-key"], "fields": ["iban"]}
    with pytest.raises(RouteTableError, match="cannot remove any"):
        table_from_dict(
            {"routes": [{"name": "r", "prefix": "/", "redact": {"allow": ["authorization"]}}]},
            monolith_url="http://127.0.0.1:9",
        )
