"""Running an import job: per-row validation, duplicates, savepoints, resuming, progress."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth import get_user_model

from monolith.imports import importers
from monolith.imports.models import ImportStatus
from monolith.imports.services import import_job_run
from monolith.orders.models import Product

pytestmark = pytest.mark.django_db

User = get_user_model()


def emails() -> set[str]:
    return set(User.objects.filter(is_staff=False).values_list("email", flat=True))


def test_good_user_rows_are_imported_and_bad_ones_reported_by_row_and_field(make_job):
    job = make_job(
        "users",
        "email,full_name,password\n"
        "ada@example.com,Ada Lovelace,\n"
        "not-an-email,Nobody,\n"
        "grace@EXAMPLE.com,Grace Hopper,correct-Horse-battery-9\n"
        ",No Email,\n"
        "alan@example.com,Alan Turing,123\n",
    )

    job = import_job_run(job_id=job.id)

    assert job.status == ImportStatus.COMPLETED
    assert (job.processed_rows, job.imported_count) == (5, 2)
    assert emails() == {"ada@example.com", "grace@example.com"}
    assert {(e["row"], e["field"]) for e in job.errors} == {
        (3, "email"),
        (5, "email"),
        (6, "password"),
    }
    # "123" is too short, too common and entirely numeric: Django's validators say each.
    assert sum(1 for e in job.errors if e["row"] == 6) == 3
    assert job.error_count == len(job.errors) == 5
    assert all(e["message"] for e in job.errors)
    assert job.started_at and job.finished_at


def test_imported_user_without_password_cannot_log_in_and_with_one_can(make_job):
    job = make_job(
        "users", "email,full_name,password\na@example.com,A,\nb@example.com,B,correct-Horse-9\n"
    )

    import_job_run(job_id=job.id)

    assert not User.objects.get(email="a@example.com").has_usable_password()
    assert User.objects.get(email="b@example.com").check_password("correct-Horse-9")
    assert not User.objects.get(email="b@example.com").is_staff


def test_duplicate_emails_in_the_file_or_the_database_are_errors(make_job, make_user):
    make_user(email="Taken@example.com")
    job = make_job(
        "users",
        "email,full_name\nnew@example.com,New\nNEW@example.com,Again\ntaken@example.com,Clash\n",
    )

    job = import_job_run(job_id=job.id)

    assert job.imported_count == 1
    assert job.errors == [
        {"row": 3, "field": "email", "message": "repeats NEW@example.com from row 2."},
        {"row": 4, "field": "email", "message": "taken@example.com is already registered."},
    ]


def test_product_rows_are_validated_and_duplicate_skus_refused(make_job):
    Product.objects.create(sku="OLD-1", name="Old", unit_price=Decimal("1.00"))
    job = make_job(
        "products",
        "unit_price,sku,name\n"
        "9.99,MUG-1,Red Mug\n"
        "-1,MUG-2,Negative\n"
        "abc,MUG-3,Not a price\n"
        "1.999,MUG-4,Too precise\n"
        "2.00,,No sku\n"
        "3.00,MUG-1,Repeated\n"
        "4.00,OLD-1,Exists\n"
        "5.00,MUG-5,Extra,value\n",
    )

    job = import_job_run(job_id=job.id)

    assert list(Product.objects.values_list("sku", "unit_price")) == [
        ("MUG-1", Decimal("9.99")),
        ("OLD-1", Decimal("1.00")),
    ]
    assert [(e["row"], e["field"]) for e in job.errors] == [
        (3, "unit_price"),
        (4, "unit_price"),
        (5, "unit_price"),
        (6, "sku"),
        (9, None),
        (7, "sku"),
        (8, "sku"),
    ]
    assert job.error_count == 7


def test_a_row_that_clashes_at_insert_time_is_skipped_whole_and_the_rest_kept(make_job):
    job = make_job("products", "sku,name,unit_price\nA-1,One,1.00\nB-2,Two,2.00\nC-3,Three,3.00\n")
    # Someone adds B-2 between our duplicate check and our insert: the bulk insert fails on the
    # unique constraint and the chunk falls back to one savepoint per row.
    Product.objects.create(sku="B-2", name="Theirs", unit_price=Decimal("9.00"))

    with mock.patch.object(importers, "_taken_skus", return_value=set()):
        job = import_job_run(job_id=job.id)

    assert dict(Product.objects.values_list("sku", "name")) == {
        "A-1": "One",
        "B-2": "Theirs",
        "C-3": "Three",
    }
    assert job.imported_count == 2
    assert job.errors == [{"row": 3, "field": "sku", "message": "is already in the catalogue."}]


def test_a_rerun_resumes_after_the_last_committed_chunk(make_job):
    job = make_job("products", "sku,name,unit_price\nA,a,1\nB,b,2\nC,c,3\nD,d,4\nE,e,5\n")
    # A first run committed two rows, then its worker died before finishing.
    Product.objects.bulk_create(
        [Product(sku="A", name="a", unit_price=1), Product(sku="B", name="b", unit_price=2)]
    )
    type(job).objects.filter(pk=job.pk).update(
        status=ImportStatus.RUNNING, processed_rows=2, imported_count=2
    )
    seen = []

    job = import_job_run(job_id=job.id, progress=lambda *p: seen.append(p), chunk_size=2)

    assert (job.imported_count, job.error_count, job.processed_rows) == (5, 0, 5)
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "B", "C", "D", "E"]
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_a_finished_job_is_not_run_again(make_job):
    job = make_job("products", "sku,name,unit_price\nA,a,1\n")
    import_job_run(job_id=job.id)
    Product.objects.all().delete()

    job = import_job_run(job_id=job.id)

    assert job.imported_count == 1
    assert not Product.objects.exists()


def test_a_job_whose_file_vanished_fails_with_a_reason(make_job):
    job = make_job("products", "sku,name,unit_price\nA,a,1\n")
    job.file.delete(save=False)

    job = import_job_run(job_id=job.id)

    assert job.status == ImportStatus.FAILED
    assert job.detail == "The uploaded file is gone."


def test_stored_errors_are_capped_but_all_are_counted(make_job, monkeypatch):
    monkeypatch.setattr("monolith.imports.services.MAX_STORED_ERRORS", 3)
    job = make_job("products", "sku,name,unit_price\n" + "X,x,-1\n" * 5)

    job = import_job_run(job_id=job.id, chunk_size=2)

    assert (len(job.errors), job.error_count) == (3, 5)


def test_quoted_fields_with_commas_and_a_bom_are_read(make_job):
    job = make_job("products", '\ufeffsku,name,unit_price\nA-1,"Mug, large",1.50\n')

    job = import_job_run(job_id=job.id)

    assert job.error_count == 0
    assert Product.objects.get(sku="A-1").name == "Mug, large"


def test_importers_cover_every_kind():
    assert set(importers.IMPORTERS) == {"users", "products"}


def test_a_product_whose_sku_could_never_be_ordered_is_refused(make_job):
    job = make_job("products", "sku,name,unit_price\nhas space,Odd,1.00\nOK-1,Fine,2.00\n")

    job = import_job_run(job_id=job.id)

    assert (job.imported_count, job.error_count) == (1, 1)
    assert job.errors[0]["row"] == 2 and job.errors[0]["field"] == "sku"
    assert list(Product.objects.values_list("sku", flat=True)) == ["OK-1"]
