"""From step 2 the monolith trusts the identity the proxy signs for it, as the services do."""

from __future__ import annotations

import pytest

from tests.extracted.signing import SECRET, SignedClient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def identity_settings(settings):
    settings.STRANGLER_IDENTITY_SECRET = SECRET
    settings.STRANGLER_USER_REPLICA_WAIT_MS = 0


def test_an_identity_signed_for_the_monolith_serves_the_users_own_orders(user):
    response = SignedClient(user.pk, audience="monolith").get("/api/orders/")

    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_an_identity_signed_for_another_half_is_refused(user):
    response = SignedClient(user.pk, audience="payments").get("/api/orders/")

    assert response.status_code == 401
    assert "another service" in response.json()["detail"]


def test_a_user_registered_on_the_other_half_a_moment_ago_gets_a_503_to_retry():
    response = SignedClient(1_000_000_123, audience="monolith").get("/api/orders/")

    assert response.status_code == 503
    assert response.json()["error"] == "user_not_replicated"


def test_an_inactive_user_is_refused_even_with_a_signed_identity(make_user):
    user = make_user(is_active=False)

    response = SignedClient(user.pk, audience="monolith").get("/api/users/me/")

    assert response.status_code == 401


def test_a_token_the_proxy_forwarded_without_vouching_is_refused_here_too(client_for, user):
    client = client_for(user)

    forwarded = client.get("/api/orders/", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert forwarded.status_code == 401
    assert forwarded.json()["detail"] == "Invalid token."
    assert client.get("/api/orders/").status_code == 200  # asked directly: checked here
