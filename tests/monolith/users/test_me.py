"""GET and PATCH /api/users/me/: one's own profile."""

from __future__ import annotations

import pytest

from .conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db
ME = "/api/users/me/"


def test_me_shows_the_callers_own_profile(client_for, make_user):
    ada = make_user(email="ada@example.com", full_name="Ada")
    make_user(email="bob@example.com")

    response = client_for(ada).get(ME)

    assert response.status_code == 200
    assert response.json() == {
        "id": ada.id,
        "email": "ada@example.com",
        "full_name": "Ada",
        "is_staff": False,
        "date_joined": response.json()["date_joined"],
    }


@pytest.mark.parametrize("method", ["get", "patch"])
def test_me_without_a_token_is_a_401(api_client, method):
    response = getattr(api_client, method)(ME, {}, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b", "Token abc"])
def test_me_with_a_bad_authorization_header_is_refused(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get(ME)

    # An unknown scheme ("Token") is simply not ours: the caller is anonymous.
    assert response.status_code == 401
    assert response.json()["error"] in {"authentication_failed", "not_authenticated"}


def test_me_of_an_inactive_user_with_a_valid_token_is_a_401(client_for, make_user):
    user = make_user()
    client = client_for(user)
    user.is_active = False
    user.save()

    response = client.get(ME)

    assert response.status_code == 401


def test_patch_changes_full_name_and_email(auth_client, user):
    response = auth_client.patch(
        ME, {"full_name": "Ada Lovelace", "email": "ada@EXAMPLE.com"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada Lovelace"
    assert response.json()["email"] == "ada@example.com"
    user.refresh_from_db()
    assert (user.email, user.full_name) == ("ada@example.com", "Ada Lovelace")


def test_patch_with_an_empty_body_changes_nothing(auth_client, user):
    before = user.updated_at

    response = auth_client.patch(ME, {}, format="json")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.updated_at == before


def test_patch_may_change_the_case_of_ones_own_email(auth_client, make_user):
    client_user = auth_client.get(ME).json()
    upper = client_user["email"].upper().replace("EXAMPLE.COM", "example.com")

    response = auth_client.patch(ME, {"email": upper}, format="json")

    assert response.status_code == 200
    assert response.json()["email"] == upper


def test_patch_to_an_email_taken_in_another_case_is_refused(auth_client, user, make_user):
    make_user(email="taken@example.com")

    response = auth_client.patch(ME, {"email": "TAKEN@example.com"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "email": ["A user with this email address already exists."]
    }
    user.refresh_from_db()
    assert user.email != "TAKEN@example.com"


def test_patch_password_with_the_current_one_changes_it_and_revokes_every_token(client_for, user):
    this_device, other_device = client_for(user), client_for(user)

    response = this_device.patch(
        ME, {"password": "n3w-Long-passphrase", "current_password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    assert "password" not in response.json()
    user.refresh_from_db()
    assert user.check_password("n3w-Long-passphrase")
    # Whoever learned the old password (or stole a token) is out, on every device.
    assert this_device.get(ME).status_code == 401
    assert other_device.get(ME).status_code == 401


def test_a_password_change_tells_the_proxy_after_commit(
    client_for, user, django_capture_on_commit_callbacks, monkeypatch
):
    from monolith.users import services

    published = []
    monkeypatch.setattr(services, "revocation_publish", lambda **kw: published.append(kw))
    client = client_for(user)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.patch(
            ME, {"password": "n3w-Long-passphrase", "current_password": PASSWORD}, format="json"
        )
        assert published == []  # nothing before commit: a re-resolved token would be cached

    for callback in callbacks:
        callback()
    assert {"user_id": user.pk} in published


def test_a_profile_change_without_a_new_password_keeps_the_tokens(auth_client):
    assert auth_client.patch(ME, {"full_name": "Ada"}, format="json").status_code == 200
    assert auth_client.get(ME).status_code == 200


def test_patch_password_without_the_current_one_is_refused(auth_client, user):
    response = auth_client.patch(ME, {"password": "n3w-Long-passphrase"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "current_password": ["Give your current password to set a new one."]
    }
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_patch_password_with_a_wrong_current_one_is_refused(auth_client, user):
    response = auth_client.patch(
        ME, {"password": "n3w-Long-passphrase", "current_password": "guess"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "current_password": ["Your current password is not correct."]
    }
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_patch_to_a_weak_password_is_refused_and_nothing_changes(auth_client, user):
    response = auth_client.patch(
        ME,
        {"password": "123", "current_password": PASSWORD, "full_name": "Changed"},
        format="json",
    )

    assert response.status_code == 400
    assert "This password is entirely numeric." in response.json()["fields"]["password"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert user.full_name != "Changed"


@pytest.mark.parametrize(
    ("key", "value"),
    [("id", 999), ("is_staff", True), ("date_joined", "2020-01-01T00:00:00Z")],
)
def test_patch_of_a_read_only_field_is_refused_naming_it(auth_client, user, key, value):
    response = auth_client.patch(ME, {key: value, "full_name": "X"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {key: ["This field is read-only."]}
    user.refresh_from_db()
    assert not user.is_staff
    assert user.full_name != "X"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"is_superuser": True}, "is_superuser"),
        ({"email": "nope"}, "email"),
        ({"email": None}, "email"),
        ({"full_name": ["a"]}, "full_name"),
        ({"full_name": "x" * 151}, "full_name"),
        ({"password": 5, "current_password": PASSWORD}, "password"),
    ],
)
def test_patch_with_a_bad_field_names_it(auth_client, body, field):
    response = auth_client.patch(ME, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_patch_with_malformed_json_is_a_400(auth_client):
    response = auth_client.patch(ME, data="{", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_request"


def test_put_on_me_is_not_allowed(auth_client):
    response = auth_client.put(ME, {"full_name": "x"}, format="json")

    assert response.status_code == 405


def test_a_user_cannot_reach_another_users_profile_through_me(client_for, make_user):
    ada, bob = make_user(full_name="Ada"), make_user(full_name="Bob")

    client_for(ada).patch(ME, {"full_name": "Hacked"}, format="json")

    bob.refresh_from_db()
    assert bob.full_name == "Bob"
    assert client_for(bob).get(ME).json()["id"] == bob.id


def test_token_of_one_user_never_shows_another(make_user):
    from monolith.users.services import token_create

    ada, bob = make_user(), make_user()
    token = token_create(user=ada)

    assert bearer(token).get(ME).json()["id"] == ada.id != bob.id
