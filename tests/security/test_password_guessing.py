"""Attack: guess passwords at full speed, one account at a time or many accounts from one host.

Against real gunicorn monoliths on PostgreSQL (behind the proxy where the client would be): the
throttles hold across worker processes, on Redis and on the database cache alike, and a client
cannot buy a fresh budget by writing its own X-Forwarded-For.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from .halves_stack import proxy_in_front_of, register_and_login
from .halves_stack import stack as stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "s3cret-Passw0rd-guess"


def guess(url: str, email: str, password: str, **headers: str) -> requests.Response:
    return requests.post(
        f"{url}/api/auth/token/",
        json={"email": email, "password": password},
        headers=headers,
        timeout=10,
    )


def assert_throttled(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "throttled"
    assert int(response.headers["Retry-After"]) >= 1


def test_guessing_one_accounts_password_through_the_proxy_stops_after_ten_failures(stack):
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    register_and_login(stack.proxy_url, email, PASSWORD)

    answers = [guess(stack.proxy_url, email, f"guess-{n}").status_code for n in range(10)]
    assert answers == [401] * 10

    # The eleventh try is refused before the password is checked: even the right one.
    assert_throttled(guess(stack.proxy_url, email, PASSWORD))


@pytest.mark.parametrize("cache", ["redis", "database"])
def test_the_count_is_shared_by_every_worker_of_the_monolith(stack, cache):
    if cache == "redis" and not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL (make test sets it)")
    redis_url = os.environ["REDIS_URL"] if cache == "redis" else ""
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    with (
        tempfile.TemporaryDirectory() as workdir,
        stack.monolith_with(Path(workdir), workers=2, REDIS_URL=redis_url) as url,
    ):
        register_and_login(url, email, PASSWORD)
        # New connections each time: gunicorn hands them to either worker.
        answers = [guess(url, email, f"guess-{n}").status_code for n in range(10)]
        assert answers == [401] * 10
        # Were each worker counting alone, this would take twenty failures.
        assert_throttled(guess(url, email, PASSWORD))


def test_spraying_many_accounts_from_one_address_is_stopped(stack):
    # The default budget is 600 attempts per 5 minutes per address; 10 keeps this test short and
    # below the proxy's own login rule (20 failures per address), so the monolith's rule answers.
    stack.forget_login_counters()  # earlier attacks came from this machine's address too
    with (
        tempfile.TemporaryDirectory() as workdir,
        stack.monolith_with(Path(workdir), STRANGLER_LOGIN_ADDRESS_ATTEMPTS="10") as url,
        proxy_in_front_of(url, Path(workdir), server_env=stack.server_env) as proxy_url,
    ):
        spray = [
            guess(proxy_url, f"user{n}-{uuid.uuid4().hex[:6]}@example.com", "Summer2026!")
            for n in range(10)
        ]
        assert {r.status_code for r in spray} == {401}

        assert_throttled(guess(proxy_url, f"one-more-{uuid.uuid4().hex[:6]}@example.com", "x"))


def test_a_forged_x_forwarded_for_buys_no_fresh_budget(stack):
    stack.forget_login_counters()
    with (
        tempfile.TemporaryDirectory() as workdir,
        stack.monolith_with(Path(workdir), STRANGLER_LOGIN_ADDRESS_ATTEMPTS="5") as url,
        proxy_in_front_of(url, Path(workdir), server_env=stack.server_env) as proxy_url,
    ):
        answers = [
            guess(proxy_url, "a@example.com", "x", **{"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(5)
        ]
        assert {r.status_code for r in answers} == {401}

        # The proxy appends the address it saw; the client's own entries are ignored.
        forged = guess(proxy_url, "a@example.com", "x", **{"X-Forwarded-For": "198.51.100.99"})

        assert_throttled(forged)
