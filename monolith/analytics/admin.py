"""Admin for the daily totals: read-only, since only the subscriber may move them."""

from __future__ import annotations

from django.contrib import admin

from .models import DailyStatusTotal


@admin.register(DailyStatusTotal)
class DailyStatusTotalAdmin(admin.ModelAdmin):
    list_display = ["day", "aggregate_type", "status", "currency", "count", "amount"]
    list_filter = ["aggregate_type", "status", "currency", "day"]
    date_hierarchy = "day"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
