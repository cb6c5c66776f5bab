"""The user services called directly: the rules hold for every caller, not only the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken

from monolith.users import services
from monolith.users.models import User
from service_kit.errors import DomainError

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_user_register_creates_an_active_non_staff_user():
    user = services.user_register(email="ada@Example.COM", password=PASSWORD, full_name="Ada")

    assert (user.email, user.full_name, user.is_active, user.is_staff) == (
        "ada@example.com",
        "Ada",
        True,
        False,
    )
    assert user.check_password(PASSWORD)


def test_user_register_that_loses_a_race_for_the_email_is_a_400(monkeypatch, make_user):
    make_user(email="race@example.com")
    real = services._email_in_use
    calls = []

    def blind_first_check(**kwargs):
        # The pre-check runs before the rival commits; the unique index still catches it.
        calls.append(kwargs)
        return len(calls) > 1 and real(**kwargs)

    monkeypatch.setattr(services, "_email_in_use", blind_first_check)

    with pytest.raises(DomainError) as caught:
        services.user_register(email="RACE@example.com", password=PASSWORD)

    assert caught.value.fields == {"email": [services.EMAIL_TAKEN]}
    assert len(calls) == 2  # the pre-check, then the check after the IntegrityError
    assert User.objects.filter(email__iexact="race@example.com").count() == 1


def test_user_register_failure_leaves_an_outer_transaction_usable(monkeypatch, make_user):
    make_user(email="race@example.com")
    monkeypatch.setattr(services, "_email_in_use", lambda **kw: False)

    with transaction.atomic():
        # Not an email clash after all (the monkeypatch says so): the error is re-raised.
        with pytest.raises(IntegrityError):
            services.user_register(email="race@example.com", password=PASSWORD)
        assert User.objects.count() == 1


def test_user_update_refuses_fields_it_does_not_manage(user):
    with pytest.raises(DomainError) as caught:
        services.user_update(user=user, date_joined=None, username="x")

    assert caught.value.fields == {
        "date_joined": ["This field cannot be changed."],
        "username": ["This field cannot be changed."],
    }


def test_user_update_with_a_stale_instance_compares_against_the_stored_row(user):
    stale = User.objects.get(pk=user.pk)
    services.user_update(user=user, full_name="New")

    saved = services.user_update(user=stale, full_name="Newer")

    user.refresh_from_db()
    assert saved.full_name == user.full_name == "Newer"


def test_user_update_writes_nothing_when_nothing_changes(user):
    before = user.updated_at

    services.user_update(user=user, full_name=user.full_name, email=user.email)

    user.refresh_from_db()
    assert user.updated_at == before


def test_user_update_can_set_flags_and_a_password_for_trusted_callers(user):
    saved = services.user_update(
        user=user,
        require_current_password=False,
        is_staff=True,
        password="an0ther-Passphrase",
    )

    assert saved.is_staff
    assert saved.check_password("an0ther-Passphrase")


def test_user_login_of_an_unknown_email_raises_invalid_credentials():
    with pytest.raises(services.InvalidCredentials) as caught:
        services.user_login(
            email="nobody@example.com", password=PASSWORD, client_address="192.0.2.1"
        )

    assert caught.value.status_code == 401


def test_user_logout_of_a_token_already_revoked_is_harmless(user, settings):
    settings.STRANGLER_USER_REPLICA_WAIT_MS = 0
    token = services.token_create(user=user)
    services.token_revoke_all(user=user)

    services.user_logout(user=user, token=token)

    assert not AuthToken.objects.filter(user=user).exists()


def test_token_purge_deletes_only_expired_tokens(user):
    services.token_create(user=user)
    services.token_create(user=user)
    old, new = AuthToken.objects.filter(user=user).order_by("created")
    AuthToken.objects.filter(pk=old.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))

    assert services.token_purge_expired() == 1
    assert list(AuthToken.objects.values_list("pk", flat=True)) == [new.pk]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_registrations_of_one_email_in_different_case_create_one_user(
    monkeypatch,
):
    import threading

    from django.db import connection

    real = services._email_in_use
    barrier = threading.Barrier(2, timeout=10)
    seen: set[int] = set()

    def check_after_both_arrive(**kwargs):
        # Both threads pass the pre-check before either inserts: the unique index must decide.
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            barrier.wait()
            return False
        return real(**kwargs)

    monkeypatch.setattr(services, "_email_in_use", check_after_both_arrive)
    outcomes: list[object] = []

    def register(email):
        try:
            outcomes.append(services.user_register(email=email, password=PASSWORD))
        except DomainError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(e,)) for e in ("race@x.com", "RACE@x.com")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(type(o).__name__ for o in outcomes) == ["DomainError", "User"]
    refused = next(o for o in outcomes if isinstance(o, DomainError))
    assert refused.fields == {"email": [services.EMAIL_TAKEN]}
    assert User.objects.filter(email__iexact="race@x.com").count() == 1


def test_deactivating_a_user_revokes_every_token(user):
    services.token_create(user=user)
    services.token_create(user=user)

    services.user_update(user=user, require_current_password=False, is_active=False)

    assert not AuthToken.objects.filter(user=user).exists()
