"""End to end: step 1 -> 2 through every rollout stage under steady traffic, back, and forward.

`strangler up --step 2` runs the whole stack (monolith, payments and users services, proxy) on
PostgreSQL and RabbitMQ, starting from step 1 applied. Customers, each from an address of its
own (so canary splits their anonymous requests, registrations and logins, between the halves),
keep registering, logging in, reading and editing their profile, listing their orders on the
monolith, logging out and changing their passwords, while `strangler playbook` moves the users
and auth routes shadow -> canary:10 -> canary:50 -> extracted, rolls them back to the monolith,
and walks forward again. It proves:

* no request fails, at any stage or during a switch;
* every revocation holds at once through the proxy: a logged-out token, and every token of a
  user who changed their password, is refused on the very next request, whichever half served
  the revocation and whichever half is asked about the token;
* reconcile (every user, field by field with the password hash, and their live token digests)
  is exact at every stage once the traffic pauses and the outbox drains: no registration, login,
  logout or password change is lost, in either direction;
* a token issued at each stage, by whichever half served the login, still works at the end,
  across the switch, the rollback and the walk forward; every customer still logs in with their
  latest password after the rollback and at the end;
* the monolith serves its own routes (orders) to users the service registered: it trusts the
  identity the proxy signs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from migrations_playbook.admin import ProxyAdmin
from migrations_playbook.gates import GateContext
from migrations_playbook.stepfile import STEPS_DIR, steps_load

from .walk_support import Stack, drained, playbook, servers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ID_START = 1_000_000_000
# The contract gate runs one users contract through the proxy (the users and auth files are
# the shipped default; here they would cost most of the time budget at each of the stages).
CONTRACT_SUBSET = [
    "tests/contract/test_users.py::test_each_login_issues_its_own_token_and_logout_revokes_only_that_one",
]
EXPECTED = {"register": 201, "login": 200, "me": 200, "edit": 200, "orders": 200,
            "logout": 204, "password": 200, "revoked": 401}  # fmt: skip


class SourceAddress(HTTPAdapter):
    """Connect from a given loopback address, so the proxy sees one client per address."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


@dataclass
class Customer:
    email: str
    password: str
    address: str
    session: requests.Session
    user_id: int = 0
    tokens: list[str] = field(default_factory=list)  # valid, newest last
    revoked: list[str] = field(default_factory=list)
    steady: bool = False  # never logs out nor changes password: holds the stage tokens


class Load:
    """Customers registering, logging in and out, editing, changing passwords; pausable."""

    def __init__(self, base_url: str, customers: int = 16):
        self.base_url = base_url
        self.failures: list[str] = []
        self.counts: Counter[str] = Counter()
        self.served: Counter[tuple[str, str]] = Counter()  # (kind, upstream)
        self.addresses = [f"127.0.0.{n}" for n in range(10, 42)]
        self.customers: list[Customer] = []
        self.stage_tokens: list[tuple[str, str, Customer, str]] = []  # stage, token, who, by
        self.running, self.stopping, self.idle = (threading.Event() for _ in range(3))
        for number in range(customers):
            customer = self.register(steady=number % 4 == 0)
            assert customer is not None, self.failures
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.turn = 0

    # ------------------------------------------------------------ one request
    def call(self, kind: str, customer: Customer, method: str, path: str, *, token=None,
             expect: int | None = None, **kwargs) -> requests.Response | None:  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = customer.session.request(
                method, f"{self.base_url}{path}", headers=headers, timeout=15, **kwargs
            )
        except requests.RequestException as exc:
            self.failures.append(f"{kind} {method} {path} ({customer.email}): {exc}")
            return None
        self.counts[kind] += 1
        upstream = response.headers.get("X-Strangler-Upstream", "?")
        self.served[(kind, upstream)] += 1
        wanted = EXPECTED[kind] if expect is None else expect
        if response.status_code != wanted:
            self.failures.append(
                f"{kind} {method} {path} ({customer.email}): {response.status_code} from "
                f"{upstream}, expected {wanted}: {response.text[:300]}"
            )
            return None
        return response

    # ------------------------------------------------------------ what customers do
    def register(self, *, steady: bool = False) -> Customer | None:
        address = self.addresses[len(self.customers) % len(self.addresses)]
        session = requests.Session()
        session.mount("http://", SourceAddress(address))
        customer = Customer(
            email=f"walk2-{uuid.uuid4().hex[:12]}@example.com",
            password=f"Pw-{uuid.uuid4().hex[:10]}!",
            address=address, session=session, steady=steady,
        )  # fmt: skip
        credentials = {"email": customer.email, "password": customer.password}
        created = self.call("register", customer, "POST", "/api/users/", json=credentials)
        if created is None:
            return None
        customer.user_id = created.json()["id"]
        self.customers.append(customer)
        return customer if self.login(customer) else None

    def login(self, customer: Customer) -> str | None:
        credentials = {"email": customer.email, "password": customer.password}
        response = self.call("login", customer, "POST", "/api/auth/token/", json=credentials)
        if response is None:
            return None
        customer.tokens.append(response.json()["token"])
        return response.headers.get("X-Strangler-Upstream", "?")

    def me(self, customer: Customer, token: str) -> None:
        response = self.call("me", customer, "GET", "/api/users/me/", token=token)
        if response is not None and response.json()["id"] != customer.user_id:
            self.failures.append(f"me: {customer.email} was told {response.json()}")

    def logout(self, customer: Customer) -> None:
        token = customer.tokens.pop(0)
        if self.call("logout", customer, "POST", "/api/auth/logout/", token=token) is None:
            return
        customer.revoked.append(token)
        # Refused on the very next request, whichever half learns of it later.
        self.call("revoked", customer, "GET", "/api/users/me/", token=token)

    def change_password(self, customer: Customer) -> None:
        new = f"Pw-{uuid.uuid4().hex[:10]}!"
        response = self.call(
            "password", customer, "PATCH", "/api/users/me/", token=customer.tokens[-1],
            json={"password": new, "current_password": customer.password},
        )  # fmt: skip
        if response is None:
            return
        customer.password = new
        customer.revoked += customer.tokens
        old, customer.tokens = customer.tokens, []
        for token in old[-2:]:
            self.call("revoked", customer, "GET", "/api/users/me/", token=token)
        self.login(customer)

    def _round(self) -> None:
        self.turn += 1
        customer = random.choice(self.customers)
        if not customer.tokens:
            self.login(customer)
            return
        action = self.turn % 10
        if action in (0, 5):
            self.me(customer, random.choice(customer.tokens))
        elif action == 1:
            self.call("edit", customer, "PATCH", "/api/users/me/", token=customer.tokens[-1],
                      json={"full_name": f"Walker {self.turn}"})  # fmt: skip
        elif action in (2, 7):
            self.login(customer)
        elif action == 3:
            self.call("orders", customer, "GET", "/api/orders/", token=customer.tokens[-1])
        elif action in (4, 8) and not customer.steady and len(customer.tokens) > 1:
            self.logout(customer)
        elif action == 6 and not customer.steady and self.turn % 20 == 6:
            self.change_password(customer)
        elif action == 9 and self.turn % 30 == 9:
            self.register()
        else:
            self.me(customer, customer.tokens[-1])

    def _run(self) -> None:
        while not self.stopping.is_set():
            if not self.running.is_set():
                self.idle.set()
                self.running.wait(0.1)
                continue
            self.idle.clear()
            self._round()
            time.sleep(0.03)
        self.idle.set()

    # ------------------------------------------------------------ control and checks
    def start(self) -> None:
        self.running.set()
        self.thread.start()

    def pause(self) -> None:
        self.running.clear()
        assert self.idle.wait(60)

    def resume(self) -> None:
        self.running.set()

    def stage_token(self, stage: str) -> None:
        """Log a steady customer in now and keep the token: it must work until the end."""
        customer = random.choice([c for c in self.customers if c.steady])
        served_by = self.login(customer)
        if served_by is not None:
            self.stage_tokens.append((stage, customer.tokens[-1], customer, served_by))

    def verify_everyone(self, *, tokens: bool = True) -> None:
        """Every password logs in and lists its orders; with `tokens`, every live token works
        and every revoked one is refused."""
        for customer in self.customers:
            if tokens:
                for token in customer.tokens:
                    self.me(customer, token)
                for token in customer.revoked:
                    self.call("revoked", customer, "GET", "/api/users/me/", token=token)
            self.login(customer)
            self.call("orders", customer, "GET", "/api/orders/", token=customer.tokens[-1])


def _reconcile_exactly(ctx: GateContext, lag_gate) -> dict:
    drained(ctx, lag_gate)
    done = ctx.run_half("users", ["manage.py", "users_reconcile", "--json"])
    report = json.loads(done.stdout)
    assert report["exact"], report["differences"][:10]
    return report


def _step_1_applied(var_dir: Path) -> None:
    """Start from step 1 done: on a fresh database that is the state a finished walk leaves."""
    (var_dir / "playbook").mkdir(parents=True)
    step_1 = {
        "stage": "extracted",
        "history": [],
        "backfill": {"payments_backfill --batch 500": "done"},
        "subscriptions": {"payments": "done", "monolith": "done"},
    }
    state = {"steps": {"1": step_1}}
    (var_dir / "playbook" / "state.json").write_text(json.dumps(state))


def test_walk_to_step_2_through_every_stage_back_and_forward_under_traffic(tmp_path):
    var_dir, steps_dir = tmp_path / "var", tmp_path / "steps"
    shutil.copytree(STEPS_DIR, steps_dir)
    step_file = steps_dir / "step-2-extract-users.toml"
    step_file.write_text(
        step_file.read_text().replace(
            'paths = ["tests/contract/test_users.py", "tests/contract/test_auth.py"]',
            f"paths = {json.dumps(CONTRACT_SUBSET)}",
        )
    )
    _step_1_applied(var_dir)
    with servers("users_walk", ("payments", "users")) as found:
        base_env = {k: v for k, v in os.environ.items() if k != "STRANGLER_VAR_DIR"}
        env = base_env | found | {"STRANGLER_VAR_DIR": str(var_dir),
                                  "STRANGLER_FAST_PASSWORD_HASHER": "1"}  # fmt: skip
        stack = Stack(env, var_dir, step=2, http=("proxy", "monolith", "payments", "users"))
        try:
            _walk(stack, env, var_dir, steps_dir)
        finally:
            stack.stop()


def _walk(stack: Stack, env: dict[str, str], var_dir: Path, steps_dir: Path) -> None:
    ready_s = stack.wait_ready(timeout=90)
    proxy_url = f"http://127.0.0.1:{stack.ports['proxy']}"
    cli = ["--proxy", proxy_url, "--var-dir", str(var_dir), "--steps-dir", str(steps_dir)]
    env = env | {"STRANGLER_IDENTITY_SECRET": (var_dir / "identity-secret").read_text()}
    step = steps_load(steps_dir)[2]
    admin = ProxyAdmin(proxy_url, var_dir=var_dir)
    ctx = GateContext(step=step, proxy=admin, environ=env, var_dir=var_dir, say=lambda _: None)
    lag = step.gates["outbox_lag"]

    load = Load(proxy_url)  # registered at step 1: by the monolith
    load.start()
    time.sleep(2)
    load.stage_token("step 1")

    walk_started = time.monotonic()
    marks = {}
    for mode in ("shadow", "canary:10", "canary:50", "extracted"):
        began = time.monotonic()
        output = playbook(env, "apply", "2", "--to", mode, *cli)
        marks[f"apply {mode}"] = time.monotonic() - began
        assert f"users: now {mode}" in output and f"auth: now {mode}" in output
        assert "PASS reconcile" in output
        time.sleep(4 if mode == "shadow" else 2)  # traffic at this stage
        load.stage_token(mode)
        load.pause()
        began = time.monotonic()
        _reconcile_exactly(ctx, lag)
        marks[f"reconcile {mode}"] = time.monotonic() - began
        load.resume()
    walk_s = time.monotonic() - walk_started
    assert admin.diffs("users")["compared"] >= 20

    began = time.monotonic()
    output = playbook(env, "rollback", "2", *cli)
    marks["rollback"] = time.monotonic() - began
    assert "every write reached the monolith" in output
    time.sleep(2)
    load.stage_token("rolled back")
    load.pause()
    _reconcile_exactly(ctx, lag)
    # Registered on either half, with passwords changed on either: every one logs in again.
    load.verify_everyone(tokens=False)
    load.resume()

    # Forward again through every stage and its gates (no dwell: step 1's walk covers --auto).
    began = time.monotonic()
    output = playbook(env, "apply", "2", *cli)
    marks["apply again"] = time.monotonic() - began
    assert "users: now canary:10" in output and "users: now extracted" in output
    time.sleep(2)
    load.stage_token("forward again")
    load.stopping.set()
    load.pause()
    final = _reconcile_exactly(ctx, lag)
    load.verify_everyone()

    assert load.failures == []
    for stage, token, customer, served_by in load.stage_tokens:
        response = customer.session.get(
            f"{proxy_url}/api/users/me/", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 200, (stage, served_by, response.text)
    issuers = {served_by for _, _, _, served_by in load.stage_tokens}
    assert issuers == {"monolith", "users"}, load.stage_tokens
    # Both halves registered users and issued and revoked tokens along the way.
    ids = [c.user_id for c in load.customers]
    assert min(ids) < ID_START <= max(ids)
    for kind in ("register", "login", "logout", "password"):
        assert load.served[(kind, "monolith")] and load.served[(kind, "users")], (
            kind, dict(load.served),
        )  # fmt: skip
    assert load.served[("orders", "monolith")] == load.counts["orders"]
    # The contract gates registered customers of their own too.
    assert final["monolith_count"] == final["service_count"] >= len(load.customers)
    print(
        f"\nFIGURES ready_s={ready_s:.1f} walk_s={walk_s:.1f} "
        f"requests={sum(load.counts.values())} customers={len(load.customers)} "
        f"counts={dict(load.counts)} failures={len(load.failures)} "
        f"phases={ {k: round(v, 1) for k, v in marks.items()} }"
    )
