"""The CSV files an import accepts: UTF-8 (a BOM is fine), a header row, one record a row.

Row numbers are the ones a spreadsheet shows: the header is row 1, the first record row 2.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .models import ImportKind


@dataclass(frozen=True)
class CsvFormat:
    """The columns a kind of import needs (in any order) and those it may have."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


FORMATS: dict[str, CsvFormat] = {
    ImportKind.USERS: CsvFormat(required=("email", "full_name"), optional=("password",)),
    ImportKind.PRODUCTS: CsvFormat(required=("sku", "name", "unit_price")),
}


class CsvFileError(ValueError):
    """The file is not a CSV file of the expected shape; the message says what was found."""


@dataclass(frozen=True)
class Record:
    row: int
    values: dict[str, str]
    # How many values the row had beyond the header's columns (a misplaced separator).
    extra_values: int = 0


def csv_decode(content: bytes) -> str:
    """Return the text of an uploaded CSV file, or raise CsvFileError saying why it is not one."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            f"is not UTF-8 text (byte {exc.start} is {content[exc.start]:#04x}); "
            "save the sheet as 'CSV UTF-8'."
        ) from None
    if "\x00" in text:
        raise CsvFileError("contains NUL bytes; it looks like a binary file, not CSV.")
    return text


def csv_check(*, text: str, kind: str) -> int:
    """Check the header and that every row parses; return the number of records."""
    expected = FORMATS[kind]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise CsvFileError(
                f"is empty; expected a header row with {', '.join(expected.required)}."
            )
        columns = {cell.strip() for cell in header}
        missing = [name for name in expected.required if name not in columns]
        if missing:
            raise CsvFileError(
                f"lacks the column(s) {', '.join(missing)} that a {kind} import needs "
                f"(found: {', '.join(cell.strip() for cell in header)})."
            )
        return sum(1 for values in reader if values)
    except csv.Error as exc:
        raise CsvFileError(f"is not a readable CSV file: row {reader.line_num}: {exc}.") from None


def csv_records(stream: IO[str]) -> Iterator[Record]:
    """Yield the records of a checked CSV stream, values stripped, missing ones as ''."""
    reader = csv.reader(stream)
    header = [cell.strip() for cell in next(reader)]
    row = 1
    for values in reader:
        row += 1
        if not values:  # a blank line is not a record
            continue
        padded = [*values, *[""] * (len(header) - len(values))]
        yield Record(
            row=row,
            values={name: padded[i].strip() for i, name in enumerate(header)},
            extra_values=max(0, len(values) - len(header)),
        )
