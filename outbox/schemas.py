"""Find, validate and upcast versioned event schemas: `<type>.v<version>.json` files.

The files ship in `outbox/schemas/`; a service adds its own folders with `OUTBOX_SCHEMA_DIRS`.
Consumers upcast an old version to the newest one with functions registered here, so a handler
only ever sees the version it was written for.

Validation runs four times per event (the writer checks payload and envelope, the consumer
checks them again off the wire), so it is a good part of what an event costs. jsonschema is the
authority: it reports every bad field. A document is first tried against the same schema
compiled by fastjsonschema (Python code generated from the schema, about 20 times faster);
only a document it refuses goes through jsonschema, whose verdict and messages stand. The
compiled path is used only for schemas made of keywords that mean the same in draft 2020-12
and draft 7 (the one fastjsonschema speaks) and formats checked by the same functions here;
any other schema is validated by jsonschema alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker

from .conf import setting
from .errors import PayloadInvalid, SchemaNotFound

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
ENVELOPE_SCHEMA = str(SCHEMA_DIR / "envelope.json")

_format_checker = FormatChecker()


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    # jsonschema checks date-time only with an optional extra; ISO 8601 with an offset is ours.
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None


@_format_checker.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    # jsonschema's own rule (hyphens where RFC 4122 puts them), kept here for both validators.
    if not isinstance(value, str):
        return True
    uuid.UUID(value)
    return all(value[position] == "-" for position in (8, 13, 18, 23))


def _format(check: Callable[[object], bool]) -> Callable[[object], bool]:
    """Return `check` as fastjsonschema wants it: False instead of raising."""

    def checked(value: object) -> bool:
        try:
            return check(value)
        except ValueError:
            return False

    return checked


_FAST_FORMATS = {"date-time": _format(_is_datetime), "uuid": _format(_is_uuid)}
# Keywords whose meaning draft 7 and draft 2020-12 share (`items` only as one schema).
_PORTABLE = frozenset(
    {
        "$schema", "$id", "title", "description", "default", "examples", "type", "properties",
        "required", "additionalProperties", "pattern", "const", "enum", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
        "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "items",
        "format", "allOf", "anyOf", "oneOf", "not",
    }
)  # fmt: skip


def _portable(schema: Any) -> bool:
    """Say whether `schema` uses only keywords (and formats) both validators read alike."""
    if not isinstance(schema, dict):
        return isinstance(schema, bool)
    for key, value in schema.items():
        if key not in _PORTABLE:
            return False
        if key == "format" and value not in _FAST_FORMATS:
            return False
        if key == "properties" and not all(_portable(v) for v in value.values()):
            return False
        if key == "additionalProperties" and not _portable(value):
            return False
        if key == "items" and not (isinstance(value, dict) and _portable(value)):
            return False
        if key in ("allOf", "anyOf", "oneOf") and not all(_portable(v) for v in value):
            return False
        if key == "not" and not _portable(value):
            return False
    return True


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_upcasters: dict[tuple[str, int], Upcaster] = {}


def schema_dirs() -> list[Path]:
    """Return the folders searched for schema files, the service's own first."""
    return [Path(p) for p in setting("OUTBOX_SCHEMA_DIRS")] + [SCHEMA_DIR]


def schema_path(event_type: str, version: int) -> Path:
    """Return the file of `event_type` version `version`, or raise SchemaNotFound."""
    return _schema_path(event_type, version, tuple(schema_dirs()))


@lru_cache(maxsize=1024)
def _schema_path(event_type: str, version: int, dirs: tuple[Path, ...]) -> Path:
    # Found files are remembered (per list of folders); a miss is looked up again next time.
    name = f"{event_type}.v{version}.json"
    for folder in dirs:
        if (folder / name).is_file():
            return folder / name
    raise SchemaNotFound(
        f"No schema {name!r} for event {event_type!r} v{version}; "
        f"looked in {[str(d) for d in dirs]}."
    )


@lru_cache(maxsize=256)
def _compiled(path: str) -> tuple[Draft202012Validator, Callable[[Any], Any] | None]:
    """Return the jsonschema validator of a schema file and its fast twin (None: none)."""
    schema = json.loads(Path(path).read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=_format_checker)
    if not _portable(schema):
        return validator, None
    draft7 = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
    draft7["$schema"] = "http://json-schema.org/draft-07/schema#"
    return validator, fastjsonschema.compile(draft7, formats=_FAST_FORMATS)


def _validator(path: str) -> Draft202012Validator:
    return _compiled(path)[0]


def validator_for(event_type: str, version: int) -> Draft202012Validator:
    """Return the compiled validator of one event type and version."""
    return _validator(str(schema_path(event_type, version)))


def envelope_validator() -> Draft202012Validator:
    """Return the compiled validator of the envelope every event travels in."""
    return _validator(ENVELOPE_SCHEMA)


def _check(path: str, document: Any, what: str) -> None:
    validator, fast = _compiled(path)
    if fast is not None:
        try:
            fast(document)
        except fastjsonschema.JsonSchemaException:
            pass  # jsonschema decides, and names every bad field
        else:
            return
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
    _check(str(schema_path(event_type, version)), payload, f"Payload of {event_type} v{version}")


def envelope_validate(document: Any) -> None:
    """Raise PayloadInvalid unless `document` is a well-formed envelope."""
    _check(ENVELOPE_SCHEMA, document, "Envelope")


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
