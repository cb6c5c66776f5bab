"""Shapes of the users API: what comes in (checked here for type and form) and what goes out.

Business rules (unique email, password strength, current password) live in services.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

from .models import User


class UserErrorSerializer(serializers.Serializer):
    """The JSON error contract of service_kit.errors, for the OpenAPI schema."""

    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class UserSerializer(serializers.ModelSerializer):
    """A user as the API shows it; the password never leaves the server."""

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_staff", "date_joined"]
        read_only_fields = fields


class StrictInputSerializer(serializers.Serializer):
    """Refuse keys the endpoint does not accept instead of silently dropping them.

    A client that sends `is_staff` or misspells `full_name` learns so with a 400 naming the key.
    """

    # Keys the response shows but a client may not set.
    read_only_keys: tuple[str, ...] = ()

    def to_internal_value(self, data):
        errors: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            for key in data:
                if key in self.fields:
                    continue
                errors[key] = [
                    "This field is read-only." if key in self.read_only_keys else "Unknown field."
                ]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                errors = {**exc.detail, **errors}
            else:
                raise
        if errors:
            raise serializers.ValidationError(errors)
        return value


def _password_field(**kwargs) -> serializers.CharField:
    # Passwords are taken verbatim: spaces are characters too.
    return serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=256,
        style={"input_type": "password"},
        **kwargs,
    )


class UserRegisterSerializer(StrictInputSerializer):
    """Input of POST /api/users/."""

    read_only_keys = ("id", "is_staff", "date_joined")

    email = serializers.EmailField(max_length=254)
    password = _password_field()
    full_name = serializers.CharField(max_length=150, required=False, default="", allow_blank=True)


class UserUpdateSerializer(StrictInputSerializer):
    """Input of PATCH /api/users/me/: every key optional; `password` needs `current_password`."""

    read_only_keys = ("id", "is_staff", "date_joined")

    email = serializers.EmailField(max_length=254, required=False)
    full_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    password = _password_field(required=False, help_text="The new password.")
    current_password = _password_field(
        required=False, help_text="Required with `password`: the password in use now."
    )


class LoginSerializer(StrictInputSerializer):
    """Input of POST /api/auth/token/."""

    email = serializers.EmailField(max_length=254)
    password = _password_field()


class UserListQuerySerializer(serializers.Serializer):
    """Query string of GET /api/users/ (`page` is the paginator's)."""

    search = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=254,
        help_text="Words that must each occur in the email or full name (any case).",
    )


class NoBodySerializer(serializers.Serializer):
    """Input of POST /api/auth/logout/: none; the Bearer token says who logs out."""


class TokenSerializer(serializers.Serializer):
    """Output of POST /api/auth/token/: send it back as `Authorization: Bearer <token>`.

    A new token per login, valid for STRANGLER_TOKEN_TTL_S (7 days by default); shown only here.
    """

    token = serializers.CharField(read_only=True)
