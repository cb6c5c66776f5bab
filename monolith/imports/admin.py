from django.contrib import admin

from .models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "imported_count", "error_count", "created_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [field.name for field in ImportJob._meta.fields]
