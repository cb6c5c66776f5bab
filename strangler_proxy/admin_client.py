"""A small client of the proxy's admin API (`/_strangler/`): the routes command and the playbook.

Every call raises `AdminCallError` with a sentence saying what failed, where, and the proxy's own
`detail` when it answered; nothing here retries (the engine decides what to do next).

Every call carries the admin token: STRANGLER_ADMIN_TOKEN, else the file ``admin-token`` in the
var dir (``--var-dir``, else ``$STRANGLER_VAR_DIR``, else ``./var``), where `strangler up` and
`strangler proxy` made it. ``X-Strangler-Actor: <actor>:$USER`` (``cli``, ``playbook``) says who
is at the keyboard; the proxy records it as a claim beside the token's holder.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from service_kit.var_secrets import SecretFileError, secret_find

from .headers import ACTOR

DEFAULT_PROXY_URL = "http://127.0.0.1:8000"


def default_proxy_url(environ: dict[str, str] | None = None) -> str:
    """Return STRANGLER_PROXY_URL, else the proxy's default address."""
    environ = os.environ if environ is None else environ
    return (environ.get("STRANGLER_PROXY_URL") or DEFAULT_PROXY_URL).rstrip("/")


class AdminCallError(RuntimeError):
    """The proxy's admin API could not be reached or refused a request."""


class ProxyAdmin:
    """Talk to one proxy's admin API."""

    #: What the client says it is, before ``:$USER`` (``X-Strangler-Actor``).
    actor = "cli"

    def __init__(
        self, base_url: str, *, token: str | None = None, timeout: float = 10.0,
        environ: Mapping[str, str] | None = None, var_dir: Path | None = None,
    ):  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers[ACTOR] = f"{self.actor}:{_user()}"
        self.token_problem = ""
        if token is None:
            try:
                token = secret_find(
                    variable="STRANGLER_ADMIN_TOKEN", name="admin-token", environ=environ,
                    var_dir=var_dir,
                )  # fmt: skip
            except SecretFileError as exc:
                self.token_problem = f" ({exc})"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            where = var_dir or (environ or os.environ).get("STRANGLER_VAR_DIR") or "./var"
            self.token_problem = self.token_problem or (
                f" (no admin token: set STRANGLER_ADMIN_TOKEN, or run where {where}/admin-token "
                "exists)"
            )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/_strangler/{path}"
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise AdminCallError(
                f"cannot reach the proxy at {self.base_url} ({exc.__class__.__name__}); "
                "is it running (`strangler up --step N`), or is --proxy wrong?"
            ) from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail") or response.text
                fields = response.json().get("fields")
            except ValueError:
                detail, fields = response.text[:300], None
            extra = f" {fields}" if fields else ""
            if response.status_code == 401:
                extra += self.token_problem
            raise AdminCallError(f"{method} {url} answered {response.status_code}: {detail}{extra}")
        return response.json()

    def routes(self) -> dict[str, Any]:
        """Return the table in force: version, services, routes."""
        return self._call("GET", "routes")

    def route_modes(self) -> dict[str, dict[str, Any]]:
        """Return each route of the table in force, by name."""
        return {route["name"]: route for route in self.routes()["routes"]}

    def route_set(self, name: str, *, mode: str, service: str | None = None) -> dict[str, Any]:
        """Switch one route's mode (atomically, at the proxy)."""
        change = {"mode": mode} | ({"service": service} if service else {})
        return self._call("PATCH", f"routes/{name}", json=change)

    def table_replace(self, table: dict[str, Any]) -> dict[str, Any]:
        """Replace the whole table (used to add a step's services and routes)."""
        return self._call("PUT", "routes", json=table)

    def diffs(self, route: str) -> dict[str, Any]:
        """Return the shadow figures of `route`: compared, diffs, diff_rate, latest diffs."""
        data = self._call("GET", "diffs", params={"route": route})
        figures = data.get("routes", {}).get(route) or {
            "compared": 0,
            "diffs": 0,
            "errors": 0,
            "skipped": 0,
            "diff_rate": 0.0,
        }
        return figures | {"latest": data.get("diffs", [])}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
