"""What a client of the API has: an HTTP client, test users, and a bounded wait.

Black box only: this package imports requests, pytest and the standard library, never the
project (`test_self_check.py` enforces it), so it runs unchanged against any deployment.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import requests

T = TypeVar("T")

PASSWORD = "s3cret-Passw0rd-contract"
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_TIMEOUT = "4000000000000119"
REQUEST_TIMEOUT_S = 15.0


class Api:
    """A requests session bound to one base URL and, optionally, one Bearer token."""

    def __init__(self, base_url: str, *, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = requests.Session()
        # A fresh connection per request: a pooled one can be closed by the server's keep-alive
        # timeout just as it is reused, and a POST that dies that way cannot safely be retried.
        self.session.headers["Connection"] = "close"

    def with_token(self, token: str | None) -> Api:
        """Return a client for the same deployment that presents `token` (None: anonymous)."""
        return Api(self.base_url, token=token)

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; `json=` bodies go out as application/json."""
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        return self.session.request(method, self.url(path), headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class Customer:
    """A registered, logged-in user and a client that acts as them."""

    id: int
    email: str
    password: str
    token: str
    api: Api

    # ---------------------------------------------------------------- shortcuts
    def place_order(self, items: list[dict] | None = None) -> dict:
        """Place an order (2 of the catalogue's first product by default); assert 201."""
        items = items or [{"sku": catalogue(self.api)[0]["sku"], "quantity": 2}]
        response = self.api.post("/api/orders/", json={"items": items})
        assert response.status_code == 201, response.text
        return response.json()

    def pay(
        self, order_id: str, *, card: str = CARD_OK, key: str | None = None
    ) -> requests.Response:
        """Pay `order_id` with `card` under Idempotency-Key `key` (a fresh one by default)."""
        return self.api.post(
            "/api/payments/",
            json={"order_id": order_id, "card_number": card},
            headers={"Idempotency-Key": key or new_key()},
        )

    def order(self, order_id: str) -> dict:
        response = self.api.get(f"/api/orders/{order_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    def order_status(self, order_id: str) -> str:
        return self.order(order_id)["status"]

    def payments_of(self, order_id: str) -> list[dict]:
        """Return every payment of `order_id` the caller can see."""
        response = self.api.get("/api/payments/", params={"order_id": order_id})
        assert response.status_code == 200, response.text
        return response.json()["results"]


_catalogues: dict[str, list[dict]] = {}
_catalogue_lock = threading.Lock()


def catalogue(api: Api) -> list[dict]:
    """Return the deployment's products (every page of the public `GET /api/products/`).

    Fetched once per base URL. Orders name these skus; their prices are the catalogue's.
    """
    with _catalogue_lock:
        if api.base_url not in _catalogues:
            anonymous, products, path = Api(api.base_url), [], "/api/products/?page_size=100"
            while path:
                response = anonymous.get(path)
                assert response.status_code == 200, response.text
                body = response.json()
                products += body["results"]
                path = body["next"] and body["next"][body["next"].index("/api/") :]
            assert len(products) >= 2, f"the contract needs 2 products to order, found {products}"
            _catalogues[api.base_url] = products
        return _catalogues[api.base_url]


def order_total(api: Api, items: list[dict]) -> str:
    """Return what `items` (sku, quantity) cost at the catalogue's prices, as "12.50"."""
    prices = {product["sku"]: Decimal(product["unit_price"]) for product in catalogue(api)}
    total = sum((prices[item["sku"]] * item["quantity"] for item in items), Decimal(0))
    return f"{total:.2f}"


def unique_email(prefix: str = "cx") -> str:
    """Return an email no other test (or earlier run against the same deployment) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}@contract.example.com"


def new_key() -> str:
    """Return a fresh Idempotency-Key."""
    return f"contract-{uuid.uuid4()}"


def register(api: Api, *, email: str | None = None, password: str = PASSWORD, **extra) -> dict:
    """Register an account and return the user body; assert 201."""
    body = {"email": email or unique_email(), "password": password, **extra}
    response = api.post("/api/users/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def login(api: Api, email: str, password: str) -> str:
    """Log in and return the token; assert 200."""
    response = api.post("/api/auth/token/", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def new_customer(api: Api, **extra) -> Customer:
    """Register and log in a fresh user."""
    user = register(api, **extra)
    token = login(api, user["email"], PASSWORD)
    return Customer(
        id=user["id"],
        email=user["email"],
        password=PASSWORD,
        token=token,
        api=api.with_token(token),
    )


def assert_error(
    response: requests.Response, status: int, error: str, *, fields: tuple[str, ...] = ()
) -> dict:
    """Assert `response` is the JSON error contract with `status`, `error` and named `fields`."""
    assert response.status_code == status, f"{response.status_code} {response.text[:500]}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    assert body.get("error") == error, body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    for name in fields:
        assert name in body.get("fields", {}), f"field {name!r} not named in {body}"
    return body


def assert_page(body: dict) -> None:
    """Assert `body` is one page of a list: {"count", "next", "previous", "results"}."""
    assert set(body) == {"count", "next", "previous", "results"}, body
    assert isinstance(body["count"], int)
    assert isinstance(body["results"], list)


def race(fn: Callable[[], T], *, times: int) -> list[T]:
    """Call `fn` from `times` threads released at the same instant; return their results."""
    barrier = threading.Barrier(times, timeout=REQUEST_TIMEOUT_S)

    def runner(_: int) -> T:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(runner, range(times)))


def eventually(fn: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call `fn` until it returns without an AssertionError, for at most `timeout` seconds.

    The one way to wait in this suite: effects that cross a service boundary (an order that
    shows `paid` once the payments service's event arrives) are polled, never slept on. Returns
    what `fn` returned; on timeout, re-raises `fn`'s last AssertionError, saying how long it
    waited.
    """
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            return fn()
        except AssertionError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"still failing after {timeout:g}s ({attempts} attempts): {exc}"
                ) from exc
        # Back off gently: fast when the effect is immediate, cheap when it takes seconds.
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.5)
