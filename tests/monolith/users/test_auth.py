"""POST /api/auth/token/ and POST /api/auth/logout/: token login and logout."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from knox.models import AuthToken

from .conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db
LOGIN = "/api/auth/token/"
LOGOUT = "/api/auth/logout/"
ME = "/api/users/me/"


def login(client, email, password=PASSWORD):
    return client.post(LOGIN, {"email": email, "password": password}, format="json")


def test_login_returns_a_token_that_authenticates_the_user(api_client, make_user):
    user = make_user(email="ada@example.com")

    response = login(api_client, "ada@example.com")

    assert response.status_code == 200
    token = response.json()["token"]
    assert set(response.json()) == {"token"}
    assert AuthToken.objects.filter(user=user).count() == 1
    me = bearer(token).get(ME)
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"


def test_login_ignores_the_case_of_the_email(api_client, make_user):
    make_user(email="Ada@Example.com")

    response = login(api_client, "  aDA@example.COM")

    assert response.status_code == 200


def test_each_login_makes_a_new_token_for_its_device_and_records_last_login(api_client, user):
    first = login(api_client, user.email).json()["token"]
    second = login(api_client, user.email).json()["token"]

    assert first != second
    assert bearer(first).get(ME).status_code == 200
    assert bearer(second).get(ME).status_code == 200
    user.refresh_from_db()
    assert user.last_login is not None


def test_the_database_never_holds_a_token_in_clear(api_client, user):
    from django.db import connection

    token = login(api_client, user.email).json()["token"]

    stored = AuthToken.objects.get(user=user)
    assert token not in (stored.digest, stored.token_key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        rows = repr(cursor.fetchall())
    # Not even the first characters, which knox would keep as a lookup handle.
    assert token[:8] not in rows


def test_a_token_expires_after_the_configured_lifetime(api_client, user, settings):
    settings.STRANGLER_TOKEN_TTL_S = 3600
    token = login(api_client, user.email).json()["token"]
    stored = AuthToken.objects.get(user=user)
    assert abs(stored.expiry - timezone.now() - dt.timedelta(hours=1)) < dt.timedelta(minutes=1)

    AuthToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))

    response = bearer(token).get(ME)
    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": "The token has expired; log in again.",
    }


def test_the_default_token_lifetime_is_seven_days(api_client, user):
    login(api_client, user.email)

    left = AuthToken.objects.get(user=user).expiry - timezone.now()
    assert dt.timedelta(days=7) - dt.timedelta(minutes=1) < left <= dt.timedelta(days=7)


def test_beyond_the_per_user_cap_the_oldest_tokens_are_revoked(api_client, user, settings):
    settings.STRANGLER_TOKENS_PER_USER = 2
    first, second, third = (login(api_client, user.email).json()["token"] for _ in range(3))

    assert bearer(first).get(ME).status_code == 401
    assert bearer(second).get(ME).status_code == 200
    assert bearer(third).get(ME).status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [("ada@example.com", "wrong-Passw0rd"), ("nobody@example.com", PASSWORD)],
)
def test_login_with_wrong_credentials_is_a_401_that_does_not_say_which(
    api_client, make_user, email, password
):
    make_user(email="ada@example.com")

    response = login(api_client, email, password)

    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": "Unable to log in with the given email and password.",
    }
    assert response["WWW-Authenticate"] == "Bearer"
    assert not AuthToken.objects.exists()


def test_login_of_an_inactive_user_is_a_401(api_client, make_user):
    make_user(email="gone@example.com", is_active=False)

    response = login(api_client, "gone@example.com")

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_login_without_fields_names_each_missing_one(api_client):
    response = api_client.post(LOGIN, {}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "email": ["This field is required."],
        "password": ["This field is required."],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ada@example.com"}, "password"),
        ({"password": PASSWORD}, "email"),
        ({"email": 12, "password": PASSWORD}, "email"),
        ({"email": "ada@example.com", "password": ["x"]}, "password"),
        ({"email": "ada@example.com", "password": ""}, "password"),
        ({"email": "ada@example.com", "password": PASSWORD, "remember": True}, "remember"),
    ],
)
def test_login_with_a_missing_or_wrong_field_names_it(api_client, body, field):
    response = api_client.post(LOGIN, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_login_with_malformed_json_is_a_400(api_client):
    response = api_client.post(LOGIN, data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_request"


def test_login_works_even_with_a_stale_bearer_header(user):
    stale = bearer("0" * 40)

    response = login(stale, user.email)

    assert response.status_code == 200


def test_logout_revokes_the_token_it_was_called_with_and_no_other(api_client, user):
    token = login(api_client, user.email).json()["token"]
    other_device = login(api_client, user.email).json()["token"]
    client = bearer(token)

    response = client.post(LOGOUT)

    assert response.status_code == 204
    assert response.content == b""
    assert AuthToken.objects.filter(user=user).count() == 1
    assert bearer(other_device).get(ME).status_code == 200
    after = client.get(ME)
    assert after.status_code == 401
    assert after.json() == {"error": "authentication_failed", "detail": "Invalid token."}


def test_login_after_logout_issues_a_new_token(api_client, user):
    old = login(api_client, user.email).json()["token"]
    bearer(old).post(LOGOUT)

    new = login(api_client, user.email).json()["token"]

    assert new != old
    assert bearer(new).get(ME).status_code == 200
    assert bearer(old).get(ME).status_code == 401


def test_logout_leaves_other_users_tokens_alone(client_for, make_user):
    ada, bob = make_user(), make_user()
    bob_client = client_for(bob)

    assert client_for(ada).post(LOGOUT).status_code == 204

    assert bob_client.get(ME).status_code == 200


def test_logout_without_a_token_is_a_401(api_client):
    response = api_client.post(LOGOUT)

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_logout_with_get_is_not_allowed(auth_client):
    response = auth_client.get(LOGOUT)

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
