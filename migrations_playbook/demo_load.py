"""The demo's clients: a few customers using the shop through the proxy, pausable.

They list and read their payments, place orders from the catalogue, pay and now and then refund
(what step 1 moves); and they keep registering, logging in again, reading their profile and
logging a device out (what step 2 moves), so both walks run under the traffic they move.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

CARD_OK = "4242424242424242"
PASSWORD = "demo-Passw0rd-strangler"  # noqa: S105 (the demo customers' shown password)


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
                "list": 200, "read": 200, "refund": 200, "me": 200, "logout": 204,
                "revoked": 401}  # fmt: skip

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
        self.turn = 0

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
        return response.json() if response.content else {}

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
        self.identity(customer)
        # Now and then refund a payment old enough for both halves to know it.
        if (
            self.refundable
            and time.monotonic() - self.refundable[0][2] > 3
            and sum(n for (_, kind, _), n in self.counts.items() if kind == "pay") % 4 == 0
        ):
            owner, payment_id, _ = self.refundable.pop(0)
            self.call("refund", "POST", f"/api/payments/{payment_id}/refund/", token=owner.token)

    def identity(self, customer: Customer) -> None:
        """Read one's profile; every few rounds log in on another device and log it out again,
        and now and then a new customer registers: step 2 moves exactly these requests."""
        self.turn += 1
        self.call("me", "GET", "/api/users/me/", token=customer.token)
        if self.turn % 3 == 0:
            device = self.call("login", "POST", "/api/auth/token/",
                               json={"email": customer.email, "password": PASSWORD})  # fmt: skip
            if device is not None:
                self.call("me", "GET", "/api/users/me/", token=device["token"])
                self.call("logout", "POST", "/api/auth/logout/", token=device["token"])
                # Refused at once, whichever half served the logout.
                self.call("revoked", "GET", "/api/users/me/", token=device["token"])
        if self.turn % 7 == 0:
            self.register()

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
USER_KINDS = ("register", "login", "me", "logout", "revoked")


def halves(counter: Counter) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items())) or "none"
