"""The record of one bulk import: its file, where it stands, and what each bad row got wrong."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ImportKind(models.TextChoices):
    USERS = "users", "Users"
    PRODUCTS = "products", "Products"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # Every row was looked at: good rows imported, bad ones listed in `errors`.
    COMPLETED = "completed", "Completed"
    # The file itself could not be processed (e.g. it vanished); `detail` says why.
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    # Also the Celery task id, so the job's live progress is AsyncResult(job.id).
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED, db_index=True
    )
    file = models.FileField(upload_to="imports/%Y/%m/%d/")
    file_name = models.CharField(max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="import_jobs"
    )
    total_rows = models.PositiveIntegerField(default=0)
    # Rows looked at so far; committed with each chunk's inserts, so a re-run resumes here.
    processed_rows = models.PositiveIntegerField(default=0)
    imported_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # [{"row": 3, "field": "email", "message": "..."}], the first MAX_STORED_ERRORS of them.
    errors = models.JSONField(default=list, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"Import {self.id} of {self.kind} ({self.status})"
