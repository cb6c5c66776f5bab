"""Background job of the imports app: work through one uploaded file."""

from __future__ import annotations

from celery import shared_task

from monolith.celery import RETRY_POLICY


@shared_task(bind=True, name="monolith.imports.tasks.run_import", **RETRY_POLICY)
def run_import(self, job_id: str) -> dict:
    """Import the rows of job `job_id`, publishing PROGRESS {"done", "total"} rows as it goes."""
    from .services import import_job_run

    def progress(done: int, total: int) -> None:
        if self.request.id:
            self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    job = import_job_run(job_id=job_id, progress=progress)
    return {
        "id": str(job.id),
        "status": job.status,
        "imported": job.imported_count,
        "errors": job.error_count,
    }
