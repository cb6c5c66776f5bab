"""Read-only admin pages: payments change only through payments.services."""

from __future__ import annotations

from django.contrib import admin

from .models import IdempotencyRecord, Payment


class ReadOnlyAdmin(admin.ModelAdmin):
    """Let staff look, never edit: a hand-edited status would bypass the state machine."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "order_id", "user", "amount", "currency", "status", "created_at"]
    list_filter = ["status", "currency"]
    search_fields = ["id", "order__id", "user__email", "provider_reference"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["key", "user", "response_status", "payment_id", "created_at"]
    list_filter = ["response_status"]
    search_fields = ["key", "user__email"]
    list_select_related = ["user"]
