"""The proxy's route table for a step, built from the step files and the playbook's state.

Step N's table holds the services of steps 1..N and their routes, each in the mode the rollout
reached (state.json), and a catch-all route to the monolith for everything else. `strangler up`
writes it to the var dir (the `routes` job) and the proxy reads it through STRANGLER_ROUTES.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .state import NOT_STARTED, state_read
from .stepfile import Step

CATCH_ALL = {"name": "default", "prefix": "/", "mode": "monolith"}


def route_modes(steps: dict[int, Step], state: dict[str, Any], upto: int) -> dict[str, str]:
    """Return the mode each route of steps 0..`upto` is in, according to `state`."""
    modes = {}
    for number, step in steps.items():
        if number > upto:
            continue
        stage = state["steps"].get(str(number), {}).get("stage", NOT_STARTED)
        for route in step.routes:
            modes[route.name] = stage
    return modes


def route_table(
    *, steps: dict[int, Step], upto: int, state: dict[str, Any], service_urls: dict[str, str]
) -> dict[str, Any]:
    """Return the route table (as the proxy's admin API and files shape it) for step `upto`."""
    services: dict[str, Any] = {}
    routes: list[dict[str, Any]] = []
    modes = route_modes(steps, state, upto)
    for number, step in steps.items():
        if number > upto:
            continue
        for service in step.services:
            url = service_urls.get(service.name, f"http://127.0.0.1:{service.port}")
            services[service.name] = {"url": url}
        for route in step.routes:
            routes.append(route.table_entry(modes[route.name]))
    routes.append(dict(CATCH_ALL))
    table: dict[str, Any] = {"routes": routes}
    if services:
        table["services"] = services
    return table


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def table_toml(table: dict[str, Any]) -> str:
    """Return `table` as the TOML text `strangler proxy --routes` reads."""
    lines = ["# Written by `strangler playbook table` from the step files and the playbook state."]
    for name, service in table.get("services", {}).items():
        lines += ["", f"[services.{name}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in service.items()]
    for route in table["routes"]:
        lines += ["", "[[routes]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in route.items()]
    return "\n".join(lines) + "\n"


def table_write(
    *, path: Path, steps: dict[int, Step], upto: int, var_dir: Path, service_urls: dict[str, str]
) -> dict[str, Any]:
    """Write step `upto`'s table to `path` atomically; return it."""
    table = route_table(
        steps=steps, upto=upto, state=state_read(var_dir), service_urls=service_urls
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".routes-", suffix=".toml")
    with os.fdopen(fd, "w") as handle:
        handle.write(table_toml(table))
    os.replace(temporary, path)
    return table
