"""Schema validation (outbox/schemas.py): jsonschema decides, a compiled twin only speeds it up."""

from __future__ import annotations

import json
import uuid

import fastjsonschema
import pytest

from outbox.errors import PayloadInvalid
from outbox.schemas import SCHEMA_DIR, _compiled, envelope_validate, payload_validate

from .conftest import order_payload


def test_every_shipped_schema_has_a_compiled_twin():
    for path in SCHEMA_DIR.glob("*.json"):
        assert _compiled(str(path))[1] is not None, path.name


def test_a_schema_with_a_keyword_draft_7_reads_differently_is_left_to_jsonschema(tmp_path):
    path = tmp_path / "thing.done.v1.json"
    path.write_text(json.dumps({"type": "object", "prefixItems": [{"type": "string"}]}))
    assert _compiled(str(path))[1] is None


def test_a_format_only_jsonschema_checks_here_is_left_to_jsonschema(tmp_path):
    path = tmp_path / "thing.done.v1.json"
    path.write_text(json.dumps({"type": "string", "format": "email"}))
    assert _compiled(str(path))[1] is None


@pytest.mark.parametrize(
    "bad",
    [
        {"order_id": "not-a-uuid"},
        {"order_id": str(uuid.uuid4()).replace("-", "")},  # a uuid without its hyphens
        {"created_at": "2026-01-01T10:00:00"},  # no offset
        {"total": "20.5"},
        {"unexpected": 1},
    ],
)
def test_both_validators_refuse_what_the_schema_refuses_and_jsonschema_names_the_field(bad):
    payload = order_payload(**bad)
    path = str(SCHEMA_DIR / "order.placed.v1.json")
    validator, fast = _compiled(path)
    assert not validator.is_valid(payload)
    with pytest.raises(fastjsonschema.JsonSchemaException):
        fast(payload)
    with pytest.raises(PayloadInvalid) as caught:
        payload_validate(event_type="order.placed", version=1, payload=payload)
    assert caught.value.errors


def test_a_valid_envelope_passes_the_fast_path():
    envelope_validate(
        {
            "id": str(uuid.uuid4()), "type": "order.placed", "version": 1,
            "aggregate_type": "order", "aggregate_id": "A", "sequence": 1,
            "occurred_at": "2026-01-01T10:00:00+00:00", "origin": "monolith",
            "correlation_id": "c", "causation_id": "", "payload": order_payload(),
        }
    )  # fmt: skip
