"""POST /api/users/: registration."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
URL = "/api/users/"


def test_registration_returns_the_user_without_the_password(api_client):
    response = api_client.post(
        URL,
        {"email": "ada@example.com", "password": PASSWORD, "full_name": "Ada Lovelace"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "full_name", "is_staff", "date_joined"}
    assert body["email"] == "ada@example.com"
    assert body["full_name"] == "Ada Lovelace"
    assert body["is_staff"] is False
    assert PASSWORD not in response.content.decode()
    user = get_user_model().objects.get(pk=body["id"])
    assert user.check_password(PASSWORD)
    assert user.is_active


def test_registration_without_full_name_stores_an_empty_one(api_client):
    response = api_client.post(
        URL, {"email": "bob@example.com", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["full_name"] == ""


def test_registration_lower_cases_the_domain_and_trims_spaces(api_client):
    response = api_client.post(
        URL, {"email": "  Bob@EXAMPLE.com ", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["email"] == "Bob@example.com"


@pytest.mark.parametrize("taken", ["foo@x.com", "Foo@x.com", "FOO@X.COM"])
def test_registration_with_an_email_taken_in_any_case_is_refused(api_client, make_user, taken):
    make_user(email=taken)

    response = api_client.post(URL, {"email": "Foo@x.com", "password": PASSWORD}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["fields"]["email"] == ["A user with this email address already exists."]
    assert get_user_model().objects.filter(email__iexact="foo@x.com").count() == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1!", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("83920174659", "This password is entirely numeric."),
        ("grace.hopper.x", "The password is too similar to the email address."),
    ],
)
def test_registration_with_a_weak_password_is_refused_with_the_validators_message(
    api_client, password, message
):
    response = api_client.post(
        URL, {"email": "grace.hopper.x@example.com", "password": password}, format="json"
    )

    assert response.status_code == 400
    assert message in response.json()["fields"]["password"]
    assert not get_user_model().objects.exists()


def test_registration_without_email_and_password_names_both(api_client):
    response = api_client.post(URL, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"email", "password"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": ["a@b.com"], "password": PASSWORD}, "email"),
        ({"email": "a@b.com", "password": {"x": 1}}, "password"),
        ({"email": "a@b.com", "password": PASSWORD, "full_name": None}, "full_name"),
        ({"email": "a@b.com", "password": PASSWORD, "full_name": "x" * 151}, "full_name"),
        ({"email": "a@b.com", "password": "p" * 257}, "password"),
        ({"email": f"{'a' * 250}@b.com", "password": PASSWORD}, "email"),
    ],
)
def test_registration_with_a_wrong_type_or_size_names_the_field(api_client, body, field):
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]


@pytest.mark.parametrize("key", ["is_staff", "id", "date_joined"])
def test_registration_refuses_read_only_fields(api_client, key):
    response = api_client.post(
        URL, {"email": "eve@example.com", "password": PASSWORD, key: True}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {key: ["This field is read-only."]}
    assert not get_user_model().objects.exists()


def test_registration_refuses_unknown_fields_alongside_missing_ones(api_client):
    response = api_client.post(URL, {"fullname": "typo"}, format="json")

    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields["fullname"] == ["Unknown field."]
    assert {"email", "password"} <= set(fields)


def test_registration_with_malformed_json_is_a_400(api_client):
    response = api_client.post(URL, data='{"email": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_request"


def test_registration_with_a_json_list_is_a_400(api_client):
    response = api_client.post(URL, data="[1, 2]", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


def test_registration_as_a_form_post_is_unsupported_media_type(api_client):
    response = api_client.post(URL, {"email": "a@b.com", "password": PASSWORD}, format="multipart")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_a_refused_registration_headlines_the_first_reason(api_client, make_user):
    make_user(email="dup@example.com")

    response = api_client.post(
        URL, {"email": "dup@example.com", "password": PASSWORD}, format="json"
    )

    assert response.json()["detail"] == "A user with this email address already exists."
