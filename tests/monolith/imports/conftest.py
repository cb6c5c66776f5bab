"""Fixtures of the import tests: CSV uploads, jobs made without the API, a staff client."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from monolith.imports.models import ImportJob
from tests.monolith.jobs.conftest import eager_celery, media_root  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_catalogue(db):
    """Start from no products: these tests count what an import puts in the catalogue."""
    from monolith.orders.models import Product

    Product.objects.all().delete()


@pytest.fixture
def staff(make_user):
    return make_user(is_staff=True)


@pytest.fixture
def staff_client(client_for, staff):
    return client_for(staff)


@pytest.fixture
def make_job(staff, media_root):  # noqa: F811 - the fixture imported above
    """Create a queued import job of `kind` over the CSV `text`, as the upload view would."""

    def make(kind: str, text: str) -> ImportJob:
        job = ImportJob(kind=kind, created_by=staff, file_name="upload.csv")
        job.total_rows = sum(1 for line in text.splitlines()[1:] if line.strip())
        job.file.save(f"{job.id}.csv", ContentFile(text.encode()), save=True)
        return job

    return make
