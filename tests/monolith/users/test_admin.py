"""The Django admin for users: email-based pages that save through the services."""

from __future__ import annotations

import pytest
from django.test import Client

from monolith.users.models import User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_user) -> Client:
    client = Client()
    client.force_login(make_user(email="root@example.com", is_staff=True, is_superuser=True))
    return client


def test_admin_changelist_searches_by_email(admin_client, make_user):
    make_user(email="findme@example.com", full_name="Find Me")

    response = admin_client.get("/admin/users/user/", {"q": "FINDME"})

    assert response.status_code == 200
    assert b"findme@example.com" in response.content


def test_admin_add_creates_a_user_through_registration(admin_client):
    response = admin_client.post(
        "/admin/users/user/add/",
        {
            "email": "new@Example.com",
            "full_name": "New",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new@example.com")
    assert user.check_password(PASSWORD)
    assert response["Location"].endswith(f"/admin/users/user/{user.pk}/change/")


def test_admin_add_refuses_an_email_taken_in_another_case(admin_client, make_user):
    make_user(email="taken@example.com")

    response = admin_client.post(
        "/admin/users/user/add/",
        {"email": "TAKEN@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200
    assert b"A user with this email address already exists." in response.content
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_admin_add_page_renders(admin_client):
    response = admin_client.get("/admin/users/user/add/")

    assert response.status_code == 200
    assert b'name="email"' in response.content
    assert b'name="username"' not in response.content


def test_admin_change_saves_profile_and_flags(admin_client, make_user):
    user = make_user(email="old@example.com")
    page = admin_client.get(f"/admin/users/user/{user.pk}/change/")
    assert page.status_code == 200

    response = admin_client.post(
        f"/admin/users/user/{user.pk}/change/",
        {"email": "fresh@example.com", "full_name": "Fresh", "is_active": "on", "is_staff": "on"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert (user.email, user.full_name, user.is_staff) == ("fresh@example.com", "Fresh", True)


def test_admin_set_password_goes_through_the_validators(admin_client, make_user):
    user = make_user()
    url = f"/admin/users/user/{user.pk}/password/"

    weak = admin_client.post(url, {"password1": "123", "password2": "123"})
    strong = admin_client.post(
        url, {"password1": "brand-New-phrase9", "password2": "brand-New-phrase9"}
    )

    assert weak.status_code == 200
    assert strong.status_code == 302
    user.refresh_from_db()
    assert user.check_password("brand-New-phrase9")
