"""GET /api/users/: the staff listing, paginated and searchable."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db
URL = "/api/users/"


def test_listing_without_a_token_is_a_401(api_client):
    response = api_client.get(URL)

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_listing_as_a_non_staff_user_is_a_403(auth_client):
    response = auth_client.get(URL)

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_staff_see_every_user_ordered_by_id_in_the_list_shape(staff_client, staff, make_user):
    others = [make_user() for _ in range(3)]

    response = staff_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    assert [u["id"] for u in body["results"]] == sorted([staff.id, *(u.id for u in others)])
    assert all("password" not in u for u in body["results"])


def test_listing_is_paginated(settings, staff_client, make_user):
    for _ in range(24):
        make_user()

    first = staff_client.get(URL).json()
    second = staff_client.get(first["next"]).json()

    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert first["previous"] is None
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert second["previous"] is not None
    ids = [u["id"] for u in first["results"] + second["results"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 25


@pytest.mark.parametrize("page", ["99", "0", "abc"])
def test_listing_an_out_of_range_page_is_a_404(staff_client, page):
    response = staff_client.get(URL, {"page": page})

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_search_matches_email_or_full_name_in_any_case(staff_client, make_user):
    ada = make_user(email="ada@analytical.org", full_name="Ada Lovelace")
    grace = make_user(email="grace@navy.mil", full_name="Grace Hopper")
    make_user(email="alan@bletchley.uk", full_name="Alan Turing")

    by_name = staff_client.get(URL, {"search": "LOVE"}).json()
    by_email = staff_client.get(URL, {"search": "Navy.MIL"}).json()

    assert [u["id"] for u in by_name["results"]] == [ada.id]
    assert [u["id"] for u in by_email["results"]] == [grace.id]


def test_search_with_several_words_requires_each(staff_client, make_user):
    ada = make_user(email="ada@analytical.org", full_name="Ada Lovelace")
    make_user(email="ada@other.org", full_name="Ada Byron")

    response = staff_client.get(URL, {"search": "ada analytical"})

    assert [u["id"] for u in response.json()["results"]] == [ada.id]


def test_search_with_no_match_is_an_empty_page(staff_client):
    response = staff_client.get(URL, {"search": "zzz-nobody"})

    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_blank_search_lists_everyone(staff_client, make_user):
    make_user()

    response = staff_client.get(URL, {"search": "   "})

    assert response.json()["count"] == 2


def test_search_with_sql_wildcards_is_literal(staff_client, make_user):
    make_user(email="percent@example.com")

    response = staff_client.get(URL, {"search": "%"})

    assert response.json()["count"] == 0
