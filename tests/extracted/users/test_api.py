"""The users service answers the monolith's users API: same JSON, same errors, same security."""

from __future__ import annotations

import pytest
from knox.models import AuthToken

from extracted.users.models import User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

USER_KEYS = {"id", "email", "full_name", "is_staff", "date_joined"}
START = 1_000_000_000


def _login(client, email, password=PASSWORD):
    return client.post("/api/auth/token/", {"email": email, "password": password}, format="json")


def test_registering_returns_the_user_with_an_id_from_the_services_range(api_client):
    response = api_client.post(
        "/api/users/",
        {"email": "ada@EXAMPLE.com", "password": PASSWORD, "full_name": "Ada"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert set(response.json()) == USER_KEYS
    assert response.json()["email"] == "ada@example.com"
    assert response.json()["id"] >= START


def test_an_email_taken_in_another_case_is_a_400_naming_the_email(api_client, user):
    response = api_client.post(
        "/api/users/", {"email": user.email.upper(), "password": PASSWORD}, format="json"
    )

    assert response.status_code == 400
    taken = ["A user with this email address already exists."]
    assert response.json()["fields"] == {"email": taken}


def test_a_weak_password_is_refused_in_the_monoliths_words(api_client):
    response = api_client.post(
        "/api/users/", {"email": "weak@example.com", "password": "password123"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"]["password"] == ["This password is too common."]


def test_a_login_issues_a_token_that_the_service_checks_by_its_digest(api_client, user):
    response = _login(api_client, user.email.upper())

    assert response.status_code == 200
    token = response.json()["token"]
    assert not AuthToken.objects.filter(digest=token).exists()  # a digest, never the token
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get("/api/users/me/").json()["id"] == user.pk


def test_wrong_credentials_are_one_401_with_a_bearer_challenge(api_client, user):
    response = _login(api_client, user.email, "wrong-Passw0rd")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "authentication_failed"


def test_guessing_a_password_is_throttled_per_account(api_client, user):
    for _ in range(10):
        assert _login(api_client, user.email, "wrong-Passw0rd").status_code == 401

    response = _login(api_client, user.email)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_the_signed_identity_gives_the_request_the_users_row(signed_for, user):
    response = signed_for(user).patch("/api/users/me/", {"full_name": "Ada L"}, format="json")

    assert response.status_code == 200, response.json()
    assert User.objects.get(pk=user.pk).full_name == "Ada L"


def test_an_identity_signed_for_another_service_is_refused(user):
    from tests.extracted.signing import SignedClient

    response = SignedClient(user.pk, audience="monolith").get("/api/users/me/")

    assert response.status_code == 401
    assert "another service" in response.json()["detail"]


def test_an_identity_for_a_user_not_replicated_yet_is_a_503_to_retry(settings):
    from tests.extracted.signing import SignedClient

    response = SignedClient(424242, audience="users").get("/api/users/me/")

    assert response.status_code == 503
    assert response.json()["error"] == "user_not_replicated"


def test_changing_the_password_revokes_every_token(api_client, bearer_for, user):
    client, other = bearer_for(user), bearer_for(user)

    response = client.patch(
        "/api/users/me/",
        {"password": "N3w-Passw0rd!", "current_password": PASSWORD},
        format="json",
    )

    assert response.status_code == 200
    assert client.get("/api/users/me/").status_code == 401
    assert other.get("/api/users/me/").status_code == 401
    assert _login(api_client, user.email, "N3w-Passw0rd!").status_code == 200


def test_a_new_password_needs_the_current_one(bearer_for, user):
    client = bearer_for(user)

    response = client.patch("/api/users/me/", {"password": "N3w-Passw0rd!"}, format="json")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"current_password"}


def test_logout_revokes_only_the_token_it_was_made_with(bearer_for, user):
    one, two = bearer_for(user), bearer_for(user)

    assert one.post("/api/auth/logout/").status_code == 204

    assert one.get("/api/users/me/").status_code == 401
    assert two.get("/api/users/me/").status_code == 200


def test_logout_through_the_proxys_identity_revokes_the_presented_token(user):
    from extracted.users.services import token_create
    from tests.extracted.signing import SignedClient

    token = token_create(user=user)
    client = SignedClient(user.pk, audience="users")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.post("/api/auth/logout/").status_code == 204
    assert not AuthToken.objects.filter(user=user).exists()


def test_only_staff_list_users_and_search_needs_every_word(bearer_for, make_user, user):
    staff = make_user(is_staff=True)
    make_user(email="ada.lovelace@example.com", full_name="Ada Lovelace")

    assert bearer_for(user).get("/api/users/").status_code == 403
    page = bearer_for(staff).get("/api/users/", {"search": "ADA love"}).json()

    assert [u["email"] for u in page["results"]] == ["ada.lovelace@example.com"]
    assert set(page) == {"count", "next", "previous", "results"}


def test_health_and_schema_answer(api_client):
    assert api_client.get("/healthz").status_code == 200
    assert api_client.get("/readyz").status_code == 200
    assert "/api/users/me/" in api_client.get("/api/schema/").content.decode()


def test_a_token_the_proxy_forwarded_without_vouching_is_refused_whatever_this_half_knows(
    bearer_for, user
):
    client = bearer_for(user)  # a valid token here: the other half may have revoked it

    forwarded = client.get("/api/users/me/", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert forwarded.status_code == 401
    assert forwarded.json() == {"error": "authentication_failed", "detail": "Invalid token."}
    assert client.get("/api/users/me/").status_code == 200  # asked directly: checked here
