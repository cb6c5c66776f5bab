"""User business logic of the users service: the monolith's rules (monolith/users/services.py),
on this service's tables, with ids from its own range.

Each function runs in its own `transaction.atomic()`, so the outbox writes the matching `user.*`
event (service_kit.user_events: the same payloads as the monolith's) in the same transaction as
the change; the monolith applies them, so a rollback loses no registration, login or password
change.

Ids: a user registered here gets the next id of `IdCounter`, which starts at
`STRANGLER_USERS_ID_START` (1,000,000,000). The monolith's ids come from its own sequence, below
that (a PostgreSQL sequence is not moved by the explicit ids its replica inserts, and on SQLite
the monolith picks the next id below the range itself), so a user registered here during canary
never collides with one registered there, however the registrations interleave.

Rules enforced here, whoever calls (the API, the admin, imports):

* an email is unique regardless of case (`Foo@x.com` and `foo@x.com` are the same account);
* a password passes Django's AUTH_PASSWORD_VALIDATORS;
* a new password is accepted only with the current one, unless a trusted caller (the admin's
  "set password" page) waives that check explicitly;
* a wrong email, a wrong password and an inactive account are one and the same 401, so the
  login endpoint does not tell which accounts exist;
* logins are throttled per account and per client address (service_kit.login_throttle);
* tokens (knox `AuthToken`) are stored as digests, expire after `STRANGLER_TOKEN_TTL_S`, one is
  made per login (at most `STRANGLER_TOKENS_PER_USER` live ones, the oldest revoked first);
  logout revokes the token it was called with; a password change or a deactivation revokes
  every token of the user, and the proxy is told after commit (service_kit.revocations).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.crypto import create_token_string, hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import status

from service_kit.errors import DomainError
from service_kit.login_throttle import login_attempt_begin, login_attempt_succeeded
from service_kit.revocations import revocation_publish
from service_kit.user_events import (
    token_issued_publish,
    token_revoked_publish,
    tokens_watermark_raise,
    user_registered_publish,
    user_updated_publish,
    users_id_start,
)

from .models import CacheEntry, IdCounter, User

EMAIL_TAKEN = "A user with this email address already exists."

# What `user_update` may change. Profile fields are what the API's /me/ exposes; the flags are
# for trusted callers (the admin); groups and permissions stay with Django's admin forms.
UPDATABLE_FIELDS = frozenset(
    {"email", "full_name", "password", "is_active", "is_staff", "is_superuser"}
)


class InvalidCredentials(DomainError):
    """The email and password do not identify an active user (401)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    code = "authentication_failed"


def _field_error(field: str, *messages: str) -> DomainError:
    # Same shape as a serializer's 400, with the first reason as the headline.
    return DomainError(messages[0], code="validation_error", fields={field: list(messages)})


def _email_in_use(*, email: str, exclude_id: int | None = None) -> bool:
    others = User.objects.filter(email__iexact=email)
    if exclude_id is not None:
        others = others.exclude(pk=exclude_id)
    return others.exists()


def _check_password(*, password: str, user: User) -> None:
    """Run AUTH_PASSWORD_VALIDATORS, turning their messages into a 400 on `password`."""
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise _field_error("password", *exc.messages) from None


def user_register(*, email: str, password: str, full_name: str = "") -> User:
    """Create an active, non-staff user, or raise a 400 naming the email or the password."""
    email = User.objects.normalize_email(email.strip())
    if _email_in_use(email=email):
        raise _field_error("email", EMAIL_TAKEN)
    _check_password(password=password, user=User(email=email, full_name=full_name))
    user_id = user_id_allocate()
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                id=user_id, email=email, password=password, full_name=full_name
            )
            user_registered_publish(user=user)
    except IntegrityError:
        # A concurrent registration of the same address won the race to the unique index.
        if _email_in_use(email=email):
            raise _field_error("email", EMAIL_TAKEN) from None
        raise
    return user


def user_id_allocate() -> int:
    """Return a new user id from this service's range: one short transaction, never reused.

    The counter row is locked only for the increment (not for the registration, which hashes
    the password), so concurrent registrations wait microseconds for each other. An id taken by
    a registration that then fails is skipped, never handed out twice.
    """
    with transaction.atomic():
        counter = IdCounter.objects.select_for_update().filter(name="user").first()
        if counter is None:
            IdCounter.objects.get_or_create(name="user", defaults={"next_id": users_id_start()})
            counter = IdCounter.objects.select_for_update().get(name="user")
        allocated = max(counter.next_id, users_id_start())
        counter.next_id = allocated + 1
        counter.save(update_fields=["next_id"])
    return allocated


def user_update(*, user: User, require_current_password: bool = True, **fields: Any) -> User:
    """Change the given fields of `user` and return the saved user (a fresh, locked copy).

    `fields` may hold email, full_name, password (with current_password), is_active, is_staff
    and is_superuser; anything else is refused. Unchanged values are not written.
    """
    current_password = fields.pop("current_password", None)
    unknown = sorted(set(fields) - UPDATABLE_FIELDS)
    if unknown:
        raise DomainError(
            f"These fields cannot be changed: {', '.join(unknown)}.",
            code="validation_error",
            fields={name: ["This field cannot be changed."] for name in unknown},
        )
    try:
        with transaction.atomic():
            # Lock the row so concurrent updates of one user apply (and emit events) in order.
            locked = User.objects.select_for_update().get(pk=user.pk)
            changed = _apply_changes(
                user=locked,
                fields=fields,
                current_password=current_password,
                require_current_password=require_current_password,
            )
            if changed:
                locked.save(update_fields=[*changed, "updated_at"])
                user_updated_publish(user=locked, changed=changed)
                # A new password shuts out whoever learned the old one, on every device; a
                # deactivated account keeps no way in.
                if "password" in changed or ("is_active" in changed and not locked.is_active):
                    token_revoke_all(user=locked)
    except IntegrityError:
        if "email" in fields and _email_in_use(email=fields["email"], exclude_id=user.pk):
            raise _field_error("email", EMAIL_TAKEN) from None
        raise
    return locked


def _apply_changes(
    *,
    user: User,
    fields: dict[str, Any],
    current_password: str | None,
    require_current_password: bool,
) -> list[str]:
    """Set the requested values on `user` after checking them; return the changed names."""
    changed: list[str] = []
    if "email" in fields:
        email = User.objects.normalize_email(fields["email"].strip())
        if email != user.email:
            if _email_in_use(email=email, exclude_id=user.pk):
                raise _field_error("email", EMAIL_TAKEN)
            user.email = email
            changed.append("email")
    for name in ("full_name", "is_active", "is_staff", "is_superuser"):
        if name in fields and fields[name] != getattr(user, name):
            setattr(user, name, fields[name])
            changed.append(name)
    if "password" in fields:
        if require_current_password:
            if not current_password:
                raise _field_error(
                    "current_password", "Give your current password to set a new one."
                )
            if not user.check_password(current_password):
                raise _field_error("current_password", "Your current password is not correct.")
        _check_password(password=fields["password"], user=user)
        user.set_password(fields["password"])
        changed.append("password")
    return changed


def user_login(*, email: str, password: str, client_address: str) -> str:
    """Return a new API token for the user, or raise InvalidCredentials (401) or RateLimited (429).

    The attempt is counted against the client address and the account before the password is
    checked; a throttled attempt is refused even with the right password.
    """
    email = email.strip()
    login_attempt_begin(email=email, address=client_address)
    # ModelBackend looks the email up case-insensitively (UserManager.get_by_natural_key),
    # refuses inactive users, and hashes even for unknown emails so timing reveals nothing.
    user = authenticate(request=None, email=email, password=password)
    if user is None:
        raise InvalidCredentials("Unable to log in with the given email and password.")
    login_attempt_succeeded(email=email)
    with transaction.atomic():
        token = token_create(user=user)
        # last_login alone is bookkeeping, not a profile change: updated_at stays put.
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
    return token


def user_logout(*, user: User, token: str) -> None:
    """Revoke the token the caller used; the user's other tokens (other devices) stay valid.

    From step 2 a token may have been made by the other half a moment ago: its digest is
    waited for (at most STRANGLER_USER_REPLICA_WAIT_MS), and the revocation is published
    whether or not it arrived, so the half that made it deletes it too.
    """
    digest = hash_token(token)
    deadline = time.monotonic() + settings.STRANGLER_USER_REPLICA_WAIT_MS / 1000
    while not AuthToken.objects.filter(digest=digest).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with transaction.atomic():
        AuthToken.objects.filter(digest=digest, user=user).delete()
        token_revoked_publish(user_id=user.pk, digests=[digest])
        _revocation_after_commit(user_id=user.pk)


def token_create(*, user: User) -> str:
    """Make a new token for `user` and return it: the only time it exists in clear.

    The database keeps its digest and expiry (now + STRANGLER_TOKEN_TTL_S). Beyond
    STRANGLER_TOKENS_PER_USER live tokens, the oldest are revoked.
    """
    token = create_token_string()
    digest = hash_token(token)
    with transaction.atomic():
        # knox's own create() would keep the token's first 15 characters in clear as a lookup
        # handle; we look tokens up by digest, so the handle is cut from the digest instead.
        made = AuthToken(
            digest=digest,
            token_key=digest[: CONSTANTS.TOKEN_KEY_LENGTH],
            user=user,
            expiry=timezone.now() + timedelta(seconds=settings.STRANGLER_TOKEN_TTL_S),
        )
        made.save(force_insert=True)
        # The other users half learns the digest (step 2), so the token works on both.
        token_issued_publish(token=made)
        keep = max(1, settings.STRANGLER_TOKENS_PER_USER)
        oldest = list(
            AuthToken.objects.filter(user=user)
            .order_by("-created", "-digest")
            .values_list("digest", flat=True)[keep:]
        )
        if AuthToken.objects.filter(digest__in=oldest).delete()[0]:
            token_revoked_publish(user_id=user.pk, digests=oldest)
            _revocation_after_commit(user_id=user.pk)
    return token


def token_revoke(*, token: AuthToken) -> None:
    """Delete one token; the proxy is told once the deletion commits."""
    with transaction.atomic():
        AuthToken.objects.filter(digest=token.digest).delete()
        token_revoked_publish(user_id=token.user_id, digests=[token.digest])
        _revocation_after_commit(user_id=token.user_id)


def token_revoke_all(*, user: User) -> int:
    """Delete every token of `user` and return how many; the proxy is told after commit.

    The user's token watermark moves to now: a token this half or the other made before it is
    refused even if its own event arrives later (service_kit.user_events).
    """
    with transaction.atomic():
        digests = list(AuthToken.objects.filter(user=user).values_list("digest", flat=True))
        deleted, _ = AuthToken.objects.filter(user=user).delete()
        mark = tokens_watermark_raise(user=user)
        token_revoked_publish(user_id=user.pk, digests=digests, before=mark)
        _revocation_after_commit(user_id=user.pk)
    return deleted


def token_purge_expired(*, now: datetime | None = None) -> int:
    """Delete expired tokens (they are refused anyway); the relay's cleanup runs this."""
    deleted, _ = AuthToken.objects.filter(expiry__lte=now or timezone.now()).delete()
    return deleted


def throttle_purge_expired(*, now: datetime | None = None) -> int:
    """Delete expired rows of the database cache (login throttles); the relay's cleanup runs it.

    Django's database cache only deletes expired rows once the table is full; without Redis,
    every address and email that tried to log in leaves one.
    """
    deleted, _ = CacheEntry.objects.filter(expires__lte=now or timezone.now()).delete()
    return deleted


def _revocation_after_commit(*, user_id: int) -> None:
    transaction.on_commit(lambda: revocation_publish(user_id=user_id), robust=True)
