"""End to end: step 0 -> 1 through every rollout stage under steady traffic, back, and forward.

`strangler up --step 1` runs the whole stack on PostgreSQL and RabbitMQ (a throwaway database
per service and a vhost of its own); a small load generator keeps placing orders, paying,
reading and refunding through the proxy while `strangler playbook` moves the payments route
shadow -> canary:10 -> canary:50 -> extracted, rolls it back to the monolith, and walks forward
again with --auto. At every stage the traffic is paused, the outbox drained and reconcile must be
exact; at the end no request failed, and every payment a client was told about exists once in
each half.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter

import pytest
import requests

from migrations_playbook.admin import ProxyAdmin
from migrations_playbook.gates import GateContext
from migrations_playbook.stepfile import STEPS_DIR, steps_load

from .walk_support import Stack, drained, playbook
from .walk_support import servers as walk_servers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "s3cret-Passw0rd-walkthrough"
CARD_OK = "4242424242424242"
# The contract gate runs a few payments contracts through the proxy (the whole suite is the
# shipped default; here it would take most of the time budget at each of the six stages).
CONTRACT_SUBSET = [
    "tests/contract/test_payments.py::test_paying_charges_the_orders_total_and_keeps_only_the_last_four_digits",
]


@pytest.fixture
def servers():
    """A fresh PostgreSQL database per service and a RabbitMQ vhost, dropped after."""
    with walk_servers("walk", ("payments",)) as found:
        yield found


class Load:
    """Clients placing, paying, reading and refunding through the proxy, pausable."""

    EXPECTED = {"order": 201, "pay": 201, "list": 200, "read": 200, "refund": 200}

    def __init__(self, base_url: str, users: int = 30):
        self.base_url = base_url
        self.failures: list[str] = []
        self.counts: Counter[str] = Counter()
        self.paid: dict[str, set[str]] = {}  # token -> payment ids the client was given
        self.refundable: list[tuple[str, str, float]] = []
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.idle = threading.Event()
        products = requests.get(f"{base_url}/api/products/", timeout=10)
        assert products.status_code == 200, products.text
        self.sku = products.json()["results"][0]["sku"]  # the demo catalogue's first product
        self.tokens = [self._customer() for _ in range(users)]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _customer(self) -> str:
        email = f"walk-{uuid.uuid4().hex[:12]}@example.com"
        created = requests.post(f"{self.base_url}/api/users/",
                                json={"email": email, "password": PASSWORD},
                                timeout=10)  # fmt: skip
        assert created.status_code == 201, created.text
        token = requests.post(f"{self.base_url}/api/auth/token/",
                              json={"email": email, "password": PASSWORD}, timeout=10)  # fmt: skip
        assert token.status_code == 200, token.text
        self.paid[token.json()["token"]] = set()
        return token.json()["token"]

    def _call(self, kind: str, token: str, method: str, path: str, **kwargs) -> dict | None:
        headers = {"Authorization": f"Bearer {token}"} | kwargs.pop("headers", {})
        try:
            response = requests.request(method, f"{self.base_url}{path}", headers=headers,
                                        timeout=15, **kwargs)  # fmt: skip
        except requests.RequestException as exc:
            self.failures.append(f"{kind} {method} {path}: {exc}")
            return None
        self.counts[kind] += 1
        if response.status_code != self.EXPECTED[kind]:
            upstream = response.headers.get("X-Strangler-Upstream")
            self.failures.append(f"{kind} {method} {path}: {response.status_code} from "
                                 f"{upstream}: {response.text[:300]}")  # fmt: skip
            return None
        return response.json()

    def _round(self, token: str) -> None:
        # Reads first: this client's last write was its previous round, a second or so ago, as
        # for a person; a read mirrored a millisecond after a write would compare the monolith
        # with a candidate the write's event has not reached yet (replication lag, not a bug).
        self._call("list", token, "GET", "/api/payments/")
        if self.paid[token]:
            latest = sorted(self.paid[token])[0]
            self._call("read", token, "GET", f"/api/payments/{latest}/")
        order = self._call("order", token, "POST", "/api/orders/",
                           json={"items": [{"sku": self.sku, "quantity": 1}]})  # fmt: skip
        if order is None:
            return
        payment = self._call("pay", token, "POST", "/api/payments/",
                             json={"order_id": order["id"], "card_number": CARD_OK},
                             headers={"Idempotency-Key": f"walk-{uuid.uuid4()}"})  # fmt: skip
        if payment is None:
            return
        self.paid[token].add(payment["id"])
        self.refundable.append((token, payment["id"], time.monotonic()))
        # Refund payments old enough for the other half to have heard of them.
        if (
            self.refundable
            and time.monotonic() - self.refundable[0][2] > 3
            and (self.counts["pay"] % 4 == 0)
        ):
            owner, payment_id, _ = self.refundable.pop(0)
            self._call("refund", owner, "POST", f"/api/payments/{payment_id}/refund/")

    def _run(self) -> None:
        turn = 0
        while not self.stopping.is_set():
            if not self.running.is_set():
                self.idle.set()
                self.running.wait(0.1)
                continue
            self.idle.clear()
            self._round(self.tokens[turn % len(self.tokens)])
            turn += 1
            time.sleep(0.1)
        self.idle.set()

    def start(self) -> None:
        self.running.set()
        self.thread.start()

    def pause(self) -> None:
        self.running.clear()
        assert self.idle.wait(30)

    def resume(self) -> None:
        self.running.set()


def _reconcile_exactly(ctx: GateContext, lag_gate) -> dict:
    """Wait for the outbox to drain, then run reconcile once: it must be exact."""
    drained(ctx, lag_gate)
    done = ctx.run_half("payments", ["manage.py", "payments_reconcile", "--json"])
    report = json.loads(done.stdout)
    assert report["exact"], report["differences"][:10]
    return report


def test_walk_to_step_1_through_every_stage_back_and_forward_under_traffic(servers, tmp_path):
    var_dir = tmp_path / "var"
    steps_dir = tmp_path / "steps"
    shutil.copytree(STEPS_DIR, steps_dir)
    step_file = steps_dir / "step-1-extract-payments.toml"
    step_file.write_text(
        step_file.read_text().replace(
            'paths = ["tests/contract/test_payments.py"]', f"paths = {json.dumps(CONTRACT_SUBSET)}"
        )
    )
    base_env = {k: v for k, v in os.environ.items() if k not in {"STRANGLER_VAR_DIR"}}
    # Thirty customers register in a second; each keeps under a page (20) of payments.
    env = base_env | servers | {"STRANGLER_VAR_DIR": str(var_dir),
                                "STRANGLER_FAST_PASSWORD_HASHER": "1"}  # fmt: skip
    stack = Stack(env, var_dir, step=1, http=("proxy", "monolith", "payments"))
    try:
        ready_s = stack.wait_ready(timeout=60)
        proxy_url = f"http://127.0.0.1:{stack.ports['proxy']}"
        cli = ["--proxy", proxy_url, "--var-dir", str(var_dir), "--steps-dir", str(steps_dir)]
        env = env | {"STRANGLER_IDENTITY_SECRET": (var_dir / "identity-secret").read_text()}
        step = steps_load(steps_dir)[1]
        admin = ProxyAdmin(proxy_url, var_dir=var_dir)  # the token the stack made there
        ctx = GateContext(step=step, proxy=admin, environ=env, var_dir=var_dir,
                          say=lambda line: None)  # fmt: skip
        lag = step.gates["outbox_lag"]

        load = Load(proxy_url)
        load.start()
        time.sleep(3)  # step 0: the monolith alone serves payments

        upstreams = Counter()
        walk_started = time.monotonic()
        for mode in ("shadow", "canary:10", "canary:50", "extracted"):
            output = playbook(env, "apply", "1", "--to", mode, *cli)
            assert f"payments: now {mode}" in output
            assert "PASS reconcile" in output
            time.sleep(3)  # traffic flows at this stage (shadow: mirrored reads pile up)
            load.pause()
            report = _reconcile_exactly(ctx, lag)
            upstreams[mode] = report["service_count"]
            load.resume()
        walk_s = time.monotonic() - walk_started
        assert admin.diffs("payments")["compared"] >= 20

        rollback_started = time.monotonic()
        output = playbook(env, "rollback", "1", *cli)
        rollback_s = time.monotonic() - rollback_started
        assert "every write reached the monolith" in output
        time.sleep(3)
        load.pause()
        _reconcile_exactly(ctx, lag)
        load.resume()

        output = playbook(env, "apply", "1", "--auto", "--dwell", "1", "--interval", "1", *cli)
        assert "payments: now extracted" in output
        assert "watching canary:50" in output
        time.sleep(3)
        load.stopping.set()
        load.pause()
        final = _reconcile_exactly(ctx, lag)
        assert (
            playbook(env, "apply", "1", *cli)
            .strip()
            .endswith("nothing to do (routes at extracted)")
        )

        assert load.failures == []
        assert load.counts["pay"] >= 40 and load.counts["refund"] >= 3
        # Every payment a client was given exists once, and each client sees exactly its own.
        for token, ids in load.paid.items():
            seen, url = [], f"{proxy_url}/api/payments/"
            while url:
                page = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
                assert page.status_code == 200, page.text
                seen += [p["id"] for p in page.json()["results"]]
                url = page.json()["next"]
            assert sorted(seen) == sorted(ids)
        assert final["monolith_count"] == final["service_count"]
        print(
            f"\nFIGURES ready_s={ready_s:.1f} walk_s={walk_s:.1f} rollback_s={rollback_s:.1f} "
            f"requests={sum(load.counts.values())} payments={load.counts['pay']} "
            f"refunds={load.counts['refund']} failures={len(load.failures)} "
            f"payments_at_stage={dict(upstreams)}"
        )
    finally:
        stack.stop()
