"""POST /api/auth/token/ is throttled per account (failures) and per client address (attempts).

Each test performs the attack it is named after against the real API and cache (Redis under
`make test`, else the database cache), with the documented defaults unless it says otherwise.
"""

from __future__ import annotations

import pytest
from django.test import override_settings
from knox.models import AuthToken

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/api/auth/token/"


def attempt(client, email, password, address="198.51.100.7", **headers):
    return client.post(
        LOGIN, {"email": email, "password": password}, format="json", REMOTE_ADDR=address, **headers
    )


def assert_throttled(response, wording: str) -> None:
    assert response.status_code == 429, response.json()
    body = response.json()
    assert body["error"] == "throttled"
    assert wording in body["detail"]
    assert int(response["Retry-After"]) >= 1
    assert f"{response['Retry-After']} s" in body["detail"]


def test_guessing_one_accounts_password_is_stopped_after_ten_failures(api_client, make_user):
    victim = make_user(email="victim@example.com")

    failures = [attempt(api_client, "victim@example.com", f"guess-{n}") for n in range(10)]
    assert [r.status_code for r in failures] == [401] * 10

    # The eleventh guess is refused before the password is looked at: even the right one.
    assert_throttled(attempt(api_client, "Victim@Example.com", PASSWORD), "this account")
    assert not AuthToken.objects.filter(user=victim).exists()


def test_guessing_from_many_addresses_still_counts_against_the_account(api_client, make_user):
    make_user(email="victim@example.com")
    for n in range(10):
        attempt(api_client, "victim@example.com", "wrong", address=f"203.0.113.{n + 1}")

    assert_throttled(
        attempt(api_client, "victim@example.com", PASSWORD, address="203.0.113.99"),
        "this account",
    )


def test_an_unknown_email_is_throttled_like_a_real_one_so_429_reveals_nothing(api_client):
    for _ in range(10):
        assert attempt(api_client, "nobody@example.com", "wrong").status_code == 401

    assert_throttled(attempt(api_client, "nobody@example.com", "wrong"), "this account")


def test_successful_logins_never_lock_the_owner_out(api_client, make_user):
    make_user(email="ada@example.com")

    answers = [attempt(api_client, "ada@example.com", PASSWORD).status_code for _ in range(15)]

    assert answers == [200] * 15


def test_one_accounts_throttle_leaves_other_accounts_alone(api_client, make_user):
    make_user(email="victim@example.com")
    make_user(email="ada@example.com")
    for _ in range(11):
        attempt(api_client, "victim@example.com", "wrong")

    assert attempt(api_client, "ada@example.com", PASSWORD).status_code == 200


@override_settings(STRANGLER_LOGIN_ADDRESS_ATTEMPTS=5)
def test_spraying_many_accounts_from_one_address_is_stopped(api_client, make_user):
    make_user(email="ada@example.com")
    answers = [attempt(api_client, f"user{n}@example.com", "Summer2026!") for n in range(5)]
    assert [r.status_code for r in answers] == [401] * 5

    assert_throttled(attempt(api_client, "ada@example.com", PASSWORD), "your address")
    # Another address is a different budget.
    assert attempt(api_client, "ada@example.com", PASSWORD, address="192.0.2.50").status_code == 200


@override_settings(STRANGLER_LOGIN_ADDRESS_ATTEMPTS=3)
def test_successes_count_against_the_address_too(api_client, make_user):
    make_user(email="ada@example.com")
    assert [attempt(api_client, "ada@example.com", PASSWORD).status_code for _ in range(3)] == [
        200
    ] * 3

    assert_throttled(attempt(api_client, "ada@example.com", PASSWORD), "your address")


@override_settings(STRANGLER_LOGIN_ADDRESS_ATTEMPTS=3)
def test_a_forged_forwarded_for_from_an_untrusted_peer_does_not_reset_the_count(api_client):
    for n in range(3):
        attempt(api_client, "a@example.com", "x", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}")

    response = attempt(api_client, "a@example.com", "x", HTTP_X_FORWARDED_FOR="10.9.9.200")

    assert_throttled(response, "your address")


@override_settings(STRANGLER_LOGIN_ADDRESS_ATTEMPTS=3)
def test_behind_the_proxy_each_client_address_has_its_own_budget(api_client):
    # The proxy (a trusted loopback peer) appends the address it saw; what precedes is the
    # client's own writing and is ignored.
    for n in range(3):
        attempt(
            api_client, "a@example.com", "x", address="127.0.0.1",
            HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 198.51.100.20",
        )  # fmt: skip

    same_client = attempt(
        api_client, "a@example.com", "x", address="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.20"
    )
    other_client = attempt(
        api_client, "a@example.com", "x", address="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.21"
    )

    assert_throttled(same_client, "your address")
    assert other_client.status_code == 401


@override_settings(STRANGLER_LOGIN_ACCOUNT_FAILURES=2, STRANGLER_LOGIN_ACCOUNT_WINDOW_S=60)
def test_the_account_rule_follows_its_settings(api_client):
    attempt(api_client, "a@example.com", "x")
    attempt(api_client, "a@example.com", "x")

    response = attempt(api_client, "a@example.com", "x")

    assert_throttled(response, "this account")
    assert int(response["Retry-After"]) <= 60


@override_settings(STRANGLER_LOGIN_ACCOUNT_FAILURES=0, STRANGLER_LOGIN_ADDRESS_ATTEMPTS=0)
def test_a_limit_of_zero_turns_its_rule_off(api_client):
    answers = {attempt(api_client, "a@example.com", "x").status_code for _ in range(15)}

    assert answers == {401}
