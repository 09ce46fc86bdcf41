"""Lookup tables: importing their entries from CSV.

(XLSX import comes with the mapping sheets; it will read rows and hand them to
:func:`replace_entries` the same way.)
"""

from __future__ import annotations

import csv
import io

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts import policy
from apps.core.models import AuditAction, AuditEntry
from apps.core.request_context import current_request_id
from apps.mappings.converters import ConversionError, decode_text
from apps.mappings.models import LookupEntry, LookupTable

MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 100_000
MAX_ERRORS = 50
KEY_COLUMN = "key"
VALUE_COLUMN = "value"


def _key_length() -> int:
    return LookupEntry._meta.get_field("key").max_length


def _value_length() -> int:
    return LookupEntry._meta.get_field("value").max_length


def parse_lookup_csv(data: bytes | str) -> list[tuple[str, str]]:
    """(key, value) pairs of a CSV with a header naming the ``key`` and ``value`` columns
    (any case, in any order; other columns are ignored).

    The whole file is checked before anything is returned: ValidationError lists every
    problem (at most :data:`MAX_ERRORS`), each naming its line — wrong encoding, missing
    columns, rows with too few cells, empty, too long or repeated keys, too many rows.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    try:
        text = decode_text(data)
    except ConversionError as exc:
        raise ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".")
    if "\x00" in text:
        raise ValidationError("The file holds NUL characters; it is not a CSV text file.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    errors: list[str] = []
    pairs: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    key_at = value_at = None
    key_length, value_length = _key_length(), _value_length()
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if key_at is None:
                names = [cell.strip().lower() for cell in cells]
                missing = [name for name in (KEY_COLUMN, VALUE_COLUMN) if name not in names]
                if missing:
                    raise ValidationError(
                        f"Line {line}: the header needs the columns key and value; "
                        f"missing: {', '.join(missing)}."
                    )
                key_at, value_at = names.index(KEY_COLUMN), names.index(VALUE_COLUMN)
                continue
            if len(pairs) >= MAX_IMPORT_ROWS:
                raise ValidationError(f"The file has more than {MAX_IMPORT_ROWS:,} rows.")
            if len(cells) <= max(key_at, value_at):
                errors.append(
                    f"Line {line}: {len(cells)} cells; the key and value columns are missing."
                )
                continue
            key, value = cells[key_at].strip(), cells[value_at]
            if not key:
                errors.append(f"Line {line}: the key is empty.")
            elif len(key) > key_length:
                errors.append(f"Line {line}: the key is longer than {key_length} characters.")
            elif key in first_line:
                errors.append(f"Line {line}: the key {key!r} repeats line {first_line[key]}.")
            else:
                first_line[key] = line
            if len(value) > value_length:
                errors.append(f"Line {line}: the value is longer than {value_length} characters.")
            pairs.append((key, value))
            if len(errors) >= MAX_ERRORS:
                errors.append("… stopped after 50 problems.")
                break
    except csv.Error as exc:
        errors.append(f"Line {reader.line_num}: {exc}.")
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
