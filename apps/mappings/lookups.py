"""Lookup tables: importing their entries from CSV or XLSX.

Both read the same way: the first non-blank row is a header naming the ``key`` and
``value`` columns (any case, in any order; other columns are ignored), blank rows are
skipped, keys are stripped, and the whole file is checked before anything is saved — every
problem is listed with its line (CSV) or row (XLSX), and on any problem nothing changes.
Workbooks go through the hardened reading of apps.mappings.sheets (:func:`check_xlsx_zip`:
zip bombs, encryption and macros refused before anything is inflated; the first worksheet
read row by row, formulas never evaluated — a formula cell gives the value saved with it,
or nothing).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import PurePath

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts import policy
from apps.core.models import AuditAction, AuditEntry
from apps.core.request_context import current_request_id
from apps.mappings import sheets
from apps.mappings.converters import ConversionError, decode_text
from apps.mappings.models import LookupEntry, LookupTable
from apps.mappings.sheets import SheetError, xlsx_rows

MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 100_000
MAX_SCANNED_ROWS = 2 * MAX_IMPORT_ROWS  # rows looked at in all, blank ones included
MAX_ERRORS = 50
KEY_COLUMN = "key"
VALUE_COLUMN = "value"
CSV_SUFFIXES = (".csv", ".txt")
XLSX_SUFFIXES = (".xlsx",)
_MACRO_SUFFIXES = (".xlsm", ".xltm", ".xlam")
_OTHER_SPREADSHEET_SUFFIXES = (".xls", ".xlsb", ".ods", ".numbers", ".tsv")


class _Unreadable(Exception):
    """The rest of a file cannot be read; the message names where."""


def _key_length() -> int:
    return LookupEntry._meta.get_field("key").max_length


def _value_length() -> int:
    return LookupEntry._meta.get_field("value").max_length


def _check_size(data: bytes | str) -> None:
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")


def parse_lookup_csv(data: bytes | str) -> list[tuple[str, str]]:
    """(key, value) pairs of a CSV with a header naming the ``key`` and ``value`` columns
    (any case, in any order; other columns are ignored).

    The whole file is checked before anything is returned: ValidationError lists every
    problem (at most :data:`MAX_ERRORS`), each naming its line — wrong encoding, missing
    columns, rows with too few cells, empty, too long or repeated keys, too many rows.
    """
    _check_size(data)
    try:
        text = decode_text(data)
    except ConversionError as exc:
        raise ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".")
    if "\x00" in text:
        raise ValidationError("The file holds NUL characters; it is not a CSV text file.")
    return _read_pairs(_csv_rows(text), "Line")


def parse_lookup_xlsx(data: bytes) -> list[tuple[str, str]]:
    """(key, value) pairs of the first worksheet of an XLSX workbook, read as
    :func:`parse_lookup_csv` reads a CSV (problems name their row). ValidationError also
    for a workbook that is not one, is encrypted, holds macros or would expand too far."""
    _check_size(data)
    try:
        return _read_pairs(_workbook_rows(data), "Row")
    except SheetError as exc:
        raise ValidationError(exc.messages)


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as exc:
        raise _Unreadable(f"Line {reader.line_num}: {exc}.")


def _workbook_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    for number, cells in xlsx_rows(data):
        if number > MAX_SCANNED_ROWS:
            raise ValidationError(
                f"The worksheet has more than {MAX_SCANNED_ROWS:,} rows, blank ones included."
            )
        yield number, cells


def _read_pairs(rows: Iterable[tuple[int, list[str]]], label: str) -> list[tuple[str, str]]:
    """The pairs of a file's rows (number, cells); ``label`` names a row in messages."""
    errors: list[str] = []
    pairs: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    key_at = value_at = None
    key_length, value_length = _key_length(), _value_length()
    try:
        for line, cells in rows:
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if key_at is None:
                names = [cell.strip().lower() for cell in cells]
                missing = [name for name in (KEY_COLUMN, VALUE_COLUMN) if name not in names]
                if missing:
                    raise ValidationError(
                        f"{label} {line}: the header needs the columns key and value; "
                        f"missing: {', '.join(missing)}."
                    )
                key_at, value_at = names.index(KEY_COLUMN), names.index(VALUE_COLUMN)
                continue
            if len(pairs) >= MAX_IMPORT_ROWS:
                raise ValidationError(f"The file has more than {MAX_IMPORT_ROWS:,} rows.")
            if len(cells) <= max(key_at, value_at):
                errors.append(
                    f"{label} {line}: {len(cells)} cells; the key and value columns are missing."
                )
                continue
            key = sheets.unescape_cell(cells[key_at].strip())
            value = sheets.unescape_cell(cells[value_at])
            if not key:
                errors.append(f"{label} {line}: the key is empty.")
            elif len(key) > key_length:
                errors.append(f"{label} {line}: the key is longer than {key_length} characters.")
            elif key in first_line:
                errors.append(
                    f"{label} {line}: the key {key!r} repeats {label.lower()} {first_line[key]}."
                )
            else:
                first_line[key] = line
            if len(value) > value_length:
                errors.append(
                    f"{label} {line}: the value is longer than {value_length} characters."
                )
            pairs.append((key, value))
            if len(errors) >= MAX_ERRORS:
                errors.append(f"… stopped after {MAX_ERRORS} problems.")
                break
    except _Unreadable as exc:
        errors.append(str(exc))
    if key_at is None and not errors:
        raise ValidationError("The file is empty; it needs a header row with key and value.")
    if errors:
        raise ValidationError(errors)
    return pairs


def replace_entries(table: LookupTable, pairs: list[tuple[str, str]], *, actor=None) -> int:
    """Replaces every entry of the table in one transaction, with one audit entry.

    Idempotent: importing the same pairs twice leaves the same table.
    """
    with transaction.atomic():
        # Lock the table row: two imports into one table run one after the other.
        LookupTable.objects.select_for_update().filter(pk=table.pk).first()
        before = table.entries.count()
        table.entries.all().delete()
        LookupEntry.objects.bulk_create(
            (LookupEntry(table=table, key=key, value=value) for key, value in pairs),
            batch_size=1_000,
        )
        table.updated_at = timezone.now()
        table.save(update_fields=["updated_at"])
        user = actor if actor is not None and actor.is_authenticated else None
        AuditEntry.objects.create(
            content_type=ContentType.objects.get_for_model(LookupTable),
            object_id=str(table.pk),
            object_repr=str(table)[:200],
            action=AuditAction.UPDATE,
            actor=user,
            actor_name=getattr(user, "username", "") or "",
            changes={"entries": [before, len(pairs)]},
            request_id=current_request_id() if current_request_id() != "-" else "",
        )
    return len(pairs)


def import_lookup_csv(table: LookupTable, data: bytes | str, *, actor=None) -> int:
    """Replaces a lookup table's entries with those of a CSV file; returns their number.

    The file is validated whole first (:func:`parse_lookup_csv`); on any problem a
    ValidationError lists them all and nothing changes. With an ``actor``, the permission
    policy is checked (PermissionDenied).
    """
    if actor is not None:
        policy.require_change(actor, table)
    pairs = parse_lookup_csv(data)
    return replace_entries(table, pairs, actor=actor)


def _file_kind(filename: str, data: bytes | str) -> str:
    """ "csv" or "xlsx" by the file name's suffix; ValidationError for anything else."""
    suffix = PurePath(filename or "").suffix.lower()
    is_zip = isinstance(data, bytes) and data.startswith(b"PK\x03\x04")
    if suffix in _MACRO_SUFFIXES:
        raise ValidationError(
            f"{suffix} is a macro-enabled workbook, which is refused; save it as .xlsx."
        )
    if suffix in _OTHER_SPREADSHEET_SUFFIXES:
        raise ValidationError(f"{suffix} files are not read; save the table as .xlsx or .csv.")
    if suffix in XLSX_SUFFIXES:
        if not is_zip:
            raise ValidationError("The file is not an XLSX workbook; save it as .xlsx.")
        return "xlsx"
    if suffix in CSV_SUFFIXES:
        if is_zip:
            raise ValidationError(f"The file is a zip archive (a workbook?), not a {suffix} text.")
        return "csv"
    raise ValidationError(
        f"Upload a .csv or .xlsx file, not {suffix or 'a file without a suffix'}."
    )


def import_lookup_file(table: LookupTable, data: bytes, filename: str, *, actor=None) -> int:
    """Replaces a lookup table's entries with those of a CSV or XLSX file (told apart by
    ``filename``: .csv or .txt, .xlsx; .xls, .xlsm and other spreadsheets are refused);
    returns their number.

    As :func:`import_lookup_csv`: validated whole first, nothing saved on any problem (a
    ValidationError lists them), the permission policy checked with an ``actor``, one
    transaction and one audit entry. Idempotent.
    """
    if actor is not None:
        policy.require_change(actor, table)
    _check_size(data)
    if _file_kind(filename, data) == "xlsx":
        pairs = parse_lookup_xlsx(data)
    else:
        pairs = parse_lookup_csv(data)
    return replace_entries(table, pairs, actor=actor)
