"""Reads of import jobs."""

from __future__ import annotations

import uuid

from service_kit.errors import NotFound

from .models import ImportJob


def import_job_get(*, job_id: str) -> ImportJob:
    """Return the import job `job_id`, or raise NotFound (404) for an unknown or malformed id."""
    try:
        return ImportJob.objects.get(pk=uuid.UUID(str(job_id)))
    except (ValueError, ImportJob.DoesNotExist):
        raise NotFound(f"Import {job_id} does not exist.") from None
