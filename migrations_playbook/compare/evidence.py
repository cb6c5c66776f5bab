"""The data behind the verdicts: which routes moved, what the proxy saw, whether data agrees.

Every source may be missing (a deployment without a proxy, a step without a reconcile gate, a
service whose command fails): each function then returns None or a note saying why, and the
report prints that note instead of a figure. Nothing here raises for an absent source.

The proxy's admin API needs its token: each call takes `token`, else finds it as every client
does (STRANGLER_ADMIN_TOKEN, else ``$STRANGLER_VAR_DIR/admin-token``: `admin_token`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from migrations_playbook.databases import service_environment
from migrations_playbook.stepfile import Step
from service_kit.var_secrets import SecretFileError, secret_find

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ADMIN = "/_strangler"
TIMEOUT_S = 5.0


@dataclass
class MovedRoute:
    """A proxy route whose serving half differs between the sides, and the evidence about it."""

    name: str
    match: str
    service: str
    before_mode: str
    after_mode: str
    source: str  # "step data" or "proxy route tables"
    step: int | None = None
    shadow: dict[str, Any] | None = None
    shadow_note: str = ""
    reconcile: dict[str, Any] | None = None
    reconcile_note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    """What the report shows besides the tests."""

    routes: list[MovedRoute] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shadow_run: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "routes": [route.as_dict() for route in self.routes],
            "notes": list(self.notes),
            "shadow_run": self.shadow_run,
        }


def routes_moved_by_steps(steps: dict[int, Step], before: int, after: int) -> list[MovedRoute]:
    """Return the routes of the steps between `before` and `after`, each at both sides' modes.

    A step's routes are at the end of their rollout from that step on (how compare starts a
    stack), and with the monolith before it.
    """
    low, high = sorted((before, after))
    moved = []
    for number, step in steps.items():
        if not low < number <= high or not step.routes:
            continue
        final = step.rollout[-1].mode if step.rollout else "extracted"
        for route in step.routes:
            modes = {side: final if side >= number else "monolith" for side in (before, after)}
            moved.append(
                MovedRoute(
                    name=route.name,
                    match=route.prefix or route.path or "",
                    service=route.service,
                    before_mode=modes[before],
                    after_mode=modes[after],
                    source="step data",
                    step=number,
                )
            )
    return moved


def admin_token(
    *, environ: dict[str, str] | None = None, var_dir: Path | None = None
) -> str | None:
    """Return the proxy admin token a client finds: the variable, else the var dir's file."""
    try:
        return secret_find(
            variable="STRANGLER_ADMIN_TOKEN", name="admin-token", environ=environ, var_dir=var_dir
        )
    except SecretFileError:
        return None


def _admin_headers(token: str | None) -> dict[str, str]:
    token = token or admin_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def proxy_routes(base_url: str, *, token: str | None = None) -> dict[str, Any] | None:
    """Return the route table a proxy at `base_url` has in force, or None if it is no proxy."""
    try:
        response = requests.get(
            f"{base_url}{ADMIN}/routes", headers=_admin_headers(token), timeout=TIMEOUT_S
        )
        table = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    if not isinstance(table, dict) or not isinstance(table.get("routes"), list):
        return None
    return table


def routes_moved_by_tables(before: dict[str, Any], after: dict[str, Any]) -> list[MovedRoute]:
    """Return the routes whose mode or service differs between two proxies' tables."""

    def by_name(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {route["name"]: route for route in table["routes"] if "name" in route}

    left, right = by_name(before), by_name(after)
    moved = []
    for name in sorted(set(left) | set(right)):
        a, b = left.get(name, {}), right.get(name, {})
        key = ("mode", "service")
        if {k: a.get(k, "monolith") for k in key} == {k: b.get(k, "monolith") for k in key}:
            continue
        either = b or a
        moved.append(
            MovedRoute(
                name=name,
                match=either.get("prefix") or either.get("path") or "",
                service=either.get("service", "monolith"),
                before_mode=a.get("mode", "(absent)"),
                after_mode=b.get("mode", "(absent)"),
                source="proxy route tables",
            )
        )
    return moved


def shadow_figures(
    base_url: str, route: str, *, token: str | None = None
) -> tuple[dict[str, Any] | None, str]:
    """Return (figures, note): the proxy's compared/diffs/diff_rate for `route`, and top paths."""
    try:
        response = requests.get(
            f"{base_url}{ADMIN}/diffs", params={"route": route}, headers=_admin_headers(token),
            timeout=5,
        )  # fmt: skip
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        return (
            None,
            f"no shadow figures: {base_url} has no proxy admin API ({exc.__class__.__name__})",
        )
    if response.status_code != 200 or not isinstance(data, dict):
        return None, f"no shadow figures: {base_url}{ADMIN}/diffs answered {response.status_code}"
    figures = (data.get("routes") or {}).get(route)
    if not figures:
        return None, (
            f"the proxy at {base_url} recorded no shadow comparison for {route!r} "
            "(the route was never in shadow mode there)"
        )
    paths: dict[str, int] = {}
    for diff in data.get("diffs") or []:
        for path in diff.get("paths") or []:
            paths[path] = paths.get(path, 0) + 1
    top = sorted(paths.items(), key=lambda item: (-item[1], item[0]))[:10]
    return figures | {"top_paths": top, "proxy": base_url}, ""


def set_route_mode(base_url: str, route: str, mode: str, *, token: str | None = None) -> str | None:
    """Switch `route` to `mode` on the proxy at `base_url`; return why not, or None."""
    try:
        response = requests.patch(
            f"{base_url}{ADMIN}/routes/{route}",
            json={"mode": mode},
            headers={"X-Strangler-Actor": "strangler compare", **_admin_headers(token)},
            timeout=TIMEOUT_S,
        )
    except requests.RequestException as exc:
        return f"cannot reach the proxy's admin API: {exc}"
    if response.status_code != 200:
        return (
            f"PATCH {ADMIN}/routes/{route} answered {response.status_code}: {response.text[:200]}"
        )
    return None


def reconcile_run(
    *, step: Step, env: dict[str, str], var_dir: Path, timeout: float = 120.0
) -> tuple[dict[str, Any] | None, str]:
    """Run `step`'s reconcile gate against a stack's databases; return (report, note)."""
    gates = [gate for gate in step.gates.values() if gate.kind == "reconcile"]
    if not gates:
        return None, f"step {step.number} declares no reconcile gate"
    gate = gates[0]
    service = step.service(gate.options.get("service", ""))
    command = list(gate.options.get("command") or [])
    if service is None or not command:
        return None, f"the reconcile gate {gate.name!r} names no service or command"
    service_env = env | service_environment(
        service=service.name, settings=service.settings, environ=env, var_dir=var_dir
    )
    try:
        done = subprocess.run(  # noqa: S603 (argv from the step file)
            [sys.executable, "manage.py", *command],
            cwd=PROJECT_ROOT,
            env=service_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, f"`manage.py {' '.join(command)}` did not finish within {timeout:g} s"
    try:
        report = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return None, (
            f"`manage.py {' '.join(command)}` exited {done.returncode} without a JSON report: "
            + " | ".join(tail)
        )
    if not isinstance(report, dict):
        return (
            None,
            f"`manage.py {' '.join(command)}` printed {type(report).__name__}, not an object",
        )
    return report, ""
