"""Bulk import business logic: accept an upload as a job, then work through it chunk by chunk."""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Callable, Iterator

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from .csvfiles import Record, csv_records
from .importers import IMPORTERS
from .models import ImportJob, ImportStatus

# Enough to fix a file by; `error_count` still counts every error.
MAX_STORED_ERRORS = 1000
CHUNK_SIZE = 500

Progress = Callable[[int, int], None]


def import_job_create(*, created_by, kind: str, upload: UploadedFile, total_rows: int) -> ImportJob:
    """Record an import of a checked CSV upload and queue its processing once committed."""
    from .tasks import run_import

    with transaction.atomic():
        upload.seek(0)
        job = ImportJob(
            kind=kind, created_by=created_by, file_name=upload.name[:255], total_rows=total_rows
        )
        job.file.save(f"{job.id}.csv", upload, save=False)
        job.save()
        # The task id is the job id, so the job's live state is AsyncResult(job.id).
        transaction.on_commit(
            lambda: run_import.apply_async(args=[str(job.id)], task_id=str(job.id))
        )
    return job


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while chunk := list(itertools.islice(records, size)):
        yield chunk


def _finish(job_id: uuid.UUID, *, status: str, detail: str = "") -> ImportJob:
    ImportJob.objects.filter(pk=job_id).update(
        status=status, detail=detail[:500], finished_at=timezone.now()
    )
    return ImportJob.objects.get(pk=job_id)


def import_job_run(
    *, job_id: uuid.UUID | str, progress: Progress | None = None, chunk_size: int = CHUNK_SIZE
) -> ImportJob:
    """Import the job's rows from where it stands; return the job when every row is looked at.

    Each chunk's rows and the job's counters commit together, so a run that is cut short (the
    worker died, the task is redelivered) resumes after the last committed chunk instead of
    importing anything twice.
    """
    job = ImportJob.objects.get(pk=job_id)
    if job.status in (ImportStatus.COMPLETED, ImportStatus.FAILED):
        return job
    ImportJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=timezone.now())
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)
    report = progress or (lambda done, total: None)
    importer = IMPORTERS[job.kind]
    seen: dict[str, int] = {}

    try:
        binary = job.file.open("rb")
    except FileNotFoundError:
        return _finish(job.pk, status=ImportStatus.FAILED, detail="The uploaded file is gone.")
    with binary, io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
        records = itertools.islice(csv_records(text), job.processed_rows, None)
        report(job.processed_rows, job.total_rows)
        for chunk in _chunks(records, chunk_size):
            with transaction.atomic():
                locked = ImportJob.objects.select_for_update().get(pk=job.pk)
                if locked.processed_rows != job.processed_rows:
                    # Another run of this job got further meanwhile: leave the rest to it.
                    return locked
                result = importer(chunk, seen=seen)
                room = max(0, MAX_STORED_ERRORS - len(locked.errors))
                locked.errors = [*locked.errors, *result.errors[:room]]
                locked.error_count += len(result.errors)
                locked.imported_count += result.imported
                locked.processed_rows += len(chunk)
                locked.save(
                    update_fields=["errors", "error_count", "imported_count", "processed_rows"]
                )
            job = locked
            report(job.processed_rows, job.total_rows)
    return _finish(job.pk, status=ImportStatus.COMPLETED)
