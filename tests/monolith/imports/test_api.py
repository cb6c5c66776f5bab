"""POST /api/imports/ and GET /api/imports/{id}/: staff only, uploads checked, jobs run."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from monolith.imports.models import ImportJob
from monolith.orders.models import Product

pytestmark = pytest.mark.django_db

URL = "/api/imports/"
PRODUCTS = b"sku,name,unit_price\nMUG-1,Red Mug,9.99\nMUG-2,Blue Mug,-1\n"


def upload(content: bytes, name: str = "products.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def post(client, **data):
    return client.post(URL, data, format="multipart")


def test_staff_upload_is_accepted_and_the_job_runs(
    staff_client, eager_celery, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(staff_client, kind="products", file=upload(PRODUCTS))

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["kind"], body["status"], body["total_rows"]) == ("products", "queued", 2)
    assert response["Location"].endswith(f"/api/imports/{body['id']}/")
    assert list(Product.objects.values_list("sku", flat=True)) == ["MUG-1"]

    shown = staff_client.get(f"{URL}{body['id']}/").json()
    assert shown["status"] == "completed"
    assert (shown["processed_rows"], shown["imported_count"], shown["error_count"]) == (2, 1, 1)
    assert shown["errors"] == [
        {"row": 3, "field": "unit_price", "message": shown["errors"][0]["message"]}
    ]
    assert "greater than or equal to 0" in shown["errors"][0]["message"]


def test_upload_queues_the_task_only_after_commit(
    staff_client, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(staff_client, kind="products", file=upload(PRODUCTS))

    assert response.status_code == 202
    assert len(callbacks) == 1
    assert ImportJob.objects.get().file.read() == PRODUCTS


def refused(response, field_name: str) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "validation_error"
    assert list(body["fields"]) == [field_name]
    return body["fields"][field_name][0]


def test_upload_without_a_file_names_the_file_field(staff_client):
    assert "No file was submitted" in refused(post(staff_client, kind="users"), "file")


@pytest.mark.parametrize("kind", ["orders", "", "USERS"])
def test_upload_of_an_unknown_kind_names_the_kind_field(staff_client, kind):
    assert "is not a valid choice" in refused(
        post(staff_client, kind=kind, file=upload(PRODUCTS)), "kind"
    )


def test_upload_that_is_not_utf8_is_refused(staff_client):
    message = refused(
        post(
            staff_client,
            kind="products",
            file=upload("sku,name,unit_price\nÄ,b,1\n".encode("latin-1")),
        ),
        "file",
    )
    assert "is not UTF-8 text" in message


def test_upload_of_a_binary_file_is_refused(staff_client):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert "is not UTF-8" in refused(
        post(staff_client, kind="products", file=upload(png, "photo.png")), "file"
    )


def test_upload_with_nul_bytes_is_refused(staff_client):
    assert "NUL bytes" in refused(
        post(staff_client, kind="products", file=upload(b"sku,name\x00,unit_price\n")), "file"
    )


def test_upload_missing_a_header_column_names_it(staff_client):
    message = refused(post(staff_client, kind="products", file=upload(b"sku,name\nA,a\n")), "file")
    assert message == (
        "lacks the column(s) unit_price that a products import needs (found: sku, name)."
    )


def test_users_upload_needs_email_and_full_name_columns(staff_client):
    message = refused(post(staff_client, kind="users", file=upload(b"mail,password\n")), "file")
    assert "lacks the column(s) email, full_name" in message


def test_empty_upload_is_refused(staff_client):
    assert "The submitted file is empty" in refused(
        post(staff_client, kind="users", file=upload(b"")), "file"
    )


def test_upload_with_only_a_blank_header_is_refused(staff_client):
    assert "is empty; expected a header row" in refused(
        post(staff_client, kind="users", file=upload(b"\n\n")), "file"
    )


def test_upload_over_the_size_limit_is_refused(staff_client, settings):
    settings.STRANGLER_IMPORT_MAX_BYTES = 40
    message = refused(
        post(staff_client, kind="products", file=upload(PRODUCTS + b"X,x,1\n" * 5)), "file"
    )
    assert message == f"is {len(PRODUCTS) + 30} bytes; an import file may have at most 40 bytes."


def test_upload_far_over_the_limit_is_refused_before_it_is_read(staff_client, settings):
    settings.STRANGLER_IMPORT_MAX_BYTES = 1000
    big = PRODUCTS + b"X,x,1\n" * 20_000

    message = refused(post(staff_client, kind="products", file=upload(big)), "file")

    assert message.startswith("is part of a ")
    assert message.endswith("an import file may have at most 1000 bytes.")
    assert not ImportJob.objects.exists()


def test_json_body_is_refused_as_unsupported_media(staff_client):
    response = staff_client.post(URL, {"kind": "users"}, format="json")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_non_staff_may_not_upload_or_look(auth_client, make_job):
    job = make_job("products", "sku,name,unit_price\n")

    assert post(auth_client, kind="products", file=upload(PRODUCTS)).status_code == 403
    assert auth_client.get(f"{URL}{job.id}/").status_code == 403
    assert not ImportJob.objects.exclude(pk=job.pk).exists()


def test_anonymous_is_asked_to_authenticate(api_client):
    response = post(api_client, kind="products", file=upload(PRODUCTS))

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_unknown_job_is_404(staff_client, job_id):
    response = staff_client.get(f"{URL}{job_id}/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
