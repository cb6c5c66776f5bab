"""Admin pages for the outbox, the inbox and parked events (read-mostly, with DLQ actions)."""

from __future__ import annotations

from django.contrib import admin, messages

from .models import ConsumerCursor, DeadLetter, InboxEvent, OutboxEvent
from .services import dead_letter_purge, dead_letter_replay


class ReadOnlyAdmin(admin.ModelAdmin):
    # These rows are the evidence of what happened; editing them by hand would break it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "aggregate_type", "aggregate_id", "sequence", "origin",
                    "created_at", "sent_at", "publish_attempts"]  # fmt: skip
    list_filter = ["event_type", "origin", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id", "aggregate_id", "correlation_id"]
    date_hierarchy = "created_at"


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdmin):
    list_display = ["consumer", "event_type", "aggregate_id", "sequence", "origin", "processed_at"]
    list_filter = ["consumer", "event_type", "origin"]
    search_fields = ["event_id", "aggregate_id"]


@admin.register(ConsumerCursor)
class ConsumerCursorAdmin(ReadOnlyAdmin):
    list_display = [
        "consumer", "aggregate_type", "aggregate_id", "origin", "last_sequence", "updated_at",
    ]  # fmt: skip
    list_filter = ["consumer", "aggregate_type", "origin"]
    search_fields = ["aggregate_id"]


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "consumer", "event_type", "aggregate_id", "sequence", "reason",
                    "attempts", "created_at", "replayed_at"]  # fmt: skip
    list_filter = ["consumer", "reason", "event_type", ("replayed_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id", "aggregate_id", "error"]
    actions = ["replay", "purge"]

    def has_delete_permission(self, request, obj=None):
        return True

    @admin.action(description="Replay to the consumer (with later events of the aggregate)")
    def replay(self, request, queryset):
        count = dead_letter_replay(letters=queryset.filter(replayed_at=None))
        self.message_user(request, f"Replayed {count} event(s).", messages.SUCCESS)

    @admin.action(description="Purge for good")
    def purge(self, request, queryset):
        self.message_user(
            request, f"Purged {dead_letter_purge(letters=queryset)}.", messages.WARNING
        )
