"""Mapping sheets in and out: the spreadsheet (CSV or XLSX) form of a spec's field rules.

A mapping sheet has a header row naming its columns (:data:`COLUMNS`, matched in any case
and spacing, with a few aliases such as "target", "source" and "rule") and one row per
target field. :func:`read_sheet` reads and checks the whole sheet and returns
:class:`RuleRow` objects ready to become ``FieldRule`` rows, or raises :class:`SheetError`,
a ValidationError listing every problem (the first 100, then "… and N more problems"), each
naming its row and column: ``Row 12, column "required": 'maybe' is not yes/no``. A sheet
is never returned half-read, so a caller that saves its rows in one transaction changes
nothing on bad input. :func:`write_csv` and :func:`write_xlsx` export rows in the same
columns; reading an export gives the same rows back. Everything here works on plain data
(bytes in, dataclasses out): no database, no models.

Limits and decisions
--------------------
- Files are at most 10 MB. ``.csv``, ``.tsv`` and ``.txt`` are read as CSV, ``.xlsx`` as a
  workbook; ``.xlsm`` and other macro-enabled workbooks are refused, and so are ``.xls``,
  ``.xlsb`` and ``.ods`` (save as .xlsx or .csv).
- CSV encodings: UTF-8 with or without a byte-order mark, and UTF-16 with a byte-order
  mark. Nothing else is guessed: a legacy code page such as cp1252 decodes any byte at all,
  so a wrong guess would garble text silently; the error names the row of the first byte
  that is not UTF-8 instead. The delimiter is a comma, a semicolon or a tab, whichever the
  header row holds most (quoted text aside). A row with fewer cells than the header is an
  error (a ragged row); a value to the right of the header's last column is one too.
- XLSX: before openpyxl sees the file, its zip directory is checked: at most 1,000 entries,
  at most 20 MB uncompressed in all and 4 MB for each XML part other than a worksheet (the
  shared strings and the styles, which openpyxl parses whole when it opens the file), no
  entry over 1 MB that expands more than 100:1 (a zip bomb), nothing encrypted, no macros
  (a vbaProject.bin part or a macroEnabled content type). Python's zipfile never inflates an entry beyond the size the directory declares,
  so these bounds hold while openpyxl reads. openpyxl (which parses through defusedxml)
  then reads the first worksheet in read-only, data-only mode, row by row. Formulas are
  never evaluated: a formula cell gives the value the spreadsheet program saved with it,
  or nothing when none was saved (files written by scripts), in which case a required cell
  reports that it is empty. A text cell starting with "=" is just text.
- Rows: at most 5,000 rule rows (a mapping sheet has a few hundred). Reading stops at the
  5,001st and refuses the sheet, so a 100,000-row CSV costs no more than 5,001 rows (blank
  rows are skipped; at most 50,000 rows are looked at in all). A 100,000-row workbook is
  over the size bounds; within them, opening a workbook takes a few seconds at worst
  (openpyxl scans a worksheet whose size is not recorded in it, as script-written files).
- Cells are stripped of surrounding spaces. A cell over 10,000 characters, or holding
  control characters other than tab and line breaks, is an error. A leading ``'`` before
  =, +, -, @, a tab, a CR or another ``'`` is the export's escape against formula
  injection (apps.core.csv_export) and is removed.

Columns
-------
target field   the target path (apps.mappings.paths); required, unique in the sheet
target type    free text kept with the row ("string", "integer", "date"…); when it names
               an integer, number or boolean type (int, long, float, double, decimal,
               numeric, bool…), bare values in the rule and default cells are read as
               values of that type
required       yes/no, true/false, 1/0, x, y/n, m/o, mandatory/optional; blank is no
source field   source paths separated by commas, semicolons or line breaks
transformation rule   see below; blank is copy
lookup table   the table of a lookup rule ("lookup" with a blank rule cell)
default        the value when the source is missing (a blank rule becomes a ``default``
               rule), or the value on a miss of a lookup or map rule
notes, example free text (an example is at most 500 characters, as FieldRule holds)

Rule text
---------
:func:`parse_rule_text` reads the usual sheet idioms (keywords in any case; a colon after
the keyword is optional) into a kind and params of apps.mappings.rules, which documents and
checks them (a rule the engine would refuse is an error naming the row):

=========================================================  ===========  ==================
rule text                                                  kind         params
=========================================================  ===========  ==================
(blank), copy, direct, as is, 1:1                          copy         (none)
constant: X  (also const, fixed)                           constant     value
default: X                                                 default      value
cast: integer  (cast to …; string/str/text, integer/int,   cast         to; places;
number/float, decimal(2), boolean/bool, date(DD.MM.YYYY))               format
date: FROM [in ZONE] -> TO [in ZONE]  (date format: …)     date_format  from, to, from_tz,
                                                                        to_tz
concat[: a, b] [with SEP]  (concatenate, join)             concat       separator
split[:] [on] SEP [index N]                                split        separator, index
substring: START[,LENGTH] / substring: first LENGTH        substring    start, length
pad [left|right] WIDTH [with FILL]  (lpad, rpad)           pad          side, width, fill
trim [both|left|right] [chars X]  (ltrim, rtrim)           trim         side, chars
upper, upper case, uppercase / lower, …                    upper/lower  (none)
map: A=1; B=2  (code map; pairs by ; or line, = or ->)    code_map     map (+ default)
lookup[: TABLE]                                            lookup       table (+ default)
arithmetic: OP [N] [places P] [rounding R] [as string];    arithmetic   op, operand,
sum; add N; subtract N; multiply by N; divide by N                      places, rounding, as
when A then X; when in (B, C) then Y; when matches "^D"    conditional  cases [{equals |
then Z; when missing then W; else V  (if/otherwise too)                 in | matches |
                                                                        missing, then}],
                                                                        else
expr: EXPRESSION  (expression)                             expression   expression
KIND {JSON params}, e.g. conditional {"cases": […]}         KIND         the JSON object
=========================================================  ===========  ==================

Params hold exactly what the text says (no defaults are filled in). Values are bare text
(or typed by the target type, as above), or quoted: a ``"double-quoted"`` value (JSON
escapes) or a ``'single-quoted'`` one is always text, and quotes keep ``;``, ``=`` and
spaces inside a value. "space" and "zero" stand for " " and "0" as separators and fills.
Date formats are ``iso``, ``iso_date``, a strftime pattern (``%d.%m.%Y``) or tokens:
YYYY/yyyy, YY/yy, MMMM, MMM, MM, DD/dd, HH, hh, mm, ss — ``mm`` is minutes after an hour
token and a colon or when the format also has ``MM``, otherwise the month (``dd.mm.yyyy``).
``concat: a, b`` names the source fields when the source column is blank.

On export each row's rule is written in the idiom that reads back to exactly its kind and
params; when no idiom does (a ``then_from``, a value of another type than the target
type…), as ``KIND {JSON params}``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from apps.core.csv_export import FORMULA_PREFIXES, safe_cell
from apps.mappings import rules
from apps.mappings.paths import PathError, format_path, parse_path

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_RULE_ROWS = 5_000
MAX_SCANNED_ROWS = 50_000
MAX_CELL_CHARS = 10_000
MAX_EXAMPLE_CHARS = 500  # FieldRule.example
MAX_TARGET_TYPE_CHARS = 100
MAX_ERRORS = 100
MAX_ZIP_ENTRIES = 1_000
# openpyxl parses at open, whole, the shared strings, the styles and (in read-only mode, for
# a worksheet without a stored size) each worksheet: at roughly 2-10 s per 20 MB of XML.
# These bounds keep that to a few seconds; a 5,000-row sheet needs far less.
MAX_UNCOMPRESSED_BYTES = 20 * 1024 * 1024
MAX_XML_PART_BYTES = 4 * 1024 * 1024  # each XML part other than a worksheet
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM_BYTES = 1024 * 1024

TARGET_FIELD = "target field"
TARGET_TYPE = "target type"
REQUIRED = "required"
SOURCE_FIELD = "source field"
RULE = "transformation rule"
LOOKUP_TABLE = "lookup table"
DEFAULT = "default"
NOTES = "notes"
EXAMPLE = "example"

COLUMNS = (
    TARGET_FIELD,
    TARGET_TYPE,
    REQUIRED,
    SOURCE_FIELD,
    RULE,
    LOOKUP_TABLE,
    DEFAULT,
    NOTES,
    EXAMPLE,
)
REQUIRED_COLUMNS = (TARGET_FIELD, SOURCE_FIELD)
COLUMN_ALIASES = {
    TARGET_FIELD: ("target", "target path", "target name", "target field name"),
    TARGET_TYPE: ("type", "data type", "target data type"),
    REQUIRED: ("mandatory", "is required"),
    SOURCE_FIELD: ("source", "source path", "source fields", "source field name"),
    RULE: ("rule", "transformation", "transformation logic", "mapping rule", "logic"),
    LOOKUP_TABLE: ("lookup", "lookup table name"),
    DEFAULT: ("default value",),
    NOTES: ("note", "comment", "comments", "remarks"),
    EXAMPLE: ("example value", "sample", "sample value"),
}
_COLUMN_OF_NAME = {name: column for column in COLUMNS for name in (column, *COLUMN_ALIASES[column])}

_XLSX_SUFFIXES = (".xlsx",)
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_MACRO_SUFFIXES = (".xlsm", ".xltm", ".xlam")
_OTHER_SPREADSHEET_SUFFIXES = (".xls", ".xlsb", ".ods", ".numbers")
_WORKSHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml", re.IGNORECASE)
_ESCAPED_AFTER_QUOTE = (*FORMULA_PREFIXES, "'")

_YES = frozenset({"yes", "y", "true", "1", "x", "m", "mandatory", "required"})
_NO = frozenset({"no", "n", "false", "0", "o", "optional", "-"})
_INTEGER_TYPES = frozenset(
    {"int", "integer", "long", "short", "smallint", "bigint", "int32", "int64"}
)
_NUMBER_TYPES = frozenset({"number", "float", "double", "decimal", "numeric", "real"})
_BOOLEAN_TYPES = frozenset({"bool", "boolean"})
_TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0"})
_INTEGER_TEXT = re.compile(r"[+-]?\d{1,30}")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class SheetError(ValidationError):
    """A sheet that cannot be imported; ``messages`` lists every problem found."""


class RuleTextError(ValueError):
    """Rule text that is not one of the sheet idioms; the message says why."""


@dataclass
class RuleRow:
    """One row of a mapping sheet, parsed: the fields of a ``FieldRule`` plus the target
    type. ``row`` is the sheet row it came from (1 is the header); it does not take part in
    comparisons, so rows read back from an export equal the rows written."""

    target_path: str
    source_paths: list[str] = field(default_factory=list)
    kind: str = "copy"
    params: dict[str, Any] = field(default_factory=dict)
    required: bool = False
    target_type: str = ""
    notes: str = ""
    example: str = ""
    row: int = field(default=0, compare=False)


@dataclass
class SheetRows:
    """A sheet read without a problem: its rules in sheet order, and the header cells that
    name no known column (ignored, so that a caller can say so)."""

    rows: list[RuleRow]
    ignored_columns: list[str] = field(default_factory=list)


class ParsedRule(NamedTuple):
    """A rule cell read: its kind, its params and the source fields it names itself
    (``concat: a, b``; usually none)."""

    kind: str
    params: dict[str, Any]
    sources: list[str]


class _CellError(Exception):
    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


class _Problems:
    """Problems of a sheet: all are counted, the first MAX_ERRORS kept."""

    def __init__(self):
        self.messages: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_ERRORS:
            self.messages.append(message)

    def at(self, row: int, column: str, message: str) -> None:
        self.add(f'Row {row}, column "{column}": {message}')

    def report(self) -> list[str]:
        messages = list(self.messages)
        if self.count > len(messages):
            messages.append(f"… and {self.count - len(messages):,} more problems.")
        return messages


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def read_sheet(data: bytes, filename: str) -> SheetRows:
    """The rule rows of a mapping sheet (CSV or XLSX, told apart by the file name).

    Pure: reads only ``data``. The whole sheet is checked before anything is returned;
    SheetError lists every problem, each naming its row and column.
    """
    if len(data) > MAX_FILE_BYTES:
        raise SheetError(
            f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; "
            "a mapping sheet is far smaller."
        )
    if _file_kind(filename, data) == "csv":
        return _read_rule_rows(_csv_rows(data), fixed_width=True)
    return _read_rule_rows(xlsx_rows(data), fixed_width=False)


def _file_kind(filename: str, data: bytes) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    is_zip = data.startswith(b"PK\x03\x04")
    if suffix in _MACRO_SUFFIXES:
        raise SheetError(
            f"{suffix} is a macro-enabled workbook, which is refused; save the sheet as .xlsx."
        )
    if suffix in _OTHER_SPREADSHEET_SUFFIXES:
        raise SheetError(f"{suffix} files are not read; save the sheet as .xlsx or UTF-8 .csv.")
    if suffix in _XLSX_SUFFIXES:
        if not is_zip:
            raise SheetError("The file is not an XLSX workbook; save the sheet as .xlsx.")
        return "xlsx"
    if suffix in _CSV_SUFFIXES:
        if is_zip:
            raise SheetError(f"The file is a zip archive (a workbook?), not a {suffix} text.")
        return "csv"
    raise SheetError(f"Upload a .csv or .xlsx file, not {suffix or 'a file without a suffix'}.")


def _read_rule_rows(cell_rows: Iterator[tuple[int, list[str]]], *, fixed_width: bool):
    problems = _Problems()
    fatal: list[str] = []
    header: dict[str, int] | None = None
    header_width = 0
    ignored: list[str] = []
    rows: list[RuleRow] = []
    targets: dict[str, int] = {}
    data_rows = 0
    try:
        for number, cells in cell_rows:
            if number > MAX_SCANNED_ROWS:
                raise SheetError(
                    f"The sheet has more than {MAX_SCANNED_ROWS:,} rows; "
                    f"a mapping sheet holds at most {MAX_RULE_ROWS:,} rules."
                )
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header, ignored = _read_header(number, cells)
                header_width = len(cells)
                continue
            data_rows += 1
            if data_rows > MAX_RULE_ROWS:
                raise SheetError(
                    f"The sheet has more than {MAX_RULE_ROWS:,} rule rows (reading stopped at "
                    f"row {number:,}); split it into several specs."
                )
            row = _read_row(number, cells, header, header_width, fixed_width, problems, targets)
            if row is not None:
                rows.append(row)
    except SheetError as exc:
        fatal = exc.messages
    if fatal:
        raise SheetError(fatal + problems.report())
    if header is None:
        raise SheetError(
            "The sheet is empty; it needs a header row naming at least the columns "
            + " and ".join(REQUIRED_COLUMNS)
            + "."
        )
    if problems.count:
        raise SheetError(problems.report())
    if not rows:
        raise SheetError("The sheet has a header row but no rules.")
    return SheetRows(rows=rows, ignored_columns=ignored)


def _header_name(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower()).strip(" *:.")


def _read_header(number: int, cells: list[str]) -> tuple[dict[str, int], list[str]]:
    """Column -> cell index, and the header cells that name no column."""
    index: dict[str, int] = {}
    ignored: list[str] = []
    problems: list[str] = []
    for position, cell in enumerate(cells):
        name = _header_name(cell)
        if not name:
            continue
        column = _COLUMN_OF_NAME.get(name)
        if column is None:
            ignored.append(cell.strip())
        elif column in index:
            problems.append(
                f'Row {number}: the columns "{cells[index[column]].strip()}" and '
                f'"{cell.strip()}" both mean "{column}"; keep one'
            )
        else:
            index[column] = position
    for column in REQUIRED_COLUMNS:
        if column not in index:
            also = ", ".join(f'"{alias}"' for alias in COLUMN_ALIASES[column])
            problems.append(
                f'Row {number}: the header has no "{column}" column (also read as {also})'
            )
    if problems:
        raise SheetError(problems)
    return index, ignored


def _clean_cell(text: str) -> str:
    """A cell as a rule row holds it: stripped, the export's formula escape removed."""
    return unescape_cell(text.strip())


def unescape_cell(text: str) -> str:
    """Removes the ``'`` an export puts before a formula character (or before a ``'``)."""
    if len(text) > 1 and text[0] == "'" and text[1] in _ESCAPED_AFTER_QUOTE:
        return text[1:]
    return text


def _read_row(
    number: int,
    cells: list[str],
    header: dict[str, int],
    header_width: int,
    fixed_width: bool,
    problems: _Problems,
    targets: dict[str, int],
) -> RuleRow | None:
    """The rule of one sheet row, or None after adding its problems."""
    before = problems.count
    if fixed_width and len(cells) < header_width:
        problems.add(
            f"Row {number}: {len(cells)} cells, but the header has {header_width} "
            "(a ragged row: a missing delimiter or an unclosed quote?)"
        )
        return None
    for position in range(header_width, len(cells)):
        if cells[position].strip():
            problems.add(
                f"Row {number}, column {position + 1}: a value to the right of the header's "
                "last column"
            )
    values: dict[str, str] = {}
    for column, position in header.items():
        raw = cells[position] if position < len(cells) else ""
        if len(raw) > MAX_CELL_CHARS:
            problems.at(number, column, f"longer than {MAX_CELL_CHARS:,} characters")
            raw = ""
        elif ILLEGAL_CHARACTERS_RE.search(raw):
            problems.at(number, column, "holds control characters")
            raw = ""
        values[column] = _clean_cell(raw)

    target = values.get(TARGET_FIELD, "")
    if not target:
        problems.at(number, TARGET_FIELD, "is empty; every row needs its target field")
    else:
        try:
            canonical = format_path(parse_path(target))
        except PathError as exc:
            problems.at(number, TARGET_FIELD, f"{target!r}: {exc}")
        else:
            if canonical in targets:
                problems.at(
                    number,
                    TARGET_FIELD,
                    f"{target!r} is already the target of row {targets[canonical]}",
                )
            else:
                targets[canonical] = number

    target_type = values.get(TARGET_TYPE, "")
    if len(target_type) > MAX_TARGET_TYPE_CHARS:
        problems.at(number, TARGET_TYPE, f"longer than {MAX_TARGET_TYPE_CHARS} characters")

    required_text = values.get(REQUIRED, "")
    required = _yes_no(required_text)
    if required is None:
        problems.at(number, REQUIRED, f"{required_text!r} is not yes/no")

    sources = split_sources(values.get(SOURCE_FIELD, ""))
    for source in sources:
        try:
            parse_path(source)
        except PathError as exc:
            problems.at(number, SOURCE_FIELD, f"{source!r}: {exc}")

    kind, params = "copy", {}
    try:
        kind, params, sources = _rule_from_cells(
            values.get(RULE, ""),
            values.get(LOOKUP_TABLE, ""),
            values.get(DEFAULT, ""),
            target_type,
            sources,
        )
    except _CellError as exc:
        problems.at(number, exc.column, exc.message)
    else:
        count_problem = rules.source_count_problem(kind, len(sources))
        if count_problem:
            problems.at(number, SOURCE_FIELD, count_problem)
        _, rule_problems = rules.build(kind, params, rules.BuildContext(source_paths=sources))
        for message in rule_problems:
            problems.at(number, RULE, message)

    example = values.get(EXAMPLE, "")
    if len(example) > MAX_EXAMPLE_CHARS:
        problems.at(number, EXAMPLE, f"longer than {MAX_EXAMPLE_CHARS} characters")

    if problems.count > before:
        return None
    return RuleRow(
        target_path=target,
        source_paths=sources,
        kind=kind,
        params=params,
        required=bool(required),
        target_type=target_type,
        notes=values.get(NOTES, ""),
        example=example,
        row=number,
    )


def _yes_no(text: str) -> bool | None:
    word = text.strip().lower()
    if not word or word in _NO:
        return False
    if word in _YES:
        return True
    return None


def split_sources(text: str) -> list[str]:
    """The source paths of a source cell: separated by commas, semicolons or line breaks
    (not inside a quoted key such as ``["a, b"]``)."""
    return [part.strip() for part in _split(text, r"[,;\n]") if part.strip()]


def _rule_from_cells(
    rule_text: str, lookup_text: str, default_text: str, target_type: str, sources: list[str]
) -> tuple[str, dict[str, Any], list[str]]:
    """Kind, params and source paths from the rule, lookup table and default cells."""
    value_type = _value_type(target_type)
    try:
        kind, params, named = parse_rule_text(rule_text, target_type)
    except RuleTextError as exc:
        raise _CellError(RULE, str(exc))
    params = dict(params)
    blank = not rule_text.strip()
    if named:
        if sources and sources != named:
            raise _CellError(
                SOURCE_FIELD,
                f"{', '.join(sources)}, but the rule names {', '.join(named)}",
            )
        sources = named
    if lookup_text:
        if kind == "lookup":
            table = params.setdefault("table", lookup_text)
            if table != lookup_text:
                raise _CellError(LOOKUP_TABLE, f"{lookup_text!r}, but the rule looks up {table!r}")
        elif blank:
            kind, params = "lookup", {"table": lookup_text}
        else:
            raise _CellError(LOOKUP_TABLE, f"a lookup table goes with a lookup rule, not {kind}")
    if default_text:
        try:
            value = _value(default_text, value_type)
        except RuleTextError as exc:
            raise _CellError(DEFAULT, str(exc))
        key = {"default": "value", "lookup": "default", "code_map": "default"}.get(kind)
        if blank and kind == "copy":
            kind, params = "default", {"value": value}
        elif key is None:
            raise _CellError(
                DEFAULT,
                f"a default goes with a blank rule or a default, lookup or map rule, not {kind}",
            )
        elif key in params and not _same_json(params[key], value):
            raise _CellError(DEFAULT, f"{default_text!r}, but the rule says {_show(params[key])}")
        else:
            params[key] = value
    if kind == "lookup" and not params.get("table"):
        raise _CellError(
            RULE, 'a lookup needs its table: "lookup: COUNTRY" or the lookup table column'
        )
    return kind, params, list(sources)


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    number = 0
    try:
        for cells in reader:
            number += 1
            yield number, cells
    except csv.Error as exc:
        raise SheetError(f"Row {number + 1}: the CSV cannot be read ({exc}).")


def _decode(data: bytes) -> str:
    """Text of a CSV: UTF-8 (BOM or not) or UTF-16 with a BOM; SheetError otherwise."""
    if data.startswith(codecs.BOM_UTF8):
        encoding, body, name = "utf-8", data[len(codecs.BOM_UTF8) :], "UTF-8"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body, name = "utf-16", data, "UTF-16"
    else:
        encoding, body, name = "utf-8", data, "UTF-8"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        row = _row_at(body[: exc.start].decode(encoding, errors="replace"))
        raise SheetError(f"Row {row}: not {name} — save the sheet as UTF-8 CSV.")
    if "\x00" in text:
        row = _row_at(text[: text.index("\x00")])
        raise SheetError(
            f"Row {row}: NUL characters — UTF-16 without a byte-order mark? "
            "Save the sheet as UTF-8 CSV."
        )
    return text


def _row_at(prefix: str) -> int:
    """The CSV row that the text after ``prefix`` belongs to."""
    try:
        return sum(1 for _ in csv.reader(io.StringIO(prefix + "x", newline="")))
    except csv.Error:
        return prefix.count("\n") + 1


def _delimiter(text: str) -> str:
    """Comma, semicolon or tab: whichever the first non-blank line holds most."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = re.sub(r'"[^"]*"', "", first)
    counts = {delimiter: first.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    """(row number from 1, cell texts) of the first worksheet of an XLSX workbook, read
    lazily after :func:`check_xlsx_zip`; formulas are not evaluated (see the module doc).
    Raises SheetError naming the row. Lookup-table imports read workbooks with it too."""
    check_xlsx_zip(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception:  # openpyxl raises many kinds of error on a damaged workbook
        raise SheetError("The workbook cannot be opened; save it again as .xlsx.")
    number = 0
    try:
        if not workbook.worksheets:
            raise SheetError("The workbook has no worksheet.")
        sheet = workbook.worksheets[0]
        # The stored dimensions may be wrong; without them every row is read as it is.
        sheet.reset_dimensions()
        for values in sheet.iter_rows(min_row=1, values_only=True):
            number += 1
            yield number, [cell_text(value) for value in values]
    except SheetError:
        raise
    except Exception:  # a damaged worksheet part
        raise SheetError(f"Row {number + 1}: the worksheet cannot be read; save it again as .xlsx.")
    finally:
        workbook.close()


def check_xlsx_zip(data: bytes) -> None:
    """Refuses a workbook whose zip directory promises a zip bomb, encryption or macros,
    before anything is inflated."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise SheetError("The file is not an XLSX workbook (not a readable zip archive).")
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise SheetError(
                f"The workbook has {len(entries):,} parts; more than {MAX_ZIP_ENTRIES:,} "
                "is refused."
            )
        total = 0
        for entry in entries:
            if entry.flag_bits & 0x1:
                raise SheetError("The workbook is encrypted; save it without a password.")
            if (
                entry.file_size > RATIO_CHECKED_FROM_BYTES
                and entry.file_size > MAX_COMPRESSION_RATIO * max(entry.compress_size, 1)
            ):
                raise SheetError(
                    f'The workbook is refused: its part "{entry.filename}" expands from '
                    f"{_size(entry.compress_size)} to {_size(entry.file_size)}, more than "
                    f"{MAX_COMPRESSION_RATIO}:1 (a zip bomb)."
                )
            if (
                entry.filename.lower().endswith((".xml", ".rels"))
                and not _WORKSHEET_PART.fullmatch(entry.filename)
                and entry.file_size > MAX_XML_PART_BYTES
            ):
                raise SheetError(
                    f'The workbook is refused: its part "{entry.filename}" is '
                    f"{_size(entry.file_size)}, more than {_size(MAX_XML_PART_BYTES)} "
                    "(save the sheet as CSV?)."
                )
            total += entry.file_size
        if total > MAX_UNCOMPRESSED_BYTES:
            raise SheetError(
                f"The workbook is refused: it expands to {_size(total)}, more than "
                f"{_size(MAX_UNCOMPRESSED_BYTES)}."
            )
        names = {entry.filename.lower(): entry.filename for entry in entries}
        if any(name.endswith("vbaproject.bin") for name in names):
            raise SheetError("The workbook holds macros, which are refused; save it as .xlsx.")
        content_types = names.get("[content_types].xml")
        if content_types is None:
            raise SheetError("The file is a zip archive but not an XLSX workbook.")
        if b"macroenabled" in archive.read(content_types).lower():
            raise SheetError("The workbook is macro-enabled, which is refused; save it as .xlsx.")


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):,.0f} MB"
    return f"{count / 1024:,.0f} KB"


def cell_text(value: Any) -> str:
    """The text of a cell value as openpyxl reads it (whole floats without ".0", dates ISO)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------------
# Rule text
# --------------------------------------------------------------------------------------

_COPY_WORDS = frozenset({"copy", "direct", "direct mapping", "as is", "1:1", "one to one"})
_UPPER_WORDS = frozenset({"upper", "uppercase", "upper case", "to upper case"})
_LOWER_WORDS = frozenset({"lower", "lowercase", "lower case", "to lower case"})
_JSON_FORM = re.compile(r"([a-z_]+)\s*(\{.*\})", re.IGNORECASE | re.DOTALL)
_HEAD = re.compile(
    r"(code[ _]?map|date[ _]?format|format date|reformat date|[a-z_]+)(?:\s*:\s*|\s+|$)(.*)",
    re.IGNORECASE | re.DOTALL,
)
_QUOTED_OR_WORD = r"""("(?:[^"\\]|\\.)*"|'[^']*'|\S+)"""
_CAST_TYPES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "decimal": "decimal",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
}
_DATE_TOKENS = {
    "YYYY": "%Y",
    "yyyy": "%Y",
    "YY": "%y",
    "yy": "%y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "DD": "%d",
    "dd": "%d",
    "HH": "%H",
    "hh": "%I",
    "ss": "%S",
}
_DATE_TOKEN = re.compile("YYYY|yyyy|YY|yy|MMMM|MMM|MM|DD|dd|HH|hh|ss|mm")
_NAMED_CHARACTERS = {"space": " ", "zero": "0", "comma": ",", "tab": "\t"}


def parse_rule_text(text: str, target_type: str = "") -> ParsedRule:
    """The kind, params and named sources of a "transformation rule" cell (the idioms are
    in the module docstring). ``target_type`` types bare values (an integer type reads
    ``constant: 42`` as 42). RuleTextError says what is wrong.

    The params are not checked here beyond their shape; rules.build checks them.
    """
    text = text.strip()
    if not text:
        return ParsedRule("copy", {}, [])
    if len(text) > MAX_CELL_CHARS:
        raise RuleTextError(f"the rule is longer than {MAX_CELL_CHARS:,} characters")
    as_json = _JSON_FORM.fullmatch(text)
    if as_json and as_json.group(1).lower() in rules.KINDS:
        kind = as_json.group(1).lower()
        try:
            return ParsedRule(kind, _json_params(as_json.group(2)), [])
        except RuleTextError:
            if kind not in ("constant", "default"):
                raise
            # "constant {x}" is a constant text with braces, not a JSON form
    words = " ".join(text.lower().split())
    if words in _COPY_WORDS:
        return ParsedRule("copy", {}, [])
    if words in _UPPER_WORDS:
        return ParsedRule("upper", {}, [])
    if words in _LOWER_WORDS:
        return ParsedRule("lower", {}, [])
    head = _HEAD.fullmatch(text)
    keyword = re.sub(r"[ _]", "", head.group(1).lower()) if head else ""
    parse = _PARSERS.get(keyword)
    if parse is None:
        raise RuleTextError(
            f"unknown rule {_show(text)}; write e.g. copy, constant: X, cast: integer, "
            "date: DD.MM.YYYY -> YYYY-MM-DD, concat with ' ', map: A=1; B=2, lookup: TABLE, "
            "expr: …, or leave it blank for copy"
        )
    return parse(keyword, head.group(2).strip(), text, _value_type(target_type))


def _json_params(text: str) -> dict[str, Any]:
    try:
        params = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RuleTextError(f"the params are not valid JSON: {exc}")
    if not isinstance(params, dict):
        raise RuleTextError("the params must be a JSON object")
    return params


def _parse_constant(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    kind = "default" if keyword == "default" else "constant"
    if not rest:
        raise RuleTextError(f'{kind} needs a value, e.g. "{kind}: X"')
    return ParsedRule(kind, {"value": _value(rest, value_type)}, [])


def _parse_cast(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    match = re.fullmatch(r"(?:to\s+)?([a-z]+)\s*(?:\((.*)\))?", rest, re.IGNORECASE | re.DOTALL)
    to = _CAST_TYPES.get(match.group(1).lower()) if match else None
    if to is None:
        raise RuleTextError(
            f"cast to what? {_show(rest)} is not one of: string, integer, number, decimal, "
            "boolean, date"
        )
    params: dict[str, Any] = {"to": to}
    argument = match.group(2)
    if argument is not None:
        argument = argument.strip()
        if to == "decimal" and re.fullmatch(r"\d{1,3}", argument):
            params["places"] = int(argument)
        elif to == "date" and argument:
            params["format"] = _date_format_text(argument)
        else:
            raise RuleTextError(
                f"only decimal(PLACES) and date(FORMAT) take a value in brackets, not {_show(rest)}"
            )
    return ParsedRule("cast", params, [])


def _parse_date(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    sides = _split(rest, r"->|→|=>")
    if len(sides) != 2 or not sides[0].strip() or not sides[1].strip():
        raise RuleTextError('write a date rule as "date: FROM -> TO", e.g. date: DD.MM.YYYY -> iso')
    params: dict[str, Any] = {}
    for side, text_side in (("from", sides[0]), ("to", sides[1])):
        match = re.fullmatch(r"(.*?)\s+in\s+(\S+)", text_side.strip(), re.IGNORECASE | re.DOTALL)
        if match:
            params[side] = _date_format_text(match.group(1))
            params[f"{side}_tz"] = match.group(2)
        else:
            params[side] = _date_format_text(text_side)
    return ParsedRule("date_format", params, [])


def _date_format_text(text: str) -> str:
    """A date format of a sheet (iso, iso_date, strftime or tokens) as apps.mappings.dates
    reads it."""
    text, _ = _unquote(text)
    words = " ".join(text.lower().replace("-", " ").replace("_", " ").split())
    if words in ("iso", "iso 8601", "iso8601"):
        return "iso"
    if words == "iso date":
        return "iso_date"
    if "%" in text or not text:
        return text
    has_month_token = "MM" in text
    converted = []
    position = 0
    for match in _DATE_TOKEN.finditer(text):
        converted.append(text[position : match.start()])
        piece = match.group()
        if piece == "mm":
            after_hour = text[: match.start()].endswith(("HH:", "hh:"))
            token_format = "%M" if after_hour or has_month_token else "%m"
        else:
            token_format = _DATE_TOKENS[piece]
        converted.append(token_format)
        position = match.end()
    converted.append(text[position:])
    return "".join(converted)


def _parse_concat(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    parts = _split(rest, r"(?:^|\s+)(?:with|separated by)\s+", maxsplit=1)
    params: dict[str, Any] = {}
    if len(parts) == 2:
        params["separator"] = _character_text(parts[1])
    return ParsedRule(
        "concat", params, [path.strip() for path in _split(parts[0], r"[,;+\n]") if path.strip()]
    )


def _parse_split(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    match = re.fullmatch(
        rf"(?:(?:on|by)\s+)?{_QUOTED_OR_WORD}(?:\s+index\s+(-?\d{{1,5}}))?",
        rest,
        re.IGNORECASE | re.DOTALL,
    )
    if not match:
        raise RuleTextError(
            'write a split rule as "split: SEPARATOR [index N]", e.g. split: "," index 0'
        )
    params: dict[str, Any] = {"separator": _character_text(match.group(1))}
    if match.group(2) is not None:
        params["index"] = int(match.group(2))
    return ParsedRule("split", params, [])


def _parse_substring(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    first = re.fullmatch(r"first\s+(\d{1,7})", rest, re.IGNORECASE)
    if first:
        return ParsedRule("substring", {"length": int(first.group(1))}, [])
    match = re.fullmatch(r"(\d{1,7})\s*(?:,\s*(\d{1,7}))?", rest)
    if not match:
        raise RuleTextError(
            'write a substring rule as "substring: START,LENGTH" (START counts from 0)'
        )
    params: dict[str, Any] = {"start": int(match.group(1))}
    if match.group(2) is not None:
        params["length"] = int(match.group(2))
    return ParsedRule("substring", params, [])


def _parse_pad(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    match = re.fullmatch(
        r"(?:(left|right)\s+)?(?:to\s+)?(\d{1,7})(?:\s+(?:with|using)\s+(.+))?",
        rest,
        re.IGNORECASE | re.DOTALL,
    )
    fixed_side = {"lpad": "left", "rpad": "right"}.get(keyword)
    if not match or (fixed_side and match.group(1)):
        raise RuleTextError(
            'write a pad rule as "pad left WIDTH with FILL", e.g. pad left 10 with 0'
        )
    params: dict[str, Any] = {}
    side = fixed_side or (match.group(1) or "").lower()
    if side:
        params["side"] = side
    params["width"] = int(match.group(2))
    if match.group(3) is not None:
        params["fill"] = _character_text(match.group(3))
    return ParsedRule("pad", params, [])


def _parse_trim(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    match = re.fullmatch(
        r"(?:(both|left|right)\s*)?(?:chars\s+(.+))?", rest, re.IGNORECASE | re.DOTALL
    )
    fixed_side = {"ltrim": "left", "rtrim": "right"}.get(keyword)
    if not match or (fixed_side and match.group(1)):
        raise RuleTextError('write a trim rule as "trim [left|right] [chars X]"')
    params: dict[str, Any] = {}
    side = fixed_side or (match.group(1) or "").lower()
    if side:
        params["side"] = side
    if match.group(2) is not None:
        params["chars"] = _character_text(match.group(2))
    return ParsedRule("trim", params, [])


def _parse_code_map(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    codes: dict[str, Any] = {}
    for item in _split(rest, r"[;\n]"):
        if not item.strip():
            continue
        pair = _split(item, r"=>|->|=", maxsplit=1)
        if len(pair) != 2:
            raise RuleTextError(f"{_show(item.strip())} is not a pair like A=1")
        key, _ = _unquote(pair[0])
        if key in codes:
            raise RuleTextError(f"the code {key!r} is mapped twice")
        codes[key] = _value(pair[1], value_type)
    if not codes:
        raise RuleTextError('a map needs its pairs, e.g. "map: A=1; B=2"')
    return ParsedRule("code_map", {"map": codes}, [])


def _parse_lookup(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    table, _ = _unquote(rest)
    return ParsedRule("lookup", {"table": table} if table else {}, [])


_ARITHMETIC_WORDS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}


def _parse_arithmetic(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    tokens = rest.split()
    if keyword == "sum":
        op = "+"
    elif keyword in _ARITHMETIC_WORDS:
        op = _ARITHMETIC_WORDS[keyword]
        if tokens[:1] in (["by"], ["to"]):
            tokens = tokens[1:]
        if not tokens:
            raise RuleTextError(f"{keyword} what? e.g. {keyword} 100")
    else:
        if not tokens or tokens[0] not in ("+", "-", "*", "/"):
            raise RuleTextError(
                'write an arithmetic rule as "arithmetic: OP [NUMBER] [places N]", e.g. '
                "arithmetic: * 100 places 2"
            )
        op = tokens.pop(0)
    params: dict[str, Any] = {"op": op}
    if tokens and tokens[0].lower() not in ("places", "rounding", "as"):
        params["operand"] = _number(tokens.pop(0))
    while tokens:
        name = tokens.pop(0).lower()
        if name not in ("places", "rounding", "as") or not tokens or name in params:
            raise RuleTextError(
                f"{_show(rest)}: after the operand come places N, rounding R and as string|number"
            )
        option = tokens.pop(0)
        if name == "places":
            if not re.fullmatch(r"\d{1,3}", option):
                raise RuleTextError(f"places must be a whole number, not {_show(option)}")
            params["places"] = int(option)
        else:
            params[name] = option.lower()
    return ParsedRule("arithmetic", params, [])


def _parse_conditional(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    body = rest if keyword == "conditional" else text
    cases: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    for item in _split(body, r"[;\n]"):
        item = item.strip()
        if not item:
            continue
        otherwise = re.fullmatch(r"(?:else|otherwise)\s+(.+)", item, re.IGNORECASE | re.DOTALL)
        if otherwise:
            if "else" in params:
                raise RuleTextError("the rule has two else parts")
            params["else"] = _value(otherwise.group(1), value_type)
            continue
        case = re.fullmatch(r"(?:when|if)\s+(.+)", item, re.IGNORECASE | re.DOTALL)
        parts = _split(case.group(1), r"\s+then\s+", maxsplit=1) if case else []
        if len(parts) != 2:
            raise RuleTextError(f'{_show(item)} is not "when VALUE then RESULT" or "else RESULT"')
        condition = _condition(parts[0].strip())
        then_else = _split(parts[1], r"\s+(?:else|otherwise)\s+", maxsplit=1)
        condition["then"] = _value(then_else[0], value_type)
        cases.append(condition)
        if len(then_else) == 2:
            if "else" in params:
                raise RuleTextError("the rule has two else parts")
            params["else"] = _value(then_else[1], value_type)
    if not cases:
        raise RuleTextError('a conditional needs a case, e.g. "when A then 1; else 0"')
    return ParsedRule("conditional", {"cases": cases, **params}, [])


def _condition(text: str) -> dict[str, Any]:
    words = " ".join(text.lower().split())
    if words in ("missing", "blank", "empty", "is missing", "is blank", "is empty"):
        return {"missing": True}
    options = re.fullmatch(r"in\s*\((.*)\)", text, re.IGNORECASE | re.DOTALL)
    if options:
        return {"in": [_unquote(option)[0] for option in _split(options.group(1), ",")]}
    pattern = re.fullmatch(r"matches\s+(.+)", text, re.IGNORECASE | re.DOTALL)
    if pattern:
        return {"matches": _unquote(pattern.group(1))[0]}
    equals = re.fullmatch(r"(?:=|equals\s|is\s)\s*(.+)", text, re.IGNORECASE | re.DOTALL)
    value, quoted = _unquote(equals.group(1) if equals else text)
    if not quoted and re.search(r"\s(?:==?|!=|<>|<=?|>=?)\s", value):
        raise RuleTextError(
            f"{_show(text)}: a case tests the (first) source field against a value, as in "
            '"when A then 1"; for comparisons write expr: if … then … else …'
        )
    return {"equals": value}


def _parse_expression(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    if not rest:
        raise RuleTextError('an expression rule needs its expression, e.g. "expr: qty * price"')
    return ParsedRule("expression", {"expression": rest}, [])


def _parse_case(keyword: str, rest: str, text: str, value_type: str) -> ParsedRule:
    kind = "upper" if keyword.startswith("upper") else "lower"
    if rest.lower() not in ("", "case"):
        raise RuleTextError(f"{kind} takes nothing after it, not {_show(rest)}")
    return ParsedRule(kind, {}, [])


_PARSERS = {
    "constant": _parse_constant,
    "const": _parse_constant,
    "fixed": _parse_constant,
    "default": _parse_constant,
    "cast": _parse_cast,
    "convert": _parse_cast,
    "date": _parse_date,
    "dateformat": _parse_date,
    "formatdate": _parse_date,
    "reformatdate": _parse_date,
    "concat": _parse_concat,
    "concatenate": _parse_concat,
    "join": _parse_concat,
    "split": _parse_split,
    "substring": _parse_substring,
    "substr": _parse_substring,
    "pad": _parse_pad,
    "lpad": _parse_pad,
    "rpad": _parse_pad,
    "trim": _parse_trim,
    "ltrim": _parse_trim,
    "rtrim": _parse_trim,
    "upper": _parse_case,
    "uppercase": _parse_case,
    "lower": _parse_case,
    "lowercase": _parse_case,
    "map": _parse_code_map,
    "codemap": _parse_code_map,
    "lookup": _parse_lookup,
    "arithmetic": _parse_arithmetic,
    "sum": _parse_arithmetic,
    "add": _parse_arithmetic,
    "subtract": _parse_arithmetic,
    "multiply": _parse_arithmetic,
    "divide": _parse_arithmetic,
    "when": _parse_conditional,
    "if": _parse_conditional,
    "conditional": _parse_conditional,
    "expr": _parse_expression,
    "expression": _parse_expression,
}


# --------------------------------------------------------------------------------------
# Values in rule text
# --------------------------------------------------------------------------------------


def _split(text: str, delimiter: str, maxsplit: int = 0) -> list[str]:
    """``text`` split at matches of the ``delimiter`` pattern outside "double quotes"."""
    pattern = re.compile(r'"(?:[^"\\]|\\.)*"|' + delimiter, re.IGNORECASE)
    parts: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        if match.group().startswith('"') or match.end() == match.start():
            continue
        parts.append(text[start : match.start()])
        start = match.end()
        if maxsplit and len(parts) == maxsplit:
            break
    parts.append(text[start:])
    return parts


def _unquote(text: str) -> tuple[str, bool]:
    """(text, whether it was quoted): "double quotes" with JSON escapes or 'single'."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return text, False
        if isinstance(value, str):
            return value, True
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1], True
    return text, False


def _character_text(text: str) -> str:
    """A separator, fill or set of characters: quoted, a name (space, zero…) or bare."""
    value, quoted = _unquote(text)
    if quoted:
        return value
    return _NAMED_CHARACTERS.get(value.lower(), value)


def _value_type(target_type: str) -> str:
    """integer, number, boolean or text: how bare values of a row are read."""
    word = re.match(r"[a-z0-9]*", target_type.strip().lower()).group()
    if word in _INTEGER_TYPES:
        return "integer"
    if word in _NUMBER_TYPES:
        return "number"
    if word in _BOOLEAN_TYPES:
        return "boolean"
    return "text"


def _value(text: str, value_type: str) -> Any:
    """A value of a rule or default cell: quoted text, or bare text typed by the target."""
    value, quoted = _unquote(text)
    if quoted or value_type == "text":
        return value
    if value_type == "boolean":
        word = value.lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise RuleTextError(f"{_show(value)} is not true/false (the target type is boolean)")
    try:
        return _number(value, integer=value_type == "integer")
    except RuleTextError:
        raise RuleTextError(f"{_show(value)} is not {_a(value_type)} (the target type)")


def _a(value_type: str) -> str:
    return "an integer" if value_type == "integer" else "a number"


def _number(text: str, *, integer: bool = False) -> int | float:
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if not integer and _NUMBER_TEXT.fullmatch(text):
        number = float(text)
        if number - number == 0:  # finite
            return number
    raise RuleTextError(f"{_show(text)} is not {'an integer' if integer else 'a number'}")


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON (True is not 1, 1 is not 1.0)."""
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def write_csv(rows: Iterable[RuleRow]) -> bytes:
    """The rows as a UTF-8 CSV mapping sheet (with a byte-order mark, for Excel), every
    cell escaped against formula injection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_escape(cell) for cell in _export_cells(row)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def write_xlsx(rows: Iterable[RuleRow]) -> bytes:
    """The rows as an XLSX mapping sheet (streamed by openpyxl's write-only mode), every
    cell text and escaped against formula injection."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Mapping")
    bold = Font(bold=True)
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([_escape(cell) for cell in _export_cells(row)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _escape(text: str) -> str:
    """A cell's text as exported: without the control characters XLSX cannot hold, and with
    a ``'`` before a formula character (csv_export.safe_cell) or before a ``'`` that would
    otherwise read as that escape."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    if len(text) > 1 and text[0] == "'" and text[1] in _ESCAPED_AFTER_QUOTE:
        return "'" + text
    return safe_cell(text)


def _export_cells(row: RuleRow) -> list[str]:
    rule_text, lookup_text, default_text = rule_cells(row)
    cells = {
        TARGET_FIELD: row.target_path,
        TARGET_TYPE: row.target_type,
        REQUIRED: "yes" if row.required else "no",
        SOURCE_FIELD: ", ".join(row.source_paths),
        RULE: rule_text,
        LOOKUP_TABLE: lookup_text,
        DEFAULT: default_text,
        NOTES: row.notes,
        EXAMPLE: row.example,
    }
    return [cells[column] for column in COLUMNS]


def rule_cells(row: RuleRow) -> tuple[str, str, str]:
    """The transformation rule, lookup table and default cells of a row: the first idiom
    that reads back to exactly the row's kind, params and sources, else ``KIND {JSON}``."""
    for quote in (False, True):
        try:
            candidate = _idiom(row.kind, row.params, quote)
        except _Unrepresentable:
            break
        if candidate is not None and _reads_back(candidate, row):
            return candidate
    return (f"{row.kind} {json.dumps(row.params, ensure_ascii=False, sort_keys=True)}", "", "")


def _reads_back(cells: tuple[str, str, str], row: RuleRow) -> bool:
    if any(ILLEGAL_CHARACTERS_RE.search(cell) or len(cell) > MAX_CELL_CHARS for cell in cells):
        return False
    try:
        kind, params, sources = _rule_from_cells(
            *(cell.strip() for cell in cells), row.target_type.strip(), list(row.source_paths)
        )
    except _CellError:
        return False
    return kind == row.kind and sources == row.source_paths and _same_json(params, row.params)


class _Unrepresentable(Exception):
    pass


def _text(value: Any, quote: bool) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if quote else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value - value == 0:
        return repr(value)
    raise _Unrepresentable


def _quoted(value: Any) -> str:
    if not isinstance(value, str):
        raise _Unrepresentable
    return json.dumps(value, ensure_ascii=False)


def _idiom(kind: str, params: Any, quote: bool) -> tuple[str, str, str] | None:
    """(rule, lookup table, default) in the sheet idiom of a kind, or None when the params
    hold something the idiom cannot say; _Unrepresentable when quoting cannot help."""
    if not isinstance(params, dict):
        raise _Unrepresentable
    keys = set(params)

    def only(*allowed: str) -> bool:
        return keys <= set(allowed)

    if kind == "copy" and not keys:
        return "copy", "", ""
    if kind in ("upper", "lower") and not keys:
        return kind, "", ""
    if kind in ("constant", "default") and keys == {"value"}:
        return f"{kind}: {_text(params['value'], quote)}", "", ""
    if kind == "cast" and "to" in keys and only("to", "places", "format"):
        text = f"cast: {params['to']}"
        if "places" in keys:
            text += f"({params['places']})"
        if "format" in keys:
            text += f"({params['format']})"
        return text, "", ""
    if kind == "date_format" and {"from", "to"} <= keys and only("from", "to", "from_tz", "to_tz"):
        sides = []
        for side in ("from", "to"):
            text = str(params[side])
            if f"{side}_tz" in keys:
                text += f" in {params[side + '_tz']}"
            sides.append(text)
        return f"date: {sides[0]} -> {sides[1]}", "", ""
    if kind == "concat" and only("separator"):
        if "separator" in keys:
            return f"concat with {_quoted(params['separator'])}", "", ""
        return "concat", "", ""
    if kind == "split" and "separator" in keys and only("separator", "index"):
        text = f"split: {_quoted(params['separator'])}"
        if "index" in keys:
            text += f" index {params['index']}"
        return text, "", ""
    if kind == "substring" and keys and only("start", "length"):
        if "start" not in keys:
            return f"substring: first {params['length']}", "", ""
        if "length" not in keys:
            return f"substring: {params['start']}", "", ""
        return f"substring: {params['start']},{params['length']}", "", ""
    if kind == "pad" and "width" in keys and only("width", "side", "fill"):
        text = "pad"
        if "side" in keys:
            text += f" {params['side']}"
        text += f" {params['width']}"
        if "fill" in keys:
            text += f" with {_quoted(params['fill'])}"
        return text, "", ""
    if kind == "trim" and only("side", "chars"):
        text = "trim"
        if "side" in keys:
            text += f" {params['side']}"
        if "chars" in keys:
            text += f" chars {_quoted(params['chars'])}"
        return text, "", ""
    if kind == "code_map" and "map" in keys and only("map", "default"):
        codes = params["map"]
        if not isinstance(codes, dict) or not codes:
            raise _Unrepresentable
        pairs = "; ".join(
            f"{_text(key, quote)}={_text(value, quote)}" for key, value in codes.items()
        )
        default = _text(params["default"], quote) if "default" in keys else ""
        return f"map: {pairs}", "", default
    if kind == "lookup" and "table" in keys and only("table", "default"):
        if not isinstance(params["table"], str):
            raise _Unrepresentable
        default = _text(params["default"], quote) if "default" in keys else ""
        return "lookup", params["table"], default
    if kind == "arithmetic" and "op" in keys and only("op", "operand", "places", "rounding", "as"):
        text = f"arithmetic: {params['op']}"
        if "operand" in keys:
            text += f" {_text(params['operand'], False)}"
        for name in ("places", "rounding", "as"):
            if name in keys:
                text += f" {name} {params[name]}"
        return text, "", ""
    if kind == "conditional" and "cases" in keys and only("cases", "else"):
        items = [_case_text(case, quote) for case in params["cases"] or []]
        if not items:
            raise _Unrepresentable
        if "else" in keys:
            items.append(f"else {_text(params['else'], quote)}")
        return "; ".join(items), "", ""
    if kind == "expression" and keys == {"expression"}:
        return f"expr: {params['expression']}", "", ""
    raise _Unrepresentable


def _case_text(case: Any, quote: bool) -> str:
    if not isinstance(case, dict) or set(case) - {"equals", "in", "matches", "missing", "then"}:
        raise _Unrepresentable
    if "then" not in case or len(case) != 2:
        raise _Unrepresentable
    then = _text(case["then"], quote)
    if case.get("missing") is True:
        return f"when missing then {then}"
    if "in" in case and isinstance(case["in"], list):
        options = ", ".join(_quoted(option) for option in case["in"])
        return f"when in ({options}) then {then}"
    if "matches" in case:
        return f"when matches {_quoted(case['matches'])} then {then}"
    if "equals" in case:
        return f"when {_quoted(case['equals'])} then {then}"
    raise _Unrepresentable
