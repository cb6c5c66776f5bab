"""Admin for notifications (read-only: they record what was sent) and users' preferences."""

from __future__ import annotations

from django.contrib import admin

from .models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event_type", "channel", "recipient", "status", "attempts"]
    list_filter = ["status", "channel", "event_type"]
    search_fields = ["recipient", "=event_id"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "email_enabled", "sms_phone"]
    search_fields = ["user__email", "sms_phone"]
    raw_id_fields = ["user"]
