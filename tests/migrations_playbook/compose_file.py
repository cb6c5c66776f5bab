"""Read compose.yaml as Docker Compose reads it: YAML first, then ``${VARIABLE}`` interpolation.

Compose's rules, as far as compose.yaml uses them: ``$$`` is a literal ``$``; ``${NAME}`` is the
value or empty; ``${NAME:-default}`` the value unless unset or empty; ``${NAME-default}`` the value
unless unset; ``${NAME:?message}`` the value, and an error naming NAME when unset or empty
(``${NAME?message}``: when unset).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

COMPOSE_PATH = Path(__file__).resolve().parents[2] / "compose.yaml"
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class MissingVariable(Exception):
    """A required variable is unset; the message names it, as compose does."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Return `value` (YAML data) with every ``${...}`` replaced from `env`."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        present = name in env
        value = env.get(name, "")
        if op is None:
            return value
        empty_counts = op.startswith(":")
        missing = not value if empty_counts else not present
        if op.endswith("-"):
            return arg if missing else value
        if missing:
            raise MissingVariable(name, arg)
        return value

    return _VARIABLE.sub(replace, value)


def compose_raw() -> dict[str, Any]:
    """Return compose.yaml as YAML, variables not yet replaced."""
    return yaml.safe_load(COMPOSE_PATH.read_text())


def compose_load(env: dict[str, str]) -> dict[str, Any]:
    """Return compose.yaml with its variables taken from `env`; raise MissingVariable."""
    return interpolate(compose_raw(), env)


def required_variables() -> set[str]:
    """Return the variables compose.yaml requires (``${NAME:?...}`` or ``${NAME?...}``)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.update(
                m.group("name")
                for m in _VARIABLE.finditer(value)
                if (m.group("op") or "")[-1:] == "?"
            )

    walk(compose_raw())
    return found
