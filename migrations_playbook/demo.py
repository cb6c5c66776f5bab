"""`strangler demo`: the migration walk-through, on the embedded default, in a few minutes.

    strangler demo [--var-dir DIR] [--keep-running | --exit] [--quick] [--dwell S]
                   [--proxy-port P] [--monolith-port P] [--payments-port P] [--users-port P]

What it does, saying so as it goes:

1. starts the stack of step 2 (`strangler up --step 2`, as a child process: the monolith, the
   payments and the users services, every route on the monolith) on the embedded default:
   SQLite per service and the filesystem broker under the var dir, no servers;
2. seeds a little data (a staff account, customers with paid orders) while the monolith alone
   serves everything (step 0);
3. runs a small client load in the background through the proxy: customers list and read their
   payments, place orders, pay, and now and then refund; they read their profile, log in on
   another device and log it out, and new customers keep registering;
4. walks step 1 (payments) with `strangler playbook apply 1 --to MODE`: shadow, canary:10,
   canary:50, extracted, printing what changed, the gates with their figures and which half
   served the requests of each stage (the proxy's `X-Strangler-Upstream` answers); rolls it back
   (`strangler playbook rollback 1`), reconcile exact, and walks forward again on its own
   (`apply 1 --auto`), gates watched at every stage;
5. walks step 2 (users, and identity with them) the same way: by hand, back, forward on its own;
6. prints a summary (requests sent and failed, payments and registrations on each half,
   reconcile) and keeps the stack running with its URLs until Ctrl-C, or stops it (`--exit`).

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
import time
from collections import Counter
from pathlib import Path

import requests

from .admin import AdminCallError, ProxyAdmin
from .databases import MONOLITH, service_environment
from .demo_load import PASSWORD, PAYMENT_KINDS, USER_KINDS, Load, halves
from .gates import GateContext, GateError, outbox_lag_measure
from .stepfile import STEPS_DIR, Step, steps_load
from .up_process import UpProcess, up_command

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MARKER = ".strangler-demo"
#: The steps the demo walks, in order, and the stack it starts (the last one's).
STEPS = (1, 2)
STACK_STEP = STEPS[-1]
#: Per step: the route whose reads shadow compares, and the requests it moves (for figures).
ROUTE = {1: "payments", 2: "users"}
KINDS = {1: PAYMENT_KINDS, 2: USER_KINDS}
PORTS = {"proxy": 8000, "monolith": 8001, "payments": 8101, "users": 8102}
#: The servers the demo never uses: it shows the embedded default.
SERVER_SETTINGS = ("DATABASE_URL", "BROKER_URL", "REDIS_URL")
#: Per step, one contract for the gates of --quick (a whole file runs in ~10 s per stage).
QUICK_CONTRACT = {
    1: ('paths = ["tests/contract/test_payments.py"]', [
        "tests/contract/test_payments.py::"
        "test_paying_charges_the_orders_total_and_keeps_only_the_last_four_digits",
    ]),
    2: ('paths = ["tests/contract/test_users.py", "tests/contract/test_auth.py"]', [
        "tests/contract/test_users.py::"
        "test_each_login_issues_its_own_token_and_logout_revokes_only_that_one",
    ]),
}  # fmt: skip
WHAT_CHANGES = {
    1: {
        "shadow": "the monolith still serves every payments request; the proxy also sends each "
        "read (GET) to the payments service, off the request path, and compares the two answers",
        "canary:10": "about 10% of customers (sticky: the same ones every time) are now served "
        "by the payments service; their payments reach the monolith as payment.* events",
        "canary:50": "about half the customers are served by the payments service",
        "extracted": "the payments service serves every payments request; the monolith keeps "
        "its copy up to date from events, so rolling back loses nothing",
        "monolith": "every payments request is back on the monolith",
    },
    2: {
        "shadow": "the monolith still registers, logs in and serves profiles; the proxy also "
        "sends each profile read to the users service and compares the answers",
        "canary:10": "about 10% of customers (sticky) are served by the users service, and so is "
        "every login and registration from about 10% of addresses; each half issues tokens and "
        "learns the other's (digests only) by user.* events, so a token works on both",
        "canary:50": "about half the customers and addresses are served by the users service",
        "extracted": "the users service serves every users and auth request and owns identity: "
        "the proxy asks it who a token is; the monolith keeps its users up to date from events "
        "and trusts the identity the proxy signs for its own routes (orders)",
        "monolith": "every users request is back on the monolith, which owns identity again; "
        "tokens the service issued keep working (their digests reached the monolith)",
    },
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
    """`strangler up --step 2` as a child process; its log in the var dir, its readiness shown."""

    def __init__(self, *, var_dir: Path, ports: dict[str, int], env: dict[str, str]):
        command = up_command(step=STACK_STEP, var_dir=var_dir, ports=ports, ready_timeout=120)
        super().__init__(
            command, env, var_dir / "demo-stack.log", error=DemoFailed, on_line=self._progress
        )

    def _progress(self, line: str) -> None:
        # The runner's own lines (ready, skipping): progress while it comes up.
        runner_says = line.startswith("strangler ") and not self.ready.is_set()
        if runner_says and (" ready " in line or "all " in line or "skipping" in line):
            say("  " + line.split("|", 1)[-1].strip())


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
        self.steps: dict[int, Step] = steps_load(self.steps_dir)
        self.problems: list[str] = []
        self.reconciles: list[str] = []
        self.stack: Stack | None = None
        self.load: Load | None = None
        self.staff: tuple[str, str] | None = None

    def _steps_dir(self) -> Path:
        if not self.quick:
            return STEPS_DIR
        # --quick: the same steps, with one contract in each gate instead of the files.
        steps_dir = self.var_dir / "demo-steps"
        shutil.copytree(STEPS_DIR, steps_dir, dirs_exist_ok=True)
        for number, (paths, quick_paths) in QUICK_CONTRACT.items():
            step_file = next(steps_dir.glob(f"step-{number}-*.toml"))
            text = step_file.read_text()
            quick = text.replace(paths, f"paths = {json.dumps(quick_paths)}")
            if quick == text:
                raise DemoFailed(f"cannot find the contract gate's paths in {step_file}")
            step_file.write_text(quick)
        return steps_dir

    # -------------------------------------------------------------- helpers

    def context(self, step: Step) -> GateContext:
        return GateContext(step=step, proxy=self.admin(), environ=self.env,
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

    def drained_reconcile(self, label: str, step: Step) -> dict | None:
        """With the load paused: wait for the outbox to drain, then reconcile both halves."""
        assert self.load is not None
        self.load.pause()
        reconcile = step.gates["reconcile"].options
        try:
            ctx = self.context(step)
            lag_gate = step.gates["outbox_lag"]
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
            done = ctx.run_half(reconcile["service"], ["manage.py", *reconcile["command"]])
            try:
                report = json.loads(done.stdout)
            except ValueError:
                self.problems.append(f"{label}: reconcile failed: {done.stderr[-500:]}")
                return None
        finally:
            self.load.resume()
        exact = "exact" if report["exact"] else f"{len(report['differences'])} difference(s)"
        what, service = ROUTE[step.number], reconcile["service"]
        line = (f"{label}: reconcile {exact} (monolith {report['monolith_count']} {what}, "
                f"{service} service {report['service_count']})")  # fmt: skip
        say(line)
        self.reconciles.append(line)
        if not report["exact"]:
            self.problems.append(line)
            for difference in report["differences"][:5]:
                say(f"  difference: {difference}")
        return report

    def watch(self, stage: str, seconds: float, step: int) -> None:
        """Let the load run at this stage for `seconds`, then say who served what."""
        assert self.load is not None
        self.load.stage = stage
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            time.sleep(0.25)
        moved = self.load.served(stage=stage, kinds=KINDS[step])
        say(f"at {stage} for {seconds:g} s: {ROUTE[step]} requests served by {halves(moved)}; "
            f"all requests {sum(self.load.served(stage=stage).values())}, "
            f"failed so far {len(self.load.failures)}")  # fmt: skip

    def wait_compared(self, at_least: int, route: str) -> None:
        """In shadow: let reads flow until the proxy has compared `at_least` of them."""
        admin, started, shown = self.admin(), time.monotonic(), -1
        while time.monotonic() - started < 60:
            self.check_alive()
            figures = admin.diffs(route)
            if figures["compared"] != shown:
                shown = figures["compared"]
                say(f"shadow: {figures['compared']} reads compared, {figures['diffs']} differed")
            if figures["compared"] >= at_least:
                return
            time.sleep(0.5)

    # -------------------------------------------------------------- the parts

    def start(self) -> None:
        heading(f"starting the stack of step {STACK_STEP} on the embedded default (no servers); "
                "every route on the monolith")  # fmt: skip
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
        heading("step 0: the monolith alone serves everything; seeding a little data")
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
        say("starting the client load through the proxy: list, read, order, pay, refund; "
            "profile, log in and out on a second device, new customers registering")  # fmt: skip
        self.load.start()
        self.watch("monolith", self.dwell, STEPS[0])

    def review(self, number: int) -> None:
        heading(f"step {number}: what it changes (strangler playbook diff {number - 1} {number})")
        if self.playbook("diff", str(number - 1), str(number)) != 0:
            raise DemoFailed(f"the diff of step {number} could not be made")

    def walk_forward_by_hand(self, number: int) -> None:
        step = self.steps[number]
        heading(f"walking step {number} forward, one stage at a time")
        if self.playbook("plan", str(number)) != 0:
            raise DemoFailed("the plan could not be made")
        min_compared = int(step.gates["shadow_diff"].options["min_compared"])
        for stage in step.rollout:
            label = f"step {number} {stage.mode}"
            heading(f"stage {label}")
            say(f"what changes: {WHAT_CHANGES[number].get(stage.mode, stage.mode)}")
            say(f"gates before it: {', '.join(stage.gates) or 'none'}")
            # Requests sent while the gates are checked are served by the previous stage.
            if self.playbook("apply", str(number), "--to", stage.mode) != 0:
                raise DemoFailed(f"a gate stopped the rollout before {stage.mode}")
            self.load.stage = label
            if stage.mode == "shadow":
                self.wait_compared(min_compared, ROUTE[number])
            self.watch(label, self.dwell, number)
            self.drained_reconcile(f"at {label}", step)

    def roll_back(self, number: int) -> None:
        step = self.steps[number]
        heading(f"rolling step {number} back: traffic and ownership return to the monolith")
        say(f"what changes: {WHAT_CHANGES[number]['monolith']}")
        self.load.stage = f"step {number} rolling back"
        route = step.routes[0].name
        switched: list[float] = []

        def pause_once_switched(line: str) -> None:
            # Traffic keeps flowing through the switch; then the clients pause so the outbox can
            # drain to zero: under steady writes on the embedded broker, which polls, the lag
            # is rarely zero twice in a row (the playbook's drain condition).
            if f"{route}: back to monolith" in line:
                switched.append(time.monotonic())
            elif (
                switched
                and self.load.running.is_set()
                and (time.monotonic() - switched[0] > self.dwell / 2)
            ):
                say("  (the clients pause while the playbook waits for the outbox to drain)")
                self.load.pause()

        try:
            status = self.playbook("rollback", str(number), on_line=pause_once_switched)
        finally:
            self.load.resume()
        if status != 0:
            raise DemoFailed("the rollback did not complete")
        self.watch(f"step {number} rolled back", self.dwell, number)
        self.drained_reconcile(f"after the rollback of step {number}", step)

    def walk_forward_on_its_own(self, number: int) -> None:
        heading(f"walking step {number} forward again, on its own: apply --auto "
                "(gates watched at each stage)")  # fmt: skip
        self.load.stage = f"step {number} auto walk"
        dwell = f"{max(1.0, self.dwell / 2):g}"
        if self.playbook("apply", str(number), "--auto", "--dwell", dwell, "--interval", "1"):
            raise DemoFailed("the automatic walk stopped")
        self.watch(f"step {number} extracted again", self.dwell, number)

    def summary(self) -> bool:
        heading("summary")
        load = self.load
        final = None
        if load is not None:
            load.stop()
            load.stage = "final"
            final = [self.drained_reconcile(f"at the end, step {n}", self.steps[n])
                     for n in STEPS]  # fmt: skip
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
            registered = load.served(kinds=("register",))
            say(f"registrations taken by each half: {halves(registered)}")
            say(f"logins served by each half: {halves(load.served(kinds=('login',)))}")
            say("payments | users requests by stage and half:")
            stages = list(dict.fromkeys(stage for stage, _, _ in load.counts))
            for stage in stages:
                say(f"  {stage:<26} {halves(load.served(stage=stage, kinds=PAYMENT_KINDS))} | "
                    f"{halves(load.served(stage=stage, kinds=USER_KINDS))}")  # fmt: skip
            self.problems += [f"request failed: {f}" for f in load.failures[:3]]
        for line in self.reconciles:
            say(f"  {line}")
        if final is None or None in final:
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
        say(f"users      {self.urls['users']}/")
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
        description="Walk the migration 0 -> 1 -> 2 (each step back and forward again) on the "
        "embedded default, under load.",
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
        help="shorter stages, fewer customers, one contract per gate, and only the last step "
        "rolled back and walked forward again",
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
            for number in STEPS:
                demo.review(number)
                demo.walk_forward_by_hand(number)
                # --quick rolls back and walks forward again the last step only.
                if not args.quick or number == STEPS[-1]:
                    demo.roll_back(number)
                    demo.walk_forward_on_its_own(number)
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
