"""Find, validate and upcast versioned event schemas: `<type>.v<version>.json` files.

The files ship in `outbox/schemas/`; a service adds its own folders with `OUTBOX_SCHEMA_DIRS`.
Consumers upcast an old version to the newest one with functions registered here, so a handler
only ever sees the version it was written for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from .conf import setting
from .errors import PayloadInvalid, SchemaNotFound

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

_format_checker = FormatChecker()


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    # jsonschema checks date-time only with an optional extra; ISO 8601 with an offset is ours.
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_upcasters: dict[tuple[str, int], Upcaster] = {}


def schema_dirs() -> list[Path]:
    """Return the folders searched for schema files, the service's own first."""
    return [Path(p) for p in setting("OUTBOX_SCHEMA_DIRS")] + [SCHEMA_DIR]


def schema_path(event_type: str, version: int) -> Path:
    """Return the file of `event_type` version `version`, or raise SchemaNotFound."""
    name = f"{event_type}.v{version}.json"
    for folder in schema_dirs():
        if (folder / name).is_file():
            return folder / name
    raise SchemaNotFound(
        f"No schema {name!r} for event {event_type!r} v{version}; "
        f"looked in {[str(d) for d in schema_dirs()]}."
    )


@lru_cache(maxsize=256)
def _validator(path: str) -> Draft202012Validator:
    schema = json.loads(Path(path).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker)


def validator_for(event_type: str, version: int) -> Draft202012Validator:
    """Return the compiled validator of one event type and version."""
    return _validator(str(schema_path(event_type, version)))


def envelope_validator() -> Draft202012Validator:
    """Return the compiled validator of the envelope every event travels in."""
    return _validator(str(SCHEMA_DIR / "envelope.json"))


def _check(validator: Draft202012Validator, document: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        details = [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors
        ]
        raise PayloadInvalid(
            f"{what} does not match its schema: {'; '.join(details)}", errors=details
        )


def payload_validate(*, event_type: str, version: int, payload: Any) -> None:
    """Raise PayloadInvalid naming every bad field unless `payload` matches its schema."""
    _check(validator_for(event_type, version), payload, f"Payload of {event_type} v{version}")


def envelope_validate(document: Any) -> None:
    """Raise PayloadInvalid unless `document` is a well-formed envelope."""
    _check(envelope_validator(), document, "Envelope")


def latest_version(event_type: str) -> int:
    """Return the highest version of `event_type` that has a schema file (0 if none)."""
    versions = [
        int(p.name[len(event_type) + 2 : -5])
        for folder in schema_dirs()
        if folder.is_dir()
        for p in folder.glob(f"{event_type}.v*.json")
        if p.name[len(event_type) + 2 : -5].isdigit()
    ]
    return max(versions, default=0)


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning a payload of `from_version` into `from_version + 1`."""

    def register(fn: Upcaster) -> Upcaster:
        _upcasters[(event_type, from_version)] = fn
        return fn

    return register


def payload_upcast(*, event_type: str, version: int, payload: dict) -> tuple[int, dict]:
    """Return (version, payload) upcast step by step as far as registered upcasters go."""
    while (event_type, version) in _upcasters:
        payload = _upcasters[(event_type, version)](payload)
        version += 1
    return version, payload
