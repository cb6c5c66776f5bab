"""Validate and insert one chunk of import records; a bad row is reported, never half-written.

Each chunk is checked first (field rules, duplicates within the file and against the database)
and the good rows are inserted in one statement. Should that insert still hit a unique
constraint (a row registered meanwhile by someone else), the chunk falls back to one savepoint
per row, so the offending row is reported and every other row is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.db.models.functions import Lower
from rest_framework import serializers

from monolith.orders.models import Product, sku_validator

from .csvfiles import Record
from .models import ImportKind


def row_error(row: int, field_name: str | None, message: str) -> dict:
    return {"row": row, "field": field_name, "message": message}


@dataclass
class ChunkResult:
    imported: int = 0
    errors: list[dict] = field(default_factory=list)


class UserRow(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    full_name = serializers.CharField(max_length=150, allow_blank=True)
    password = serializers.CharField(max_length=128, allow_blank=True, required=False)


class ProductRow(serializers.Serializer):
    # The same rule as an order line's sku: every imported product can be ordered.
    sku = serializers.CharField(max_length=64, validators=[sku_validator])
    name = serializers.CharField(max_length=200)
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)


def _validated(
    records: Iterable[Record], row_serializer: type[serializers.Serializer], result: ChunkResult
) -> list[tuple[int, dict]]:
    """Return (row, cleaned values) of the records that pass `row_serializer`; report the rest."""
    good = []
    for record in records:
        if record.extra_values:
            result.errors.append(
                row_error(
                    record.row,
                    None,
                    f"has {record.extra_values} value(s) more than the header has columns.",
                )
            )
            continue
        checked = row_serializer(data=record.values)
        if checked.is_valid():
            good.append((record.row, checked.validated_data))
            continue
        for name, messages in checked.errors.items():
            result.errors.extend(row_error(record.row, name, str(message)) for message in messages)
    return good


def _insert(
    rows: list[tuple[int, models.Model]], *, key_field: str, result: ChunkResult, conflict: str
) -> None:
    """Insert the rows' objects at once; on a unique clash, row by row in savepoints."""
    if not rows:
        return
    model = type(rows[0][1])
    try:
        with transaction.atomic():
            model.objects.bulk_create([obj for _, obj in rows])
        result.imported += len(rows)
        return
    except IntegrityError:
        pass
    for row, obj in rows:
        try:
            with transaction.atomic():
                obj.save(force_insert=True)
            result.imported += 1
        except IntegrityError:
            result.errors.append(row_error(row, key_field, conflict))


def _taken_emails(emails: list[str]) -> set[str]:
    """Return those of `emails` (lower-cased) that some user already has, in any case."""
    return set(
        get_user_model()
        .objects.annotate(lowered=Lower("email"))
        .filter(lowered__in=[email.lower() for email in emails])
        .values_list("lowered", flat=True)
    )


def _taken_skus(skus: list[str]) -> set[str]:
    """Return those of `skus` already in the catalogue."""
    return set(Product.objects.filter(sku__in=skus).values_list("sku", flat=True))


def import_users_chunk(records: list[Record], *, seen: dict[str, int]) -> ChunkResult:
    """Create the users of `records`: unusable password unless one is given (and valid)."""
    user_model = get_user_model()
    result = ChunkResult()
    candidates = []
    for row, values in _validated(records, UserRow, result):
        email = user_model.objects.normalize_email(values["email"])
        key = email.lower()
        if key in seen:
            result.errors.append(row_error(row, "email", f"repeats {email} from row {seen[key]}."))
            continue
        seen[key] = row
        user = user_model(email=email, full_name=values["full_name"])
        password = values.get("password") or ""
        if password:
            try:
                validate_password(password, user=user)
            except DjangoValidationError as exc:
                result.errors.extend(row_error(row, "password", msg) for msg in exc.messages)
                continue
            user.set_password(password)
        else:
            user.set_unusable_password()
        candidates.append((row, user))

    taken = _taken_emails([user.email for _, user in candidates])
    fresh = []
    for row, user in candidates:
        if user.email.lower() in taken:
            result.errors.append(row_error(row, "email", f"{user.email} is already registered."))
        else:
            fresh.append((row, user))
    _insert(fresh, key_field="email", result=result, conflict="is already registered.")
    return result


def import_products_chunk(records: list[Record], *, seen: dict[str, int]) -> ChunkResult:
    """Create the products of `records`; a sku already in the catalogue is an error."""
    result = ChunkResult()
    candidates = []
    for row, values in _validated(records, ProductRow, result):
        sku = values["sku"]
        if sku in seen:
            result.errors.append(row_error(row, "sku", f"repeats {sku} from row {seen[sku]}."))
            continue
        seen[sku] = row
        candidates.append(
            (row, Product(sku=sku, name=values["name"], unit_price=values["unit_price"]))
        )

    taken = _taken_skus([product.sku for _, product in candidates])
    fresh = []
    for row, product in candidates:
        if product.sku in taken:
            result.errors.append(
                row_error(row, "sku", f"{product.sku} is already in the catalogue.")
            )
        else:
            fresh.append((row, product))
    _insert(fresh, key_field="sku", result=result, conflict="is already in the catalogue.")
    return result


IMPORTERS: dict[str, Callable[..., ChunkResult]] = {
    ImportKind.USERS: import_users_chunk,
    ImportKind.PRODUCTS: import_products_chunk,
}
