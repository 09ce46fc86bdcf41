"""Lookup tables from XLSX workbooks (and CSV) through import_lookup_file: the same checks
as the CSV import, the hardened workbook reading of the mapping sheets, nothing half-saved."""

import io
import time
import zipfile

import openpyxl
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import AuditEntry
from apps.mappings import lookups
from apps.mappings.lookups import import_lookup_file, parse_lookup_xlsx
from apps.mappings.models import LookupEntry, LookupTable

pytestmark = pytest.mark.django_db


@pytest.fixture
def countries(team_a):
    table = LookupTable.objects.create(name="countries", owner_team=team_a)
    LookupEntry.objects.create(table=table, key="XX", value="old")
    return table


def entries(table):
    return dict(table.entries.values_list("key", "value"))


def workbook(*rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rezip(data: bytes, extra=None, replace=None) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if replace and item.filename == replace[0]:
                content = replace[1](content)
            target.writestr(item, content)
        for name, content in (extra or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def refused(table, data: bytes, filename: str = "t.xlsx") -> list[str]:
    with pytest.raises(ValidationError) as info:
        import_lookup_file(table, data, filename)
    assert entries(table) == {"XX": "old"}
    assert not AuditEntry.objects.filter(object_id=str(table.pk)).exists()
    return info.value.messages


def test_a_workbook_replaces_the_entries(countries, engineer):
    data = workbook(
        ("Notes", "VALUE", "Key"),
        ("x", "Germany", "DE"),
        (None, None, None),
        (None, "France", " FR "),
        (None, 12.0, 49),
    )
    assert import_lookup_file(countries, data, "Countries.XLSX", actor=engineer) == 3
    assert entries(countries) == {"DE": "Germany", "FR": "France", "49": "12"}
    entry = AuditEntry.objects.get(object_id=str(countries.pk), action="update")
    assert (entry.actor, entry.changes) == (engineer, {"entries": [1, 3]})


def test_the_header_is_the_first_non_blank_row_in_any_case(countries):
    data = workbook((None, None), ("kEy", "Value"), ("AT", "Austria"))
    import_lookup_file(countries, data, "t.xlsx")
    assert entries(countries) == {"AT": "Austria"}


def test_formulas_are_never_evaluated(countries):
    data = workbook(("key", "value"), ("DE", "=1+1"), ("FR", '=HYPERLINK("http://evil/","x")'))
    # No value was saved with the formulas (as scripts write them), and none is computed.
    assert parse_lookup_xlsx(data) == [("DE", ""), ("FR", "")]
    # With a saved value (as a spreadsheet program writes it), that value is read.
    cached = rezip(
        data,
        replace=(
            "xl/worksheets/sheet1.xml",
            lambda xml: xml.replace(b"<f>1+1</f><v />", b"<f>1+1</f><v>7</v>"),
        ),
    )
    assert parse_lookup_xlsx(cached)[0] == ("DE", "7")


def test_a_zip_bomb_is_refused_before_it_is_inflated(countries):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as entry:
            chunk = b"<row>" + b" " * (1024 * 1024 - 11) + b"</row>"
            for _ in range(200):  # 200 MB of almost nothing
                entry.write(chunk)
    started = time.perf_counter()
    [message] = refused(countries, out.getvalue(), "bomb.xlsx")
    assert time.perf_counter() - started < 1
    assert message.startswith(
        'The workbook is refused: its part "xl/worksheets/sheet1.xml" expands from '
    )
    assert message.endswith("to 200 MB, more than 100:1 (a zip bomb).")


def test_macros_are_refused_by_name_and_by_content(countries):
    plain = workbook(("key", "value"), ("DE", "Germany"))
    assert refused(countries, plain, "t.xlsm") == [
        ".xlsm is a macro-enabled workbook, which is refused; save it as .xlsx."
    ]
    with_vba = rezip(plain, extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0"})
    assert refused(countries, with_vba) == [
        "The workbook holds macros, which are refused; save it as .xlsx."
    ]
    macro_type = rezip(
        plain,
        replace=(
            "[Content_Types].xml",
            lambda xml: xml.replace(
                b"spreadsheetml.sheet.main+xml", b"ms-excel.sheet.macroEnabled.main+xml"
            ),
        ),
    )
    assert refused(countries, macro_type) == [
        "The workbook is macro-enabled, which is refused; save it as .xlsx."
    ]


def test_too_many_rows_are_refused(countries, monkeypatch):
    monkeypatch.setattr(lookups, "MAX_IMPORT_ROWS", 2)
    data = workbook(("key", "value"), ("A", "1"), ("B", "2"), ("C", "3"))
    assert refused(countries, data) == ["The file has more than 2 rows."]


def test_a_worksheet_of_blank_rows_is_read_no_further_than_the_bound(countries, monkeypatch):
    monkeypatch.setattr(lookups, "MAX_SCANNED_ROWS", 100)
    book = openpyxl.Workbook()
    book.active.append(["key", "value"])
    book.active["A5000"] = "far"
    buffer = io.BytesIO()
    book.save(buffer)
    assert refused(countries, buffer.getvalue()) == [
        "The worksheet has more than 100 rows, blank ones included."
    ]


def test_a_file_larger_than_the_bound_is_refused(countries, monkeypatch):
    monkeypatch.setattr(lookups, "MAX_IMPORT_BYTES", 1024 * 1024)
    data = workbook(("key", "value"), ("DE", "x" * 1000))
    data += b"\0" * (1024 * 1024)
    assert refused(countries, data) == ["The file is larger than 1 MB."]


def test_bad_rows_are_all_named_by_row(countries):
    data = workbook(
        ("key", "value"),
        ("DE", "Germany"),
        (None, "Nowhere"),
        ("FR", "France"),
        ("DE", "Deutschland"),
        ("K" * 201, "long"),
        ("AT", "v" * 1001),
    )
    assert refused(countries, data) == [
        "Row 3: the key is empty.",
        "Row 5: the key 'DE' repeats row 2.",
        "Row 6: the key is longer than 200 characters.",
        "Row 7: the value is longer than 1000 characters.",
    ]


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [("code", "name"), ("DE", "Germany")],
            "Row 1: the header needs the columns key and value; missing: key, value.",
        ),
        ([("key",), ("DE",)], "Row 1: the header needs the columns key and value; missing: value."),
        ([], "The file is empty; it needs a header row with key and value."),
    ],
)
def test_a_header_without_key_and_value_is_refused(countries, rows, message):
    assert refused(countries, workbook(*rows)) == [message]


@pytest.mark.parametrize(
    "filename, data, message",
    [
        ("t.xls", b"\xd0\xcf\x11\xe0", ".xls files are not read; save the table as .xlsx or .csv."),
        ("t.ods", b"PK\x03\x04", ".ods files are not read; save the table as .xlsx or .csv."),
        ("t.pdf", b"%PDF", "Upload a .csv or .xlsx file, not .pdf."),
        ("table", b"key,value\n", "Upload a .csv or .xlsx file, not a file without a suffix."),
        ("t.xlsx", b"key,value\nDE,x\n", "The file is not an XLSX workbook; save it as .xlsx."),
        ("t.csv", b"PK\x03\x04rest", "The file is a zip archive (a workbook?), not a .csv text."),
        (
            "t.xlsx",
            b"PK\x03\x04 broken",
            "The file is not an XLSX workbook (not a readable zip archive).",
        ),
    ],
)
def test_other_files_are_refused(countries, filename, data, message):
    assert refused(countries, data, filename) == [message]


def test_a_csv_still_imports_through_the_same_door(countries, engineer):
    assert refused(countries, b"key,value\nDE,x\nDE,y\n", "t.csv") == [
        "Line 3: the key 'DE' repeats line 2."
    ]
    data = b"Key,Value\nDE,Germany\n\nFR,France\n"
    assert import_lookup_file(countries, data, "countries.csv", actor=engineer) == 2
    assert entries(countries) == {"DE": "Germany", "FR": "France"}


def test_viewers_and_other_teams_cannot_import_a_workbook(countries, viewer, engineer_b):
    data = workbook(("key", "value"), ("DE", "Germany"))
    for user in (viewer, engineer_b):
        with pytest.raises(PermissionDenied):
            import_lookup_file(countries, data, "t.xlsx", actor=user)
    assert entries(countries) == {"XX": "old"}


def test_an_exported_table_imports_back_with_formula_like_values(team_a):
    from apps.core.csv_export import safe_cell
    from apps.mappings.lookups import parse_lookup_csv

    rows = [("=cmd", "+1"), ("'quoted", "@SUM(A1)"), ("plain", "-2")]
    text = "key,value\n" + "".join(f"{safe_cell(k)},{safe_cell(v)}\n" for k, v in rows)
    assert parse_lookup_csv(text.encode()) == rows
