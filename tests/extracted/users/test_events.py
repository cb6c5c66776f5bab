"""The service writes the monolith's `user.*` events and applies the monolith's, both ways."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken

from extracted.users import services
from extracted.users.models import User
from outbox.envelope import Envelope
from outbox.inbox import Outcome, event_apply
from outbox.models import OutboxEvent
from outbox.registry import registry
from outbox.schemas import payload_validate

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

MD5_HASH = "md5$salt$0123456789abcdef0123456789abcdef"


def _events(user_id):
    return list(OutboxEvent.objects.filter(aggregate_id=str(user_id)).order_by("sequence"))


def _envelope(event_type, payload, sequence, origin="monolith", version=2):
    return Envelope(
        id=str(uuid.uuid4()), type=event_type, version=version, aggregate_type="user",
        aggregate_id=str(payload["user_id"]), sequence=sequence,
        occurred_at=timezone.now().isoformat(), origin=origin,
        correlation_id=str(uuid.uuid4()), causation_id="", payload=payload,
    )  # fmt: skip


def _apply(envelope):
    import extracted.users.handlers  # noqa: F401  (registers the handlers)

    return event_apply(
        consumer="users", envelope=envelope, subscriptions=registry.matching("users", envelope.type)
    )


def _state(user_id=7, email="mono@example.com", updated_at=None, **more):
    now = timezone.now()
    return {
        "user_id": user_id, "email": email, "full_name": "Mono", "is_staff": False,
        "is_active": True, "is_superuser": False, "date_joined": now.isoformat(),
        "password_hash": MD5_HASH, "updated_at": (updated_at or now).isoformat(), **more,
    }  # fmt: skip


def test_a_registration_login_logout_and_password_change_each_write_their_event(user):
    token = services.token_create(user=user)
    services.user_logout(user=user, token=token)
    services.user_update(user=user, password="N3w-Passw0rd!", current_password=PASSWORD)

    rows = _events(user.pk)
    assert [(r.event_type, r.version, r.origin) for r in rows] == [
        ("user.registered", 2, "users"), ("user.token_issued", 1, "users"),
        ("user.token_revoked", 1, "users"), ("user.updated", 2, "users"),
        ("user.token_revoked", 1, "users"),
    ]  # fmt: skip
    for row in rows:
        payload_validate(event_type=row.event_type, version=row.version, payload=row.payload)
    assert rows[1].payload["digest"] == hash_token(token)
    assert "token" not in str(rows[1].payload).replace("digest", "")
    assert rows[3].payload["password_hash"] == User.objects.get(pk=user.pk).password
    assert rows[4].payload["before"] is not None


def test_a_user_the_monolith_registered_logs_in_here_with_the_same_password(api_client, settings):
    from django.contrib.auth.hashers import make_password

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    state = _state(email="moved@example.com", password_hash=make_password(PASSWORD))

    assert _apply(_envelope("user.registered", state, 1)) == Outcome.APPLIED

    response = api_client.post(
        "/api/auth/token/", {"email": "moved@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert User.objects.get(pk=7).password == state["password_hash"]


def test_a_v1_registration_from_before_step_2_is_upcast_and_keeps_what_is_not_known():
    v1 = {"user_id": 8, "email": "old@example.com", "full_name": "", "is_staff": False,
          "date_joined": timezone.now().isoformat()}  # fmt: skip

    assert _apply(_envelope("user.registered", v1, 1, version=1)) == Outcome.APPLIED

    user = User.objects.get(pk=8)
    assert user.is_active and not user.has_usable_password()


def test_an_older_state_never_undoes_a_newer_one():
    now = timezone.now()
    _apply(_envelope("user.registered", _state(full_name="New", updated_at=now), 1))

    older = _state(full_name="Old", updated_at=now - timedelta(seconds=5)) | {"changed": ["x"]}
    _apply(_envelope("user.updated", older, 2))

    assert User.objects.get(pk=7).full_name == "New"


def test_the_services_own_events_coming_back_are_echoes(user):
    row = _events(user.pk)[0]

    assert _apply(Envelope.from_row(row)) == Outcome.ECHO


def test_a_monolith_token_works_here_until_the_monolith_revokes_it(api_client):
    _apply(_envelope("user.registered", _state(), 1))
    token = "a" * 64
    issued = {"user_id": 7, "digest": hash_token(token), "created": timezone.now().isoformat(),
              "expiry": (timezone.now() + timedelta(days=7)).isoformat()}  # fmt: skip
    _apply(_envelope("user.token_issued", issued, 2, version=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get("/api/users/me/").status_code == 200

    revoked = {"user_id": 7, "digests": [issued["digest"]], "before": None}
    _apply(_envelope("user.token_revoked", revoked, 3, version=1))

    assert api_client.get("/api/users/me/").status_code == 401


def test_a_token_older_than_a_password_change_is_refused_even_if_its_event_comes_later():
    _apply(_envelope("user.registered", _state(), 1))
    made = timezone.now() - timedelta(seconds=1)
    _apply(_envelope("user.token_revoked",
                     {"user_id": 7, "digests": [], "before": timezone.now().isoformat()},
                     2, version=1))  # fmt: skip

    late = {"user_id": 7, "digest": "b" * 128, "created": made.isoformat(), "expiry": None}
    _apply(_envelope("user.token_issued", late, 3, version=1))

    assert not AuthToken.objects.filter(user_id=7).exists()


def test_a_registration_taking_an_email_held_here_is_parked_not_merged(user):
    with pytest.raises(Exception, match="both halves registered the address"):
        _apply(_envelope("user.registered", _state(user_id=9, email=user.email.upper()), 1))

    assert User.objects.filter(email__iexact=user.email).count() == 1
