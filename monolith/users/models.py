"""The user account: identified by email, unique regardless of case."""

from __future__ import annotations

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.db.models.functions import Lower

from service_kit.env import CACHE_TABLE
from service_kit.user_events import local_user_id_next


class UserManager(BaseUserManager):
    """Create users by email; the email's domain is lower-cased, as Django does."""

    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        with transaction.atomic(using=self._db):
            # Below the users service's id range, whatever ids the replica holds (step 2).
            if "id" not in extra and (next_id := local_user_id_next(self.model)) is not None:
                extra["id"] = next_id
            user = self.model(email=self.normalize_email(email), **extra)
            user.set_password(password)
            user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str) -> User:
        # Log in with any case of the address: uniqueness is case-insensitive too.
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    username = None
    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Every token made until this moment is revoked (a password change, a deactivation), on
    # whichever half it was made: see service_kit/user_events.py.
    tokens_revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="users_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email


class CacheEntry(models.Model):
    """A row of Django's database cache, which holds the login throttles when REDIS_URL is unset.

    Declared here so that migrations create the table `createcachetable` would (same columns,
    same index); only the cache backend reads and writes it. See service_kit.env.
    """

    cache_key = models.CharField(max_length=255, primary_key=True)
    value = models.TextField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        db_table = CACHE_TABLE

    def __str__(self) -> str:
        return self.cache_key
