"""Users: registering, logging in and out, one's own profile, and the staff listing."""

from __future__ import annotations

import pytest

from .helpers import PASSWORD, assert_error, assert_page, login, register, unique_email

pytestmark = pytest.mark.contract

USER_KEYS = {"id", "email", "full_name", "is_staff", "date_joined"}


# ---------------------------------------------------------------- register
def test_registering_returns_the_new_user_without_its_password(api):
    email = unique_email()

    response = api.post(
        "/api/users/", json={"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"}
    )

    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == USER_KEYS
    assert user["email"] == email
    assert user["full_name"] == "Ada Lovelace"
    assert user["is_staff"] is False
    assert isinstance(user["id"], int)


def test_registering_lowercases_the_domain_and_trims_spaces(api):
    local = unique_email().split("@")[0]

    user = register(api, email=f"  {local}@CONTRACT.Example.COM ")

    assert user["email"] == f"{local}@contract.example.com"
    assert user["full_name"] == ""


def test_an_email_taken_in_another_case_is_refused(api):
    email = unique_email()
    register(api, email=email)

    response = api.post("/api/users/", json={"email": email.upper(), "password": PASSWORD})

    assert_error(response, 400, "validation_error", fields=("email",))


def test_registering_without_email_or_password_names_both(api):
    response = api.post("/api/users/", json={})

    assert_error(response, 400, "validation_error", fields=("email", "password"))


@pytest.mark.parametrize("password", ["short1", "12345678901", "password123"])
def test_a_weak_password_is_refused(api, password):
    response = api.post("/api/users/", json={"email": unique_email(), "password": password})

    assert_error(response, 400, "validation_error", fields=("password",))


def test_a_bad_email_is_refused(api):
    response = api.post("/api/users/", json={"email": "not-an-email", "password": PASSWORD})

    assert_error(response, 400, "validation_error", fields=("email",))


def test_registering_as_staff_is_refused_not_ignored(api):
    response = api.post(
        "/api/users/", json={"email": unique_email(), "password": PASSWORD, "is_staff": True}
    )

    body = assert_error(response, 400, "validation_error", fields=("is_staff",))
    assert body["fields"]["is_staff"] == ["This field is read-only."]


def test_an_unknown_key_at_registration_is_refused(api):
    response = api.post(
        "/api/users/", json={"email": unique_email(), "password": PASSWORD, "fullname": "Ada"}
    )

    body = assert_error(response, 400, "validation_error", fields=("fullname",))
    assert body["fields"]["fullname"] == ["Unknown field."]


def test_a_body_that_is_not_json_is_malformed(api):
    response = api.post(
        "/api/users/", data=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert_error(response, 400, "malformed_request")


def test_a_form_encoded_body_is_an_unsupported_media_type(api):
    response = api.post("/api/users/", data={"email": unique_email(), "password": PASSWORD})

    assert_error(response, 415, "unsupported_media_type")


def test_a_body_over_one_mebibyte_is_too_large(api):
    response = api.post(
        "/api/users/",
        data=b'{"full_name": "' + b"x" * 1_100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 413, "payload_too_large")


def test_a_nul_character_is_a_400_naming_the_field(api):
    response = api.post(
        "/api/users/",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Ada\u0000Byron"},
    )

    assert_error(response, 400, "validation_error", fields=("full_name",))


def test_a_body_nested_too_deep_is_malformed_not_a_crash(api):
    response = api.post(
        "/api/users/",
        data=b"[" * 100_000 + b"]" * 100_000,
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 400, "malformed_request")


def test_registering_with_a_bad_token_is_refused(api):
    response = api.with_token("0" * 40).post(
        "/api/users/", json={"email": unique_email(), "password": PASSWORD}
    )

    assert_error(response, 401, "authentication_failed")


# ---------------------------------------------------------------- log in, log out
def test_logging_in_twice_issues_two_tokens_and_ignores_email_case(api):
    user = register(api)

    first = login(api, user["email"], PASSWORD)
    second = login(api, user["email"].upper(), PASSWORD)

    assert first != second  # one per device: logging out on one leaves the other
    for token in (first, second):
        assert api.with_token(token).get("/api/users/me/").json()["id"] == user["id"]


@pytest.mark.parametrize("which", ["wrong password", "unknown email"])
def test_wrong_credentials_get_one_401_that_reveals_nothing(api, which):
    user = register(api)
    email = user["email"] if which == "wrong password" else unique_email()
    password = "not-the-Passw0rd" if which == "wrong password" else PASSWORD

    response = api.post("/api/auth/token/", json={"email": email, "password": password})

    assert_error(response, 401, "authentication_failed")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_logging_in_without_a_password_names_it(api):
    response = api.post("/api/auth/token/", json={"email": unique_email()})

    assert_error(response, 400, "validation_error", fields=("password",))


def test_logging_in_ignores_a_stale_authorization_header(api):
    user = register(api)

    response = api.with_token("0" * 40).post(
        "/api/auth/token/", json={"email": user["email"], "password": PASSWORD}
    )

    assert response.status_code == 200, response.text


def test_logging_out_revokes_the_token_at_once_and_a_new_login_issues_another(customer, api):
    response = customer.api.post("/api/auth/logout/")

    assert response.status_code == 204
    assert_error(customer.api.get("/api/users/me/"), 401, "authentication_failed")
    assert login(api, customer.email, PASSWORD) != customer.token


def test_each_login_issues_its_own_token_and_logout_revokes_only_that_one(customer, api):
    other_device = api.with_token(login(api, customer.email, PASSWORD))
    assert other_device.token != customer.token

    assert customer.api.post("/api/auth/logout/").status_code == 204

    assert_error(customer.api.get("/api/users/me/"), 401, "authentication_failed")
    assert other_device.get("/api/users/me/").json()["id"] == customer.id


def test_guessing_a_password_is_throttled_per_account_with_retry_after(api):
    user = register(api)
    guesses = [
        api.post("/api/auth/token/", json={"email": user["email"], "password": f"guess-{n}-Pw"})
        for n in range(10)
    ]
    assert [r.status_code for r in guesses] == [401] * 10, [r.text for r in guesses]

    # Once throttled, even the right password is refused until the window ends.
    response = api.post("/api/auth/token/", json={"email": user["email"], "password": PASSWORD})

    assert_error(response, 429, "throttled")
    assert int(response.headers["Retry-After"]) >= 1


def test_logout_only_answers_post(customer):
    assert_error(customer.api.get("/api/auth/logout/"), 405, "method_not_allowed")


# ---------------------------------------------------------------- own profile
def test_me_shows_the_callers_own_profile(customer):
    response = customer.api.get("/api/users/me/")

    assert response.status_code == 200
    assert response.json()["id"] == customer.id
    assert response.json()["email"] == customer.email
    assert set(response.json()) == USER_KEYS


def test_me_without_a_token_is_401_with_a_bearer_challenge(api):
    response = api.get("/api/users/me/")

    assert_error(response, 401, "not_authenticated")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_me_with_a_bad_token_is_401(api):
    response = api.with_token("f" * 40).get("/api/users/me/")

    assert_error(response, 401, "authentication_failed")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_patching_the_full_name_changes_only_it(customer):
    response = customer.api.patch("/api/users/me/", json={"full_name": "Grace Hopper"})

    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "Grace Hopper"
    assert response.json()["email"] == customer.email
    assert customer.api.get("/api/users/me/").json()["full_name"] == "Grace Hopper"


def test_an_empty_patch_changes_nothing(customer):
    before = customer.api.get("/api/users/me/").json()

    response = customer.api.patch("/api/users/me/", json={})

    assert response.status_code == 200
    assert response.json() == before


@pytest.mark.parametrize("field,value", [("is_staff", True), ("id", 1), ("date_joined", "2020")])
def test_patching_a_read_only_field_is_refused(customer, field, value):
    response = customer.api.patch("/api/users/me/", json={field: value})

    body = assert_error(response, 400, "validation_error", fields=(field,))
    assert body["fields"][field] == ["This field is read-only."]
    assert customer.api.get("/api/users/me/").json()["is_staff"] is False


def test_taking_another_users_email_is_refused(customer, stranger):
    response = customer.api.patch("/api/users/me/", json={"email": stranger.email.upper()})

    assert_error(response, 400, "validation_error", fields=("email",))


def test_a_new_password_needs_the_current_one(customer):
    response = customer.api.patch("/api/users/me/", json={"password": "n3w-Passw0rd-contract"})

    assert_error(response, 400, "validation_error", fields=("current_password",))


def test_a_wrong_current_password_is_a_400_not_a_401(customer):
    response = customer.api.patch(
        "/api/users/me/",
        json={"password": "n3w-Passw0rd-contract", "current_password": "wrong-Passw0rd"},
    )

    assert_error(response, 400, "validation_error", fields=("current_password",))
    assert customer.api.get("/api/users/me/").status_code == 200


def test_changing_the_password_revokes_every_token_and_switches_the_login(customer, api):
    new_password = "n3w-Passw0rd-contract"
    other_device = api.with_token(login(api, customer.email, PASSWORD))

    response = customer.api.patch(
        "/api/users/me/", json={"password": new_password, "current_password": PASSWORD}
    )

    assert response.status_code == 200, response.text
    assert_error(customer.api.get("/api/users/me/"), 401, "authentication_failed")
    assert_error(other_device.get("/api/users/me/"), 401, "authentication_failed")
    fresh = login(api, customer.email, new_password)
    assert fresh not in (customer.token, other_device.token)
    refused = api.post("/api/auth/token/", json={"email": customer.email, "password": PASSWORD})
    assert_error(refused, 401, "authentication_failed")


def test_put_on_me_is_not_offered(customer):
    response = customer.api.put("/api/users/me/", json={"full_name": "x"})

    assert_error(response, 405, "method_not_allowed")


# ---------------------------------------------------------------- staff listing
def test_listing_users_anonymously_is_401(api):
    assert_error(api.get("/api/users/"), 401, "not_authenticated")


def test_listing_users_as_a_customer_is_403(customer):
    assert_error(customer.api.get("/api/users/"), 403, "permission_denied")


def test_staff_list_users_as_a_page(staff, customer):
    response = staff.get("/api/users/")

    assert response.status_code == 200, response.text
    body = response.json()
    assert_page(body)
    assert body["count"] >= 1
    assert all(set(user) == USER_KEYS for user in body["results"])


def test_staff_search_needs_every_word_in_the_email_or_name(staff, make_customer):
    tag = unique_email("tag").split("@")[0].replace("-", "")
    ada = make_customer(full_name=f"Ada Lovelace {tag}")
    make_customer(full_name=f"Ada Byron {tag}")

    response = staff.get("/api/users/", params={"search": f"LOVELACE {tag}"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert_page(body)
    assert [user["id"] for user in body["results"]] == [ada.id]
    assert body["count"] == 1
    assert body["next"] is None and body["previous"] is None


def test_a_users_page_past_the_end_is_404(staff):
    tag = unique_email("none").split("@")[0]

    response = staff.get("/api/users/", params={"search": tag, "page": 2})

    assert_error(response, 404, "not_found")
