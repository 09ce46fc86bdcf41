"""Mapping sheets in and out: CSV and XLSX read whole and checked first, every error naming
its row and column; zip bombs, macros, wrong encodings and huge sheets refused quickly;
exports escaped against formula injection and read back to the same rows."""

import io
import json
import re
import time
import zipfile

import openpyxl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apps.mappings import rules, sheets
from apps.mappings.sheets import (
    COLUMNS,
    RuleRow,
    RuleTextError,
    SheetError,
    parse_rule_text,
    read_sheet,
    write_csv,
    write_xlsx,
)

HEADER = ",".join(COLUMNS)


def csv_bytes(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([header, *lines]) + "\r\n").encode(encoding)


def xlsx_bytes(*rows, header=COLUMNS) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def errors_of(data: bytes, filename: str) -> list[str]:
    with pytest.raises(SheetError) as caught:
        read_sheet(data, filename)
    return caught.value.messages


EXPECTED_ROWS = [
    RuleRow("order.id", ["id"], "copy", {}, True, "string", "the key", "A-1"),
    RuleRow("order.total", ["total"], "cast", {"to": "decimal", "places": 2}, True, "string"),
    RuleRow("order.date", ["created"], "date_format", {"from": "%d.%m.%Y", "to": "%Y-%m-%d"}),
    RuleRow("customer.name", ["first", "last"], "concat", {"separator": " "}),
    RuleRow("customer.country", ["cc"], "lookup", {"table": "COUNTRY", "default": "XX"}),
    RuleRow("status", ["state"], "code_map", {"map": {"A": 1, "B": 2}}, target_type="integer"),
    RuleRow("channel", [], "constant", {"value": "web"}),
    RuleRow("lines[*].sku", ["items[*].code"], "upper", {}, True),
]


def test_a_csv_sheet_is_read_into_rule_rows():
    data = csv_bytes(
        "order.id,string,yes,id,,,,the key,A-1",
        "order.total,string,Yes,total,cast: decimal(2),,,,",
        "order.date,,,created,date: DD.MM.YYYY -> YYYY-MM-DD,,,,",
        "customer.name,,no,\"first, last\",concat with ' ',,,,",
        "customer.country,,,cc,,COUNTRY,XX,,",
        "status,integer,,state,map: A=1; B=2,,,,",
        "channel,,,,constant: web,,,,",
        "lines[*].sku,,x,items[*].code,upper,,,,",
    )
    result = read_sheet(data, "orders.csv")
    assert result.rows == EXPECTED_ROWS
    assert [row.row for row in result.rows] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert result.rows[5].params == {"map": {"A": 1, "B": 2}}  # ints, as the type says
    assert result.ignored_columns == []


def test_an_xlsx_sheet_is_read_into_rule_rows():
    data = xlsx_bytes(
        ("order.id", "string", True, "id", None, None, None, "the key", "A-1"),
        ("order.total", "string", "yes", "total", "cast: decimal(2)"),
        ("order.date", None, None, "created", "date: %d.%m.%Y -> %Y-%m-%d"),
        (None,),  # blank rows are skipped
        ("customer.name", None, 0, "first, last", "concat: with ' '"),
        ("customer.country", None, None, "cc", "lookup: COUNTRY", None, "XX"),
        ("status", "integer", None, "state", "map: A = 1; B -> 2"),
        ("channel", None, None, None, "constant: web"),
        ("lines[*].sku", None, 1, "items[*].code", "Upper Case"),
    )
    result = read_sheet(data, "orders.xlsx")
    assert result.rows == EXPECTED_ROWS
    assert [row.row for row in result.rows] == [2, 3, 4, 6, 7, 8, 9, 10]


def test_headers_match_in_any_case_and_spacing_with_aliases_and_extra_columns_are_ignored():
    data = csv_bytes("a,b,yes,upper,me", header="  TARGET ,Source_Field,Mandatory,Rule,Owner")
    result = read_sheet(data, "m.csv")
    assert result.rows == [RuleRow("a", ["b"], "upper", {}, required=True)]
    assert result.ignored_columns == ["Owner"]


def test_a_header_needs_the_target_and_source_columns():
    assert errors_of(csv_bytes("a,upper", header="target type,rule"), "m.csv") == [
        'Row 1: the header has no "target field" column (also read as "target", '
        '"target path", "target name", "target field name")',
        'Row 1: the header has no "source field" column (also read as "source", '
        '"source path", "source fields", "source field name")',
    ]


def test_two_headers_meaning_the_same_column_are_refused():
    assert errors_of(csv_bytes("a,b,c", header="target,source,source field"), "m.csv") == [
        'Row 1: the columns "source" and "source field" both mean "source field"; keep one'
    ]


def test_an_empty_sheet_and_a_sheet_without_rules_are_refused():
    assert errors_of(b"\r\n \r\n", "m.csv") == [
        "The sheet is empty; it needs a header row naming at least the columns target field "
        "and source field."
    ]
    assert errors_of(csv_bytes(), "m.csv") == ["The sheet has a header row but no rules."]


# --- encodings and delimiters ---------------------------------------------------------


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom"]
)
def test_utf8_with_or_without_bom_and_utf16_with_bom_are_read(encoding):
    text = HEADER + "\r\nkunde.straße,,,größe,,,,Grüße — ok,\r\n"
    if encoding == "utf-16-le-bom":
        data = b"\xff\xfe" + text.encode("utf-16-le")
    elif encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    [row] = read_sheet(data, "m.csv").rows
    assert (row.target_path, row.source_paths, row.notes) == (
        "kunde.straße",
        ["größe"],
        "Grüße — ok",
    )


def test_a_csv_in_another_encoding_names_the_row_of_the_first_bad_byte():
    data = csv_bytes("a,,,b,,,,,", "c,,,d,,,,café,", encoding="cp1252")
    assert errors_of(data, "m.csv") == ["Row 3: not UTF-8 — save the sheet as UTF-8 CSV."]


def test_utf16_without_a_bom_is_refused_clearly():
    data = csv_bytes("a,,,b,,,,,", encoding="utf-16-le")
    assert errors_of(data, "m.csv") == [
        "Row 1: NUL characters — UTF-16 without a byte-order mark? Save the sheet as UTF-8 CSV."
    ]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_delimiters_are_detected(delimiter):
    header = delimiter.join(["target field", "source field", "rule", "notes"])
    data = csv_bytes(
        delimiter.join(["amount", "net", "multiply by 1.19 places 2", "a, b"]), header=header
    )
    [row] = read_sheet(data, "m.csv").rows
    assert (row.kind, row.params, row.notes) == (
        "arithmetic",
        {"op": "*", "operand": 1.19, "places": 2},
        "a, b",
    )


def test_ragged_rows_and_values_outside_the_header_are_errors_naming_the_row():
    data = csv_bytes("a,b", "c,d,upper,zz", "e,f,,", header="target,source,rule")
    assert errors_of(data, "m.csv") == [
        "Row 2: 2 cells, but the header has 3 (a ragged row: a missing delimiter or an "
        "unclosed quote?)",
        "Row 3, column 4: a value to the right of the header's last column",
    ]


def test_a_malformed_csv_names_its_row():
    data = csv_bytes("a,b,upper", 'c,"d"x,upper', header="target,source,rule")
    assert errors_of(data, "m.csv") == ["Row 3: the CSV cannot be read (',' expected after '\"')."]


# --- row errors -----------------------------------------------------------------------


def test_a_bad_required_value_names_its_row_and_column():
    data = csv_bytes(*[f"t{i},,no,s{i},,,,," for i in range(10)], "t,,maybe,s,,,,,")
    assert errors_of(data, "m.csv") == ["Row 12, column \"required\": 'maybe' is not yes/no"]


def test_unknown_rule_text_names_its_row():
    errors = errors_of(csv_bytes("a,,,b,frobnicate the value,,,,"), "m.csv")
    assert errors == [
        "Row 2, column \"transformation rule\": unknown rule 'frobnicate the value'; write e.g. "
        "copy, constant: X, cast: integer, date: DD.MM.YYYY -> YYYY-MM-DD, concat with ' ', "
        "map: A=1; B=2, lookup: TABLE, expr: …, or leave it blank for copy"
    ]


def test_every_problem_of_the_sheet_is_reported_not_only_the_first():
    data = csv_bytes(
        ",,,b,,,,,",
        "a,,,b,,,,,",
        "a,,,c,,,,,",
        "x,,,,,,,,",
        "y,,,b,cast: money,,,,",
        "z,integer,,b,constant: ten,,,,",
        "w,,,b,pad left 5000 with 0,,,,",
        "v,,,b,date: DD.MM.YYYY -> soon,,,,",
        "u,,,b,cast: integer,COUNTRY,,,",
        "t,,,b,cast: integer,,0,,",
        "s,,,b,,,,,",
        "r..x,,,b[,,,,,",
    )
    assert errors_of(data, "m.csv") == [
        'Row 2, column "target field": is empty; every row needs its target field',
        "Row 4, column \"target field\": 'a' is already the target of row 3",
        'Row 5, column "source field": copy takes exactly 1 source path, not 0',
        "Row 6, column \"transformation rule\": cast to what? 'money' is not one of: string, "
        "integer, number, decimal, boolean, date",
        "Row 7, column \"transformation rule\": 'ten' is not an integer (the target type)",
        'Row 8, column "transformation rule": width must be a whole number from 1 to 1,000',
        "Row 9, column \"transformation rule\": to: the date format 'soon' has no directives "
        'such as %Y or %d; use "iso" for ISO 8601',
        'Row 10, column "lookup table": a lookup table goes with a lookup rule, not cast',
        'Row 11, column "default": a default goes with a blank rule or a default, lookup or '
        "map rule, not cast",
        "Row 13, column \"target field\": 'r..x': " + _path_error("r..x"),
        "Row 13, column \"source field\": 'b[': " + _path_error("b["),
    ]


def _path_error(text):
    from apps.mappings.paths import PathError, parse_path

    with pytest.raises(PathError) as caught:
        parse_path(text)
    return str(caught.value)


def test_the_error_list_is_capped_with_a_count_of_the_rest():
    data = csv_bytes(*[f"t{i},,maybe,s,,,,," for i in range(130)])
    errors = errors_of(data, "m.csv")
    assert len(errors) == 101
    assert errors[0] == "Row 2, column \"required\": 'maybe' is not yes/no"
    assert errors[-1] == "… and 30 more problems."


def test_the_rule_and_the_lookup_and_default_columns_must_agree():
    data = csv_bytes(
        "a,,,b,lookup: COUNTRY,REGION,,,",
        "c,,,b,default: 1,,2,,",
        'd,,,"x, y","concat: a, b with \' \'",,,,',
        "e,,,b,lookup,,,,",
    )
    assert errors_of(data, "m.csv") == [
        "Row 2, column \"lookup table\": 'REGION', but the rule looks up 'COUNTRY'",
        "Row 3, column \"default\": '2', but the rule says '1'",
        'Row 4, column "source field": x, y, but the rule names a, b',
        'Row 5, column "transformation rule": a lookup needs its table: "lookup: COUNTRY" or '
        "the lookup table column",
    ]


def test_a_concat_rule_names_the_sources_when_the_source_column_is_blank():
    [row] = read_sheet(csv_bytes('name,,,,"concat: first + last with space",,,,'), "m.csv").rows
    assert (row.source_paths, row.params) == (["first", "last"], {"separator": " "})


def test_control_characters_and_overlong_cells_are_errors():
    data = csv_bytes("a\x01,,,b,,,,,", "c,,,d,,,," + "n" * 10_001 + ",")
    assert errors_of(data, "m.csv") == [
        'Row 2, column "target field": holds control characters',
        'Row 2, column "target field": is empty; every row needs its target field',
        'Row 3, column "notes": longer than 10,000 characters',
    ]


# --- rule text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "params"),
    [
        ("", "copy", {}),
        ("Copy", "copy", {}),
        ("1:1", "copy", {}),
        ("constant: X", "constant", {"value": "X"}),
        ('const: " padded "', "constant", {"value": " padded "}),
        ("default: n/a", "default", {"value": "n/a"}),
        ("cast: integer", "cast", {"to": "integer"}),
        ("cast to int", "cast", {"to": "integer"}),
        ("cast: decimal(2)", "cast", {"to": "decimal", "places": 2}),
        ("cast: date(DD.MM.YYYY)", "cast", {"to": "date", "format": "%d.%m.%Y"}),
        ("date: %d.%m.%Y -> %Y-%m-%d", "date_format", {"from": "%d.%m.%Y", "to": "%Y-%m-%d"}),
        ("date: DD.MM.YYYY -> YYYY-MM-DD", "date_format", {"from": "%d.%m.%Y", "to": "%Y-%m-%d"}),
        ("date: dd.mm.yyyy -> ISO 8601", "date_format", {"from": "%d.%m.%Y", "to": "iso"}),
        (
            "date format: yyyy-MM-dd HH:mm in Europe/Berlin -> iso in UTC",
            "date_format",
            {"from": "%Y-%m-%d %H:%M", "from_tz": "Europe/Berlin", "to": "iso", "to_tz": "UTC"},
        ),
        ("concat with ' '", "concat", {"separator": " "}),
        ('concatenate with ", "', "concat", {"separator": ", "}),
        ("concat", "concat", {}),
        ("split on ';' index 1", "split", {"separator": ";", "index": 1}),
        ("split: space", "split", {"separator": " "}),
        ("substring: 0,10", "substring", {"start": 0, "length": 10}),
        ("substring: 3", "substring", {"start": 3}),
        ("substr: first 4", "substring", {"length": 4}),
        ("pad left 10 with 0", "pad", {"side": "left", "width": 10, "fill": "0"}),
        ("rpad 5 with ' '", "pad", {"side": "right", "width": 5, "fill": " "}),
        ("pad 8", "pad", {"width": 8}),
        ("trim", "trim", {}),
        ("trim left chars 0", "trim", {"side": "left", "chars": "0"}),
        ("upper", "upper", {}),
        ("UPPERCASE", "upper", {}),
        ("lower case", "lower", {}),
        ("lookup: COUNTRY", "lookup", {"table": "COUNTRY"}),
        ("lookup", "lookup", {}),
        ("map: A=1; B=2", "code_map", {"map": {"A": "1", "B": "2"}}),
        ('code map: "a;b" -> x\nC => "y=z"', "code_map", {"map": {"a;b": "x", "C": "y=z"}}),
        ("expr: qty * price", "expression", {"expression": "qty * price"}),
        (
            "expression: if a > 1 then 'x' else 'y'",
            "expression",
            {"expression": "if a > 1 then 'x' else 'y'"},
        ),
        ("sum", "arithmetic", {"op": "+"}),
        (
            "divide by 100 places 2 rounding half_even",
            "arithmetic",
            {"op": "/", "operand": 100, "places": 2, "rounding": "half_even"},
        ),
        ("arithmetic: - 1.5 as string", "arithmetic", {"op": "-", "operand": 1.5, "as": "string"}),
        (
            'when A then 1; when in (B, "C D") then 2; when matches "^X" then 3; when missing then 0; else 9',
            "conditional",
            {
                "cases": [
                    {"equals": "A", "then": "1"},
                    {"in": ["B", "C D"], "then": "2"},
                    {"matches": "^X", "then": "3"},
                    {"missing": True, "then": "0"},
                ],
                "else": "9",
            },
        ),
        (
            "if Y then yes otherwise no",
            "conditional",
            {"cases": [{"equals": "Y", "then": "yes"}], "else": "no"},
        ),
        (
            'conditional {"cases": [{"equals": "a", "then_from": "x"}]}',
            "conditional",
            {"cases": [{"equals": "a", "then_from": "x"}]},
        ),
        ("constant: {not json}", "constant", {"value": "{not json}"}),
    ],
)
def test_rule_text_idioms(text, kind, params):
    assert parse_rule_text(text)[:2] == (kind, params)


@pytest.mark.parametrize(
    ("text", "target_type", "value"),
    [
        ("constant: 42", "integer", 42),
        ("constant: 42", "Int64", 42),
        ("constant: 4.5", "decimal(10,2)", 4.5),
        ("constant: 42", "number", 42),
        ("constant: Yes", "boolean", True),
        ("constant: 42", "String(10)", "42"),
        ('constant: "42"', "integer", "42"),
    ],
)
def test_bare_values_take_the_target_type(text, target_type, value):
    assert parse_rule_text(text, target_type).params == {"value": value}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frobnicate", "unknown rule 'frobnicate'"),
        ("constant:", 'constant needs a value, e.g. "constant: X"'),
        ("date: DD.MM.YYYY", 'write a date rule as "date: FROM -> TO"'),
        ("map: A", "'A' is not a pair like A=1"),
        ("map: A=1; A=2", "the code 'A' is mapped twice"),
        ("when status = A then 1", "a case tests the (first) source field"),
        ('conditional {"cases": oops}', "the params are not valid JSON"),
        ("upper please", "upper takes nothing after it, not 'please'"),
    ],
)
def test_rule_text_that_is_not_an_idiom_says_why(text, message):
    with pytest.raises(RuleTextError, match=re.escape(message)):
        parse_rule_text(text)


# --- formulas -------------------------------------------------------------------------


def _with_cached_value(data: bytes, formula: str, value: str) -> bytes:
    """The workbook with a value saved beside a formula, as a spreadsheet program does."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                old = f"<f>{formula}</f><v />".encode()
                assert old in content
                content = content.replace(old, f"<f>{formula}</f><v>{value}</v>".encode())
            target.writestr(item, content)
    return out.getvalue()


def test_xlsx_formulas_are_never_evaluated():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(COLUMNS))
    sheet.append(["a", None, None, "b", None, None, None, '=HYPERLINK("http://evil/","x")', "=1+1"])
    sheet.append(["c", None, None, "d", None, None, None, "=1+1", None])
    sheet["H3"].data_type = "s"  # a text cell that merely starts with "="
    buffer = io.BytesIO()
    workbook.save(buffer)
    first, second = read_sheet(buffer.getvalue(), "m.xlsx").rows
    # No value was saved with the formulas, and none is computed.
    assert (first.notes, first.example) == ("", "")
    assert second.notes == "=1+1"
    # With a saved value (as Excel writes), that value is read, still not computed.
    cached = _with_cached_value(buffer.getvalue(), "1+1", "7")
    assert read_sheet(cached, "m.xlsx").rows[0].example == "7"


def test_csv_cells_starting_with_an_equals_sign_are_text():
    [row] = read_sheet(csv_bytes('a,,,b,,,,"=HYPERLINK(""http://evil/"")",=1+1'), "m.csv").rows
    assert (row.notes, row.example) == ('=HYPERLINK("http://evil/")', "=1+1")


# --- hostile files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("m.xlsm", ".xlsm is a macro-enabled workbook, which is refused; save the sheet as .xlsx."),
        ("m.XLTM", ".xltm is a macro-enabled workbook, which is refused; save the sheet as .xlsx."),
        ("m.xls", ".xls files are not read; save the sheet as .xlsx or UTF-8 .csv."),
        ("m.pdf", "Upload a .csv or .xlsx file, not .pdf."),
    ],
)
def test_macro_workbooks_and_other_files_are_refused_by_name(filename, message):
    assert errors_of(xlsx_bytes(("a", None, None, "b")), filename) == [message]


def _rezip(data: bytes, extra: dict[str, bytes] | None = None, replace=None) -> bytes:
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


def test_macro_content_is_refused_even_in_a_file_named_xlsx():
    plain = xlsx_bytes(("a", None, None, "b"))
    with_vba = _rezip(plain, extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0"})
    assert errors_of(with_vba, "m.xlsx") == [
        "The workbook holds macros, which are refused; save it as .xlsx."
    ]
    macro_type = _rezip(
        plain,
        replace=(
            "[Content_Types].xml",
            lambda xml: xml.replace(
                b"spreadsheetml.sheet.main+xml", b"ms-excel.sheet.macroEnabled.main+xml"
            ),
        ),
    )
    assert errors_of(macro_type, "m.xlsx") == [
        "The workbook is macro-enabled, which is refused; save it as .xlsx."
    ]


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as entry:
            chunk = b"<row>" + b" " * (1024 * 1024 - 11) + b"</row>"
            for _ in range(200):  # 200 MB of almost nothing
                entry.write(chunk)
    data = out.getvalue()
    assert len(data) < 1024 * 1024
    started = time.perf_counter()
    errors = errors_of(data, "bomb.xlsx")
    assert time.perf_counter() - started < 1
    assert len(errors) == 1
    assert errors[0].startswith(
        'The workbook is refused: its part "xl/worksheets/sheet1.xml" expands from '
    )
    assert errors[0].endswith("to 200 MB, more than 100:1 (a zip bomb).")


def test_a_workbook_expanding_past_the_bound_is_refused(monkeypatch):
    monkeypatch.setattr(sheets, "MAX_UNCOMPRESSED_BYTES", 4 * 1024)
    assert errors_of(xlsx_bytes(("a", None, None, "b")), "m.xlsx")[0].startswith(
        "The workbook is refused: it expands to "
    )


def _workbook_of(row_count: int, letters: str) -> bytes:
    """A workbook with ``row_count`` rule rows of inline text and no recorded size, as
    scripts write them (openpyxl then scans the whole worksheet when it opens it)."""
    header = "".join(
        f'<c r="{letter}1" t="inlineStr"><is><t>{COLUMNS["ABCDEFGHI".index(letter)]}</t></is></c>'
        for letter in letters
    )
    rows = "".join(
        f'<row r="{i}">'
        + "".join(
            f'<c r="{letter}{i}" t="inlineStr"><is><t>{letter}_{i}</t></is></c>'
            for letter in letters
        )
        + "</row>"
        for i in range(2, row_count + 2)
    )
    sheet_xml = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<sheetData><row r="1">{header}</row>{rows}</sheetData></worksheet>'
    ).encode()
    return _rezip(
        xlsx_bytes(("a", None, None, "b")),
        replace=("xl/worksheets/sheet1.xml", lambda xml: sheet_xml),
    )


def test_a_100000_row_workbook_is_refused_quickly():
    data = _workbook_of(100_000, "ABCDEFGHI")
    started = time.perf_counter()
    assert errors_of(data, "huge.xlsx") == [
        "The workbook is refused: it expands to 49 MB, more than 20 MB."
    ]
    assert time.perf_counter() - started < 1


def test_a_large_workbook_within_the_size_bounds_is_refused_at_the_row_bound_in_bounded_time():
    data = _workbook_of(100_000, "AD")
    started = time.perf_counter()
    assert errors_of(data, "big.xlsx") == [
        "The sheet has more than 5,000 rule rows (reading stopped at row 5,002); split it into "
        "several specs."
    ]
    assert time.perf_counter() - started < 5


def test_oversized_shared_strings_are_refused_before_openpyxl_parses_them():
    strings = b"<sst>" + b"".join(b"<si><t>s%d</t></si>" % i for i in range(300_000)) + b"</sst>"
    data = _rezip(xlsx_bytes(("a", None, None, "b")), extra={"xl/sharedStrings.xml": strings})
    assert errors_of(data, "m.xlsx") == [
        'The workbook is refused: its part "xl/sharedStrings.xml" is 6 MB, more than 4 MB '
        "(save the sheet as CSV?)."
    ]


def test_damaged_and_fake_workbooks_are_refused_clearly():
    assert errors_of(b"target field,source field\r\n", "m.xlsx") == [
        "The file is not an XLSX workbook; save the sheet as .xlsx."
    ]
    assert errors_of(b"PK\x03\x04 not really a zip", "m.xlsx") == [
        "The file is not an XLSX workbook (not a readable zip archive)."
    ]
    assert errors_of(_zip({"[Content_Types].xml": b"<Types/>"}), "m.xlsx") == [
        "The workbook cannot be opened; save it again as .xlsx."
    ]
    assert errors_of(_zip({"a.txt": b"x"}), "m.xlsx") == [
        "The file is a zip archive but not an XLSX workbook."
    ]
    assert errors_of(xlsx_bytes(("a", None, None, "b")), "m.csv") == [
        "The file is a zip archive (a workbook?), not a .csv text."
    ]


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return out.getvalue()


def test_a_file_over_10_mb_is_refused_without_reading_it():
    assert errors_of(b"x" * (10 * 1024 * 1024 + 1), "m.csv") == [
        "The file is larger than 10 MB; a mapping sheet is far smaller."
    ]


def test_a_100000_row_csv_is_refused_after_reading_5001_rows():
    lines = [f"field_{i},,,src_{i},,,,," for i in range(100_000)]
    data = csv_bytes(*lines)
    assert len(data) < sheets.MAX_FILE_BYTES
    started = time.perf_counter()
    errors = errors_of(data, "huge.csv")
    assert time.perf_counter() - started < 5
    assert errors == [
        "The sheet has more than 5,000 rule rows (reading stopped at row 5,002); split it into "
        "several specs."
    ]


def test_a_sheet_at_the_row_bound_is_read(monkeypatch):
    monkeypatch.setattr(sheets, "MAX_RULE_ROWS", 3)
    assert len(read_sheet(csv_bytes("a,,,x,,,,,", "b,,,x,,,,,", "c,,,x,,,,,"), "m.csv").rows) == 3
    assert errors_of(
        csv_bytes("a,,,x,,,,,", "b,,,x,,,,,", "c,,,x,,,,,", "d,,,x,,,,,"), "m.csv"
    ) == [
        "The sheet has more than 3 rule rows (reading stopped at row 5); split it into several "
        "specs."
    ]


def test_a_many_row_xlsx_stops_at_the_bound(monkeypatch):
    monkeypatch.setattr(sheets, "MAX_RULE_ROWS", 50)
    data = xlsx_bytes(*[(f"f{i}", None, None, f"s{i}") for i in range(2_000)])
    assert errors_of(data, "m.xlsx") == [
        "The sheet has more than 50 rule rows (reading stopped at row 52); split it into "
        "several specs."
    ]


# --- export ---------------------------------------------------------------------------

HOSTILE_ROWS = [
    RuleRow("a", ["b"], "copy", {}, notes='=HYPERLINK("http://evil/")', example="+1"),
    RuleRow("c", ["d"], "default", {"value": "-2"}, notes="@SUM(A1)", example="-3"),
    RuleRow("e", [], "constant", {"value": "x"}, notes="'=quoted", example="'plain"),
]


def test_a_csv_export_escapes_formula_cells():
    text = write_csv(HOSTILE_ROWS).decode("utf-8")
    assert text.startswith("\ufefftarget field,target type,required,source field,")
    lines = text.split("\r\n")
    assert lines[1] == 'a,,no,b,copy,,,"\'=HYPERLINK(""http://evil/"")",\'+1'
    assert lines[2] == "c,,no,d,default: -2,,,'@SUM(A1),'-3"
    assert lines[3] == "e,,no,,constant: x,,,''=quoted,'plain"
    assert read_sheet(text.encode(), "back.csv").rows == HOSTILE_ROWS


def test_an_xlsx_export_holds_text_cells_only_escaped_against_formulas():
    data = write_xlsx(HOSTILE_ROWS)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert {cell.data_type for cell in cells} == {"s"}
    values = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2)]
    assert values[0][7:] == ['\'=HYPERLINK("http://evil/")', "'+1"]
    assert values[1][7:] == ["'@SUM(A1)", "'-3"]
    assert read_sheet(data, "back.xlsx").rows == HOSTILE_ROWS


def test_an_export_writes_rules_in_the_sheet_idioms():
    cells = [sheets.rule_cells(row) for row in EXPECTED_ROWS]
    assert cells == [
        ("copy", "", ""),
        ("cast: decimal(2)", "", ""),
        ("date: %d.%m.%Y -> %Y-%m-%d", "", ""),
        ('concat with " "', "", ""),
        ("lookup", "COUNTRY", "XX"),
        ("map: A=1; B=2", "", ""),
        ("constant: web", "", ""),
        ("upper", "", ""),
    ]


def test_params_no_idiom_can_say_are_exported_as_json():
    row = RuleRow("a", ["b", "c"], "conditional", {"cases": [{"equals": "x", "then_from": "c"}]})
    assert sheets.rule_cells(row) == (
        'conditional {"cases": [{"equals": "x", "then_from": "c"}]}',
        "",
        "",
    )
    typed = RuleRow("n", [], "constant", {"value": 42}, target_type="string")
    assert sheets.rule_cells(typed) == ('constant {"value": 42}', "", "")
    assert read_sheet(write_csv([row, typed]), "x.csv").rows == [row, typed]


# --- round trip -----------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
paths = st.lists(names, min_size=1, max_size=3).map(".".join)
texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.just("\n"), max_size=20
).map(str.strip)
values = st.one_of(
    texts,
    st.integers(-(10**9), 10**9),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
date_formats = st.sampled_from(["iso", "iso_date", "%d.%m.%Y", "%Y%m%d %H:%M", "%d/%m/%Y"])
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])


def optional(params: dict) -> st.SearchStrategy:
    """Some of the given entries (each a strategy), as a dict strategy."""
    return st.fixed_dictionaries({}, optional=params)


def single_character():
    return st.characters(blacklist_categories=("Cs", "Cc", "Cn"))


CASES = st.one_of(
    st.fixed_dictionaries({"equals": texts, "then": values}),
    st.fixed_dictionaries({"in": st.lists(texts, min_size=1, max_size=3), "then": values}),
    st.fixed_dictionaries({"matches": st.sampled_from(["^A", "x+y", "[0-9]{3}"]), "then": values}),
    st.fixed_dictionaries({"missing": st.booleans(), "then": values}),
)

RULES = {
    "copy": (1, 1, st.just({})),
    "constant": (0, 0, st.fixed_dictionaries({"value": values})),
    "default": (1, 1, st.fixed_dictionaries({"value": values})),
    "cast": (
        1,
        1,
        st.one_of(
            st.fixed_dictionaries(
                {"to": st.sampled_from(["string", "integer", "number", "boolean"])}
            ),
            st.fixed_dictionaries(
                {"to": st.just("decimal")}, optional={"places": st.integers(0, 6)}
            ),
            st.fixed_dictionaries({"to": st.just("date")}, optional={"format": date_formats}),
        ),
    ),
    "date_format": (
        1,
        1,
        st.fixed_dictionaries(
            {"to": date_formats},
            optional={"from": date_formats, "from_tz": zones, "to_tz": zones},
        ),
    ),
    "concat": (1, 3, optional({"separator": texts | st.sampled_from([" ", ", ", "\t"])})),
    "split": (
        1,
        1,
        st.fixed_dictionaries(
            {"separator": texts.filter(bool)}, optional={"index": st.integers(-3, 3)}
        ),
    ),
    "substring": (1, 1, optional({"start": st.integers(0, 99), "length": st.integers(0, 99)})),
    "pad": (
        1,
        1,
        st.fixed_dictionaries(
            {"width": st.integers(1, 40)},
            optional={"side": st.sampled_from(["left", "right"]), "fill": single_character()},
        ),
    ),
    "trim": (1, 1, optional({"side": st.sampled_from(["both", "left", "right"]), "chars": texts})),
    "upper": (1, 1, st.just({})),
    "lower": (1, 1, st.just({})),
    "code_map": (
        1,
        1,
        st.fixed_dictionaries(
            {"map": st.dictionaries(texts, values, min_size=1, max_size=4)},
            optional={"default": values},
        ),
    ),
    "lookup": (
        1,
        1,
        st.fixed_dictionaries(
            {"table": st.from_regex(r"[A-Za-z][A-Za-z0-9_ ]{0,10}[A-Za-z0-9]", fullmatch=True)},
            optional={"default": values},
        ),
    ),
    "arithmetic": (
        1,
        3,
        st.fixed_dictionaries(
            {"op": st.sampled_from(["+", "-", "*", "/"])},
            optional={
                "operand": st.integers(-1000, 1000) | st.floats(-1e6, 1e6, width=32),
                "places": st.integers(0, 6),
                "rounding": st.sampled_from(sorted(rules.ROUNDINGS)),
                "as": st.sampled_from(["number", "string"]),
            },
        ),
    ),
    "conditional": (
        1,
        2,
        st.fixed_dictionaries(
            {"cases": st.lists(CASES, min_size=1, max_size=3)}, optional={"else": values}
        ),
    ),
    "expression": (
        0,
        2,
        st.fixed_dictionaries(
            {"expression": st.sampled_from(["qty * price", "upper(name) & '-' & code", "a + 1"])}
        ),
    ),
}


@st.composite
def rule_rows(draw, target: str) -> RuleRow:
    kind = draw(st.sampled_from(sorted(RULES)))
    low, high, params = RULES[kind]
    sources = draw(st.lists(paths, min_size=low, max_size=high))
    row = RuleRow(
        target_path=target,
        source_paths=sources,
        kind=kind,
        params=draw(params),
        required=draw(st.booleans()),
        target_type=draw(st.sampled_from(["", "string", "integer", "Number", "boolean", "date"])),
        notes=draw(texts),
        example=draw(texts),
    )
    _, problems = rules.build(kind, row.params, rules.BuildContext(source_paths=sources))
    assume(not problems)
    return row


sheets_of_rows = st.lists(paths, min_size=1, max_size=6, unique=True).flatmap(
    lambda targets: st.tuples(*[rule_rows(target) for target in targets])
)


def as_json(rows: list[RuleRow]) -> str:
    """Rows compared strictly (True is not 1 in JSON)."""
    return json.dumps([row.__dict__ | {"row": None} for row in rows], sort_keys=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sheets_of_rows)
def test_a_csv_export_reads_back_to_the_same_rows(rows):
    rows = list(rows)
    back = read_sheet(write_csv(rows), "export.csv").rows
    assert back == rows
    assert as_json(back) == as_json(rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sheets_of_rows)
def test_an_xlsx_export_reads_back_to_the_same_rows(rows):
    rows = list(rows)
    back = read_sheet(write_xlsx(rows), "export.xlsx").rows
    assert back == rows
    assert as_json(back) == as_json(rows)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from(["", "integer", "boolean", "number"]))
def test_any_rule_text_parses_or_says_why(text, target_type):
    try:
        parsed = parse_rule_text(text, target_type)
    except RuleTextError:
        return
    assert parsed.kind in rules.KINDS
    assert isinstance(parsed.params, dict)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300)
    | st.text(st.sampled_from("ab,;\t\"'=\n\r x:"), max_size=300).map(
        lambda text: (HEADER + "\n" + text).encode()
    ),
    st.sampled_from(["m.csv", "m.xlsx"]),
)
def test_any_bytes_give_rows_or_a_sheet_error(data, filename):
    try:
        read_sheet(data, filename)
    except SheetError as exc:
        assert exc.messages
