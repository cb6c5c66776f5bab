"""`strangler demo`: the migration walk-through, on the embedded default, in a few minutes.

    strangler demo [--var-dir DIR] [--keep-running | --exit] [--quick] [--dwell S]
                   [--proxy-port P] [--monolith-port P] [--payments-port P]

What it does, saying so as it goes:

1. starts the stack of step 1 (`strangler up --step 1`, as a child process) on the embedded
   default: SQLite per service and the filesystem broker under the var dir, no servers;
2. seeds a little data (a staff account, customers with paid orders) while the monolith alone
   serves payments;
3. runs a small client load in the background through the proxy: customers list and read their
   payments, place orders, pay, and now and then refund;
4. walks step 1's rollout with `strangler playbook apply 1 --to MODE`: shadow, canary:10,
   canary:50, extracted, printing what changed, the gates with their figures and which half
   served the payments requests of each stage (the proxy's `X-Strangler-Upstream` answers);
5. rolls back (`strangler playbook rollback 1`) and shows that reconcile is exact, then walks
   forward again on its own (`apply 1 --auto`), gates watched at every stage;
6. prints a summary (requests sent and failed, payments on each half, reconcile) and keeps the
   stack running with its URLs until Ctrl-C, or stops it (`--exit`).

Exit status: 0 when every request succeeded, every playbook command did, reconcile was exact and
the stack stayed up; 1 otherwise; 2 bad arguments; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .admin import AdminCallError, ProxyAdmin
from .databases import MONOLITH, service_environment
from .gates import GateContext, GateError, outbox_lag_measure
from .stepfile import STEPS_DIR, steps_load
from .up_process import UpProcess, up_command

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MARKER = ".strangler-demo"
STEP = 1
ROUTE = "payments"
PORTS = {"proxy": 8000, "monolith": 8001, "payments": 8101}
CARD_OK = "4242424242424242"
PASSWORD = "demo-Passw0rd-strangler"  # noqa: S105 (the demo customers' shown password)
#: The servers the demo never uses: it shows the embedded default.
SERVER_SETTINGS = ("DATABASE_URL", "BROKER_URL", "REDIS_URL")
#: One payments contract for the gates of --quick (the whole file runs in ~10 s per stage).
QUICK_CONTRACT = [
    "tests/contract/test_payments.py::"
    "test_paying_charges_the_orders_total_and_keeps_only_the_last_four_digits",
]
WHAT_CHANGES = {
    "shadow": "the monolith still serves every payments request; the proxy also sends each "
    "read (GET) to the payments service, off the request path, and compares the two answers",
    "canary:10": "about 10% of customers (sticky: the same ones every time) are now served by "
    "the payments service; their payments reach the monolith as payment.* events",
    "canary:50": "about half the customers are served by the payments service",
    "extracted": "the payments service serves every payments request; the monolith keeps its "
    "copy up to date from events, so rolling back loses nothing",
    "monolith": "every payments request is back on the monolith",
}


class DemoFailed(RuntimeError):
    """The walk-through cannot go on; the message says why."""


def say(text: str = "") -> None:
    print(f"demo | {text}" if text else "demo |", flush=True)


STARTED = time.monotonic()


def heading(text: str) -> None:
    print(flush=True)
    say(f"== {text}  [{time.monotonic() - STARTED:.0f} s]")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- the stack


class Stack(UpProcess):
    """`strangler up --step 1` as a child process; its log in the var dir, its readiness shown."""

    def __init__(self, *, var_dir: Path, ports: dict[str, int], env: dict[str, str]):
        command = up_command(step=STEP, var_dir=var_dir, ports=ports, ready_timeout=120)
        super().__init__(
            command, env, var_dir / "demo-stack.log", error=DemoFailed, on_line=self._progress
        )

    def _progress(self, line: str) -> None:
        # The runner's own lines (ready, skipping): progress while it comes up.
        runner_says = line.startswith("strangler ") and not self.ready.is_set()
        if runner_says and (" ready " in line or "all " in line or "skipping" in line):
            say("  " + line.split("|", 1)[-1].strip())


# ---------------------------------------------------------------- the clients


@dataclass
class Customer:
    email: str
    token: str
    payments: list[str] = field(default_factory=list)


class Load:
    """A few customers using the shop through the proxy, one request at a time, pausable.

    Counts every answer by what it was (`kind`) and by the half that served it (the proxy's
    `X-Strangler-Upstream`), per stage of the walk; any unexpected answer is a failure.
    """

    EXPECTED = {"catalogue": 200, "register": 201, "login": 200, "order": 201, "pay": 201,
                "list": 200, "read": 200, "refund": 200}  # fmt: skip

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.customers: list[Customer] = []
        self.skus: list[str] = []  # the catalogue, read once: orders name skus, never prices
        self.stage = "monolith"
        self.counts: Counter[tuple[str, str, str]] = Counter()  # (stage, kind, upstream)
        self.failures: list[str] = []
        self.refundable: list[tuple[Customer, str, float]] = []
        self.running = threading.Event()
        self.stopping = threading.Event()
        self.idle = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def call(self, kind: str, method: str, path: str, *, token: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self.session.request(
                method, f"{self.base_url}{path}", headers=headers, timeout=20, **kwargs
            )
        except requests.RequestException as exc:
            self.failures.append(f"{kind} {method} {path}: {exc.__class__.__name__}: {exc}")
            return None
        upstream = response.headers.get("X-Strangler-Upstream", "?")
        self.counts[(self.stage, kind, upstream)] += 1
        if response.status_code != self.EXPECTED[kind]:
            self.failures.append(
                f"{kind} {method} {path}: {response.status_code} from {upstream}: "
                f"{response.text[:300]}"
            )
            return None
        return response.json()

    def register(self) -> Customer | None:
        email = f"demo-{uuid.uuid4().hex[:10]}@example.com"
        if self.call("register", "POST", "/api/users/",
                     json={"email": email, "password": PASSWORD}) is None:  # fmt: skip
            return None
        login = self.call("login", "POST", "/api/auth/token/",
                          json={"email": email, "password": PASSWORD})  # fmt: skip
        if login is None:
            return None
        customer = Customer(email, login["token"])
        self.customers.append(customer)
        return customer

    def buy(self, customer: Customer) -> None:
        """Place an order of one product of the catalogue (prices are the shop's) and pay it."""
        if not self.skus:
            page = self.call("catalogue", "GET", "/api/products/")
            self.skus = [product["sku"] for product in (page or {}).get("results", [])]
            if not self.skus:
                self.failures.append("catalogue GET /api/products/: no product to order")
                return
        sku = self.skus[len(customer.payments) % len(self.skus)]
        order = self.call("order", "POST", "/api/orders/", token=customer.token,
                          json={"items": [{"sku": sku, "quantity": 1}]})  # fmt: skip
        if order is None:
            return
        payment = self.call("pay", "POST", "/api/payments/", token=customer.token,
                            json={"order_id": order["id"], "card_number": CARD_OK},
                            headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"})  # fmt: skip
        if payment is not None:
            customer.payments.append(payment["id"])
            self.refundable.append((customer, payment["id"], time.monotonic()))

    def round(self, customer: Customer) -> None:
        # Reads first, a round after this customer's last write, as a person would do them.
        self.call("list", "GET", "/api/payments/", token=customer.token)
        if customer.payments:
            # Not the one paid a round ago: the half that serves this read may have changed
            # since (a stage moved on), and the other half learns of a payment through an event
            # (see docs/demo.md, "What a client can notice").
            earlier = customer.payments[-2] if len(customer.payments) > 1 else customer.payments[0]
            self.call("read", "GET", f"/api/payments/{earlier}/", token=customer.token)
        self.buy(customer)
        # Now and then refund a payment old enough for both halves to know it.
        if (
            self.refundable
            and time.monotonic() - self.refundable[0][2] > 3
            and sum(n for (_, kind, _), n in self.counts.items() if kind == "pay") % 4 == 0
        ):
            owner, payment_id, _ = self.refundable.pop(0)
            self.call("refund", "POST", f"/api/payments/{payment_id}/refund/", token=owner.token)

    def _run(self) -> None:
        turn = 0
        while not self.stopping.is_set():
            if not self.running.is_set() or not self.customers:
                self.idle.set()
                self.running.wait(0.1)
                continue
            self.idle.clear()
            self.round(self.customers[turn % len(self.customers)])
            turn += 1
            time.sleep(0.05)
        self.idle.set()

    def start(self) -> None:
        self.running.set()
        self.thread.start()

    def pause(self) -> None:
        self.running.clear()
        self.idle.wait(30)

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self.stopping.set()
        self.running.set()
        self.thread.join(30)

    # -------------------------------------------------------------- figures

    def served(self, *, stage: str | None = None, kinds: tuple[str, ...] | None = None) -> Counter:
        """Return how many answers each half gave (for one stage and some kinds, if given)."""
        counter: Counter[str] = Counter()
        for (at, kind, upstream), n in self.counts.items():
            if (stage is None or at == stage) and (kinds is None or kind in kinds):
                counter[upstream] += n
        return counter

    def total(self) -> int:
        return sum(self.counts.values())


PAYMENT_KINDS = ("pay", "list", "read", "refund")


def halves(counter: Counter) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items())) or "none"


# ---------------------------------------------------------------- the walk


class Demo:
    """The walk-through; `run()` returns True when everything held."""

    def __init__(self, args: argparse.Namespace, var_dir: Path, ports: dict[str, int]):
        self.args = args
        self.var_dir = var_dir
        self.ports = ports
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.proxy_url = self.urls["proxy"]
        self.quick = args.quick
        self.dwell = args.dwell if args.dwell is not None else (3.0 if self.quick else 6.0)
        self.env = {k: v for k, v in os.environ.items() if k not in SERVER_SETTINGS}
        self.env |= {
            "STRANGLER_VAR_DIR": str(var_dir),
            # Every customer registers and logs in; PBKDF2's cost is not what the demo shows.
            "STRANGLER_FAST_PASSWORD_HASHER": "1",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.steps_dir = self._steps_dir()
        self.step = steps_load(self.steps_dir)[STEP]
        self.problems: list[str] = []
        self.reconciles: list[str] = []
        self.stack: Stack | None = None
        self.load: Load | None = None
        self.staff: tuple[str, str] | None = None

    def _steps_dir(self) -> Path:
        if not self.quick:
            return STEPS_DIR
        # --quick: the same steps, with one payments contract in the gates instead of the file.
        steps_dir = self.var_dir / "demo-steps"
        shutil.copytree(STEPS_DIR, steps_dir, dirs_exist_ok=True)
        step_file = steps_dir / "step-1-extract-payments.toml"
        text = step_file.read_text()
        quick = text.replace(
            'paths = ["tests/contract/test_payments.py"]', f"paths = {json.dumps(QUICK_CONTRACT)}"
        )
        if quick == text:
            raise DemoFailed(f"cannot find the contract gate's paths in {step_file}")
        step_file.write_text(quick)
        return steps_dir

    # -------------------------------------------------------------- helpers

    def context(self) -> GateContext:
        return GateContext(step=self.step, proxy=self.admin(), environ=self.env,
                           var_dir=self.var_dir, say=lambda line: None)  # fmt: skip

    def admin(self) -> ProxyAdmin:
        """Return a client of the proxy's admin API, with the token the stack made in var."""
        return ProxyAdmin(self.proxy_url, environ=self.env, var_dir=self.var_dir)

    def check_alive(self) -> None:
        death = self.stack.death() if self.stack else None
        if death:
            raise DemoFailed(death)

    def playbook(self, *args: str, on_line=lambda line: None) -> int:
        """Run `strangler playbook ARGS`, its output indented; return its exit status."""
        argv = [sys.executable, "-m", "migrations_playbook.cli", "playbook", *args]
        argv += ["--proxy", self.proxy_url, "--var-dir", str(self.var_dir)]
        argv += ["--steps-dir", str(self.steps_dir)]
        say("$ strangler playbook " + " ".join(args))
        process = subprocess.Popen(  # noqa: S603 (argv built here)
            argv, cwd=PROJECT_ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        for line in process.stdout:
            # Progress bars redraw with carriage returns: show their last state only.
            shown = line.rstrip("\n").split("\r")[-1].rstrip()
            if shown:
                print(f"demo |   | {shown}", flush=True)
                on_line(shown)
        status = process.wait()
        if status != 0:
            self.problems.append(f"`strangler playbook {' '.join(args)}` exited {status}")
        return status

    def drained_reconcile(self, label: str) -> dict | None:
        """With the load paused: wait for the outbox to drain, then reconcile both halves."""
        assert self.load is not None
        self.load.pause()
        try:
            ctx = self.context()
            lag_gate = self.step.gates["outbox_lag"]
            deadline, zero = time.monotonic() + 90, 0
            while zero < 2:
                if time.monotonic() > deadline:
                    self.problems.append(f"{label}: the outbox did not drain within 90 s")
                    return None
                try:
                    behind = outbox_lag_measure(lag_gate, ctx)["messages"]
                except GateError as exc:
                    self.problems.append(f"{label}: {exc}")
                    return None
                zero = zero + 1 if behind == 0 else 0
                time.sleep(0.3)
            done = ctx.run_half(ROUTE, ["manage.py", "payments_reconcile", "--json"])
            try:
                report = json.loads(done.stdout)
            except ValueError:
                self.problems.append(f"{label}: reconcile failed: {done.stderr[-500:]}")
                return None
        finally:
            self.load.resume()
        exact = "exact" if report["exact"] else f"{len(report['differences'])} difference(s)"
        line = (f"{label}: reconcile {exact} (monolith {report['monolith_count']} payments, "
                f"payments service {report['service_count']})")  # fmt: skip
        say(line)
        self.reconciles.append(line)
        if not report["exact"]:
            self.problems.append(line)
            for difference in report["differences"][:5]:
                say(f"  difference: {difference}")
        return report

    def watch(self, stage: str, seconds: float) -> None:
        """Let the load run at this stage for `seconds`, then say who served what."""
        assert self.load is not None
        self.load.stage = stage
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            time.sleep(0.25)
        payments = self.load.served(stage=stage, kinds=PAYMENT_KINDS)
        say(f"at {stage} for {seconds:g} s: payments requests served by {halves(payments)}; "
            f"all requests {sum(self.load.served(stage=stage).values())}, "
            f"failed so far {len(self.load.failures)}")  # fmt: skip

    def wait_compared(self, at_least: int) -> None:
        """In shadow: let reads flow until the proxy has compared `at_least` of them."""
        admin, started, shown = self.admin(), time.monotonic(), -1
        while time.monotonic() - started < 60:
            self.check_alive()
            figures = admin.diffs(ROUTE)
            if figures["compared"] != shown:
                shown = figures["compared"]
                say(f"shadow: {figures['compared']} reads compared, {figures['diffs']} differed")
            if figures["compared"] >= at_least:
                return
            time.sleep(0.5)

    # -------------------------------------------------------------- the parts

    def start(self) -> None:
        heading(f"starting the stack of step {STEP} on the embedded default (no servers)")
        dropped = [name for name in SERVER_SETTINGS if os.environ.get(name)]
        if dropped:
            say(f"ignoring {', '.join(dropped)} from your environment: the demo shows the "
                "embedded default (`strangler up` uses them)")  # fmt: skip
        say(f"var dir {self.var_dir}: SQLite per service, the filesystem broker, logs")
        say(f"stack log: {self.var_dir / 'demo-stack.log'}")
        self.stack = Stack(var_dir=self.var_dir, ports=self.ports, env=self.env)
        took = self.stack.wait_ready(timeout=240)
        say(f"stack ready in {took:.1f} s")
        secret = self.var_dir / "identity-secret"
        if secret.exists():
            self.env["STRANGLER_IDENTITY_SECRET"] = secret.read_text().strip()

    def seed(self) -> None:
        heading("step 0: the monolith alone serves payments; seeding a little data")
        email, password = f"staff-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12)
        env = self.env | service_environment(
            service=MONOLITH, settings="monolith.settings", environ=self.env, var_dir=self.var_dir
        )
        env |= {"DJANGO_SUPERUSER_EMAIL": email, "DJANGO_SUPERUSER_PASSWORD": password}
        done = subprocess.run(
            [sys.executable, "manage.py", "createsuperuser", "--noinput"], cwd=PROJECT_ROOT,
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise DemoFailed(f"createsuperuser exited {done.returncode}: {done.stderr[-800:]}")
        self.staff = (email, password)
        say(f"staff account {email}")
        self.load = Load(self.proxy_url)
        customers = 10 if self.quick else 20
        for _ in range(customers):
            customer = self.load.register()
            if customer is not None and len(self.load.customers) <= customers // 2:
                self.load.buy(customer)
        seeded = self.load.served(kinds=("pay",))
        say(f"{len(self.load.customers)} customers registered, {sum(seeded.values())} orders "
            f"paid (served by {halves(seeded)})")  # fmt: skip
        say("starting the client load: list, read, order, pay, refund, through the proxy")
        self.load.start()
        self.watch("monolith", self.dwell)

    def walk_forward_by_hand(self) -> None:
        heading("walking step 1 forward, one stage at a time")
        if self.playbook("plan", str(STEP)) != 0:
            raise DemoFailed("the plan could not be made")
        min_compared = int(self.step.gates["shadow_diff"].options["min_compared"])
        for stage in self.step.rollout:
            heading(f"stage {stage.mode}")
            say(f"what changes: {WHAT_CHANGES.get(stage.mode, stage.mode)}")
            say(f"gates before it: {', '.join(stage.gates) or 'none'}")
            # Requests sent while the gates are checked are served by the previous stage.
            if self.playbook("apply", str(STEP), "--to", stage.mode) != 0:
                raise DemoFailed(f"a gate stopped the rollout before {stage.mode}")
            self.load.stage = stage.mode
            if stage.mode == "shadow":
                self.wait_compared(min_compared)
            self.watch(stage.mode, self.dwell)
            self.drained_reconcile(f"at {stage.mode}")

    def roll_back(self) -> None:
        heading("rolling step 1 back: traffic and ownership return to the monolith")
        say(f"what changes: {WHAT_CHANGES['monolith']}")
        self.load.stage = "rolling back"
        switched: list[float] = []

        def pause_once_switched(line: str) -> None:
            # Traffic keeps flowing through the switch; then the clients pause so the outbox can
            # drain to zero: under steady writes on the embedded broker, which polls, the lag
            # is rarely zero twice in a row (the playbook's drain condition).
            if f"{ROUTE}: back to monolith" in line:
                switched.append(time.monotonic())
            elif (
                switched
                and self.load.running.is_set()
                and (time.monotonic() - switched[0] > self.dwell / 2)
            ):
                say("  (the clients pause while the playbook waits for the outbox to drain)")
                self.load.pause()

        try:
            status = self.playbook("rollback", str(STEP), on_line=pause_once_switched)
        finally:
            self.load.resume()
        if status != 0:
            raise DemoFailed("the rollback did not complete")
        self.watch("rolled back", self.dwell)
        self.drained_reconcile("after the rollback")

    def walk_forward_on_its_own(self) -> None:
        heading("walking forward again, on its own: apply --auto (gates watched at each stage)")
        self.load.stage = "auto walk"
        dwell = f"{max(1.0, self.dwell / 2):g}"
        if self.playbook("apply", str(STEP), "--auto", "--dwell", dwell, "--interval", "1") != 0:
            raise DemoFailed("the automatic walk stopped")
        self.watch("extracted again", self.dwell)

    def summary(self) -> bool:
        heading("summary")
        load = self.load
        final = None
        if load is not None:
            load.stop()
            load.stage = "final"
            final = self.drained_reconcile("at the end")
            by_kind = Counter()
            for (_, kind, _), n in load.counts.items():
                by_kind[kind] += n
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items()))
            say(f"requests sent: {load.total()} ({kinds})")
            say(f"failed: {len(load.failures)}")
            for failure in load.failures[:10]:
                say(f"  {failure}")
            paid = load.served(kinds=("pay",))
            say(f"payments taken by each half: {halves(paid)}")
            say("payments requests by stage and half:")
            stages = list(dict.fromkeys(stage for stage, _, _ in load.counts))
            for stage in stages:
                say(f"  {stage:<16} {halves(load.served(stage=stage, kinds=PAYMENT_KINDS))}")
            self.problems += [f"request failed: {f}" for f in load.failures[:3]]
        for line in self.reconciles:
            say(f"  {line}")
        if final is None:
            self.problems.append("no final reconcile")
        death = self.stack.death() if self.stack else "the stack never started"
        if death:
            self.problems.append(death)
        if self.problems:
            say("RESULT: something did not hold:")
            for problem in self.problems:
                say(f"  - {problem}")
            return False
        say("RESULT: every request answered as expected, reconcile exact at every stage, "
            "every process up")  # fmt: skip
        return True

    def show_urls(self) -> None:
        heading("the stack is running")
        say(f"proxy      {self.proxy_url}/   (the API: /api/...)")
        say(f"dashboard  {self.proxy_url}/_strangler/   (it asks for the admin token: "
            f"{self.var_dir / 'admin-token'})")  # fmt: skip
        say(f"monolith   {self.urls['monolith']}/")
        say(f"payments   {self.urls['payments']}/")
        if self.load and self.load.customers:
            customer = self.load.customers[0]
            say(f"a customer: {customer.email} / {PASSWORD}; try")
            say(
                f"  curl -H 'Authorization: Bearer {customer.token}' {self.proxy_url}/api/payments/"
            )
        if self.staff:
            say(f"staff: {self.staff[0]} / {self.staff[1]}")
        say("`strangler playbook status --proxy ... --var-dir ...` works against it too")

    def stop(self) -> None:
        if self.load is not None:
            self.load.stopping.set()
        if self.stack is not None:
            say("stopping the stack ...")
            started = time.monotonic()
            self.stack.stop()
            say(f"stopped in {time.monotonic() - started:.1f} s")


# ---------------------------------------------------------------- the command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler demo",
        description="Walk the migration to step 1 and back on the embedded default, under load.",
    )
    parser.add_argument(
        "--var-dir",
        metavar="DIR",
        help="where the demo's stack keeps its state (default: ./var/demo); emptied first if a "
        "previous demo made it, refused if it holds anything else",
    )
    ending = parser.add_mutually_exclusive_group()
    ending.add_argument(
        "--keep-running",
        dest="exit",
        action="store_false",
        help="keep the stack running at the end until Ctrl-C (the default)",
    )
    ending.add_argument(
        "--exit",
        dest="exit",
        action="store_true",
        help="stop the stack at the end; exit 0 only if everything held",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorter stages, fewer customers, one payments contract per gate",
    )
    parser.add_argument(
        "--dwell",
        type=float,
        metavar="SECONDS",
        help="how long the load runs at each stage (6; --quick: 3)",
    )
    for name, port in PORTS.items():
        parser.add_argument(
            f"--{name}-port",
            type=int,
            metavar="PORT",
            help=f"port of {name} (default {port}, or a free one if taken)",
        )
    parser.set_defaults(exit=False)
    return parser


def prepare_var_dir(raw: str | None) -> Path:
    """Return an empty var dir for the demo, clearing one a previous demo left."""
    var_dir = Path(raw or "var/demo").resolve()
    if var_dir.exists() and any(var_dir.iterdir()):
        if not (var_dir / MARKER).exists():
            raise DemoFailed(f"{var_dir} is not empty and was not made by `strangler demo`; "
                             "choose another --var-dir or empty it")  # fmt: skip
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / MARKER).write_text("made by `strangler demo`; emptied by the next demo run\n")
    return var_dir


def choose_ports(args: argparse.Namespace) -> dict[str, int]:
    """Return each HTTP process's port: the flag's, else the default if free, else a free one."""
    ports = {}
    for name, default in PORTS.items():
        given = getattr(args, f"{name}_port")
        if given is not None:
            ports[name] = given
        elif port_free(default):
            ports[name] = default
        else:
            ports[name] = free_port()
            say(f"port {default} is taken: {name} listens on {ports[name]}")
    return ports


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run `strangler demo`; return the exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    # Explicitly: a shell that starts the demo in the background may have SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        var_dir = prepare_var_dir(args.var_dir)
    except DemoFailed as exc:
        print(f"strangler demo: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    demo = Demo(args, var_dir, choose_ports(args))
    ok = False
    try:
        try:
            demo.start()
            demo.seed()
            demo.walk_forward_by_hand()
            demo.roll_back()
            demo.walk_forward_on_its_own()
        except (DemoFailed, AdminCallError, requests.RequestException) as exc:
            demo.problems.append(str(exc))
            say(f"stopped: {exc}")
        ok = demo.summary()
        say(f"the walk-through took {time.monotonic() - started:.0f} s")
        if not args.exit and demo.stack is not None and demo.stack.death() is None:
            demo.show_urls()
            say("Ctrl-C stops it")
            while demo.stack.death() is None:
                time.sleep(0.5)
            say(demo.stack.death() or "")
    except KeyboardInterrupt:
        say("interrupted")
        demo.stop()
        return 0 if ok and not args.exit else 130
    demo.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
