"""Django admin for the email-based User; every save goes through the user services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, BaseUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from . import services
from .models import User


class UserCreationForm(BaseUserCreationForm):
    """Add a user by email and a password (checked by AUTH_PASSWORD_VALIDATORS)."""

    class Meta:
        model = User
        fields = ("email", "full_name")

    def clean_email(self):
        email = self.cleaned_data["email"]
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(services.EMAIL_TAKEN, code="unique")
        return email


class UserEditForm(UserChangeForm):
    """Edit a user's profile and flags; the password has its own page."""

    class Meta:
        model = User
        fields = ("email", "password", "full_name", "is_active", "is_staff", "is_superuser")
        field_classes: dict = {}


class PasswordSetForm(AdminPasswordChangeForm):
    """Set a user's password from the admin through user_update (no current password needed)."""

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        # An unusable password would be a change the services cannot express: always set one.
        self.fields.pop("usable_password", None)

    def set_password_and_save(self, user, commit=True, **kwargs):
        self.user = services.user_update(
            user=user, require_current_password=False, password=self.cleaned_data["password1"]
        )
        return self.user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's UserAdmin, keyed by email and full name instead of username."""

    form = UserEditForm
    add_form = UserCreationForm
    change_password_form = PasswordSetForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("full_name",)}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined", "updated_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )
    readonly_fields = ("last_login", "date_joined", "updated_at")
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name")
    ordering = ("id",)

    def save_model(self, request, obj, form, change):
        """Create or change the user through the services, so their rules and events apply."""
        if change:
            fields = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in services.UPDATABLE_FIELDS and name != "password"
            }
            saved = services.user_update(user=obj, require_current_password=False, **fields)
        else:
            saved = services.user_register(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data.get("full_name", ""),
            )
        # The admin goes on with `obj` (log entry, redirect, many-to-many): give it the row.
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})
        obj._state.adding = False
