"""The vectorised strategy: the streamed comparison done column-wise with polars.

:class:`VectorisedComparison` answers exactly what
:class:`~apps.reconciliation.compare.StreamedComparison` answers — the same counts,
``column_mismatches``, samples (the first :data:`~apps.reconciliation.compare.SAMPLE_SIZE`
keys of each kind by :func:`~apps.reconciliation.compare.key_order`) and difference report
rows — at a fraction of the cost per value::

    comparison = VectorisedComparison(plan)
    comparison.add("source", rows)                  # batches of raw tuples, as readers give
    comparison.add_csv("target", data)              # or CSV text: bytes, a binary file, a path
    comparison.add_frame("target", frame)           # or a polars DataFrame
    outcome = comparison.finish(report)

:func:`read_side` feeds one side from an open reader the fastest way it can: PostgreSQL
through ``COPY (…) TO STDOUT (FORMAT csv)``, uploaded CSV files through polars' CSV reader,
everything else through the reader's batches of tuples.

Normalising
-----------
Every value is first turned into the text :func:`compare.normaliser` would effectively read
(``str(Decimal)`` for a number column, ``text_of(value)`` for a text column, the instant in
ISO form for a date-time; CSV and COPY cells are that text already), then normalised by polars
expressions into one column per plan column: ``String`` (text), ``Decimal(38, 12)`` (numbers,
with a text column beside it for the rare value that does not fit), ``Date``, ``Datetime``
(UTC, microseconds) or ``Boolean``. Each fast path accepts only a strict grammar whose
meaning in polars is exactly Python's (plain decimals with at most 16 + 12 digits,
``YYYY-MM-DD[( |T)HH:MM:SS[.ffffff][Z|±HH[[:]MM]]]``, ASCII booleans, ASCII lower case);
every other value goes through the Python normaliser itself, one value at a time, so the
result is the same by construction and a value that does not read raises the same
ComparisonError ("target column amount: 'ten' is not a number.").

Counting
--------
Rows are held in memory as polars frames until :data:`SPILL_BYTES` are held; from then on
each side is spread by a hash of its normalised key over ``partitions`` Arrow IPC files in
a temporary directory, and :meth:`finish` compares one partition at a time: per side a
``group_by`` of the key (rows per key, and the first row's values), a full join of the two
(NULL key parts equal), and the per-column differences, all in polars. Only the differences
come back to Python: the bounded samples, and the report, written by polars in the CSV
layout of the streamed strategy (lines end with ``\\r\\n``; the order of the rows is
unspecified).

Values shown
------------
Samples and the report show the raw values as the streamed strategy shows what the row
readers give (``shown_value``): for COPY, PostgreSQL's text is turned into what psycopg would have
given (``10.50`` as ``'10.5'``, ``t`` as ``True``, an integer as a number).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import queue
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import polars as pl

from apps.reconciliation.compare import (
    PARTITIONS,
    SAMPLE_SIZE,
    SIDES,
    ColumnRule,
    ComparisonError,
    Outcome,
    Plan,
    Refused,
    ReportWriter,
    canonical_number,
    key_order,
    normaliser,
    shown_value,
    text_of,
    utc_instant,
    values_equal,
)

SPILL_BYTES = 400 * 1024 * 1024  # held in memory (both sides, _bytes) before going to disk
FLUSH_BYTES = 48 * 1024 * 1024  # split pieces written to the partitions' files at once
CHUNK_BYTES = 8 * 1024 * 1024  # CSV text handed to polars at once
DIFFERENCES_AT_ONCE = 200_000  # differences sampled and written to the report together
NUMBER = pl.Decimal(38, 12)
NUMBER_SCALE = 12
MAX_INTEGER_DIGITS = 26  # what Decimal(38, 12) holds before the point
HASH_SEED = 0x5EED
CSV_FIELD_LIMIT = 131_072  # the csv module's default field_size_limit
MAX_LINE_BYTES = 1024 * 1024  # the file reader's longest line (files.MAX_LINE_CHARS)

# Exactly the characters Python's str.strip() removes (str.isspace).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Plain decimals Decimal() reads to the same value polars' to_decimal(12) gives, with at
# most 28 significant digits (so Decimal.normalize() keeps every digit).
_NUMBER = r"^[+-]?(?:[0-9]{1,16}(?:\.[0-9]{0,12}0*)?|\.[0-9]{1,12}0*)$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# ISO date-times datetime.fromisoformat reads the same way (a subset of what it reads).
_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$"
)
_FORMULA = r"^[=+\-@\t\r\x00]"  # a cell starting with one of FORMULA_PREFIXES
_BOOLEANS = {"true": True, "t": True, "yes": True, "y": True, "1": True}
_BOOLEANS |= {"false": False, "f": False, "no": False, "n": False, "0": False}

# How a raw value is shown (compare.shown_value): the text of it, and what to make of the text.
STR, INT, BOOL, FLOAT, NUMERIC, TIMESTAMP = range(6)

# PostgreSQL types read through COPY: what psycopg would give for each, as a "kind".
PG_KINDS = {
    16: "bool",
    18: "text",  # "char"
    19: "text",  # name
    20: "int",
    21: "int",
    23: "int",
    25: "text",
    26: "int",  # oid
    114: "text",  # json (read as text by the readers)
    700: "float",
    701: "float",
    1042: "text",  # char(n), padded as psycopg gives it
    1043: "text",
    1082: "date",
    1114: "timestamp",
    1184: "timestamptz",
    1700: "numeric",
    2950: "text",  # uuid: str(UUID) is PostgreSQL's text
    3802: "text",  # jsonb
}
FIRST_USER_OID = 16384  # enums, domains over text, citext…: psycopg gives their text
KINDS = ("text", "int", "numeric", "float", "bool", "date", "timestamp", "timestamptz")


class CsvFallback(Exception):
    """The CSV holds something (a blank or ragged line, a quote inside a bare cell, a huge
    field, bytes that are not UTF-8…) that polars would not read exactly as the csv module
    does; read that side with the file reader instead (after :meth:`discard`)."""


# --------------------------------------------------------------------------------------
# Normalising a column
# --------------------------------------------------------------------------------------


class _Column:
    """One plan column: its polars dtype(s) and how a column of input texts is normalised."""

    def __init__(self, rule: ColumnRule):
        self.rule = rule
        self.python = normaliser(rule)
        self.number = rule.type in ("number", "integer")
        self.text_input = _input_function(rule)

    def names(self, name: str) -> list[str]:
        return [name, f"{name}_o"] if self.number else [name]

    def dtypes(self) -> list[pl.DataType]:
        kind = self.rule.type
        if self.number:
            return [NUMBER, pl.String]
        return [
            {
                "text": pl.String,
                "date": pl.Date,
                "datetime": pl.Datetime("us"),
                "boolean": pl.Boolean,
            }[kind]
        ]

    # -- the fast paths ---------------------------------------------------------------

    def normalise(self, x: pl.Series) -> tuple[list[pl.Series], tuple | None]:
        """The normal form of a column of input texts, and (row, message) of the first value
        that is not of the column's type (None when all are)."""
        kind = self.rule.type
        if kind == "text":
            values, need = self._text(x)
            parts = [values]
        elif self.number:
            values, need = self._number(x)
            parts = [values, pl.repeat(None, len(x), dtype=pl.String, eager=True)]
        elif kind == "date":
            values, need = self._date(x)
            parts = [values]
        elif kind == "datetime":
            values, need = _datetimes(x)
            parts = [values]
        else:
            values, need = self._boolean(x)
            parts = [values]
        return self._patch(x, need, parts)

    def _text(self, x: pl.Series) -> tuple[pl.Series, pl.Series | None]:
        rule = self.rule
        s = x
        if rule.trim:
            s = s.str.strip_chars(WHITESPACE)
        elif not rule.keep_trailing_whitespace:
            s = s.str.strip_chars_end(WHITESPACE)
        if rule.empty_is_null:
            s = pl.select(pl.when(s == "").then(None).otherwise(s)).to_series()
        need = None
        if rule.case_insensitive:
            # str.lower and Rust's to_lowercase agree on ASCII; anything else is Python's.
            need = s.str.contains(r"[^\x00-\x7f]")
            s = s.str.to_lowercase()
        return s, need

    def _number(self, x: pl.Series) -> tuple[pl.Series, pl.Series]:
        ok = x.str.contains(_NUMBER)
        values = x.str.to_decimal(scale=NUMBER_SCALE)
        if self.rule.places is not None:
            values = values.round(self.rule.places, mode="half_away_from_zero")
        frame = pl.DataFrame({"x": x, "ok": ok, "v": values})
        result = frame.select(
            pl.when(pl.col("ok")).then(pl.col("v")).alias("v"),
            (pl.col("x").is_not_null() & ~pl.col("ok") & (pl.col("x") != "")).alias("need"),
        )
        return result["v"], result["need"]

    def _date(self, x: pl.Series) -> tuple[pl.Series, pl.Series]:
        parsed = x.str.to_date("%Y-%m-%d", strict=False, cache=False)
        frame = pl.DataFrame({"x": x, "d": parsed}).select(
            pl.col("x"),
            pl.when(
                pl.col("x").str.contains(_DATE)
                & pl.col("d").is_not_null()
                & (pl.col("d").dt.year() >= 1)
            )
            .then(pl.col("d"))
            .alias("d"),
        )
        values = frame["d"]
        need = frame.select(
            pl.col("x").is_not_null() & pl.col("d").is_null() & (pl.col("x") != "")
        ).to_series()
        if need.any():
            # Date-times count by their UTC date.
            index = need.arg_true()
            instants, still = _datetimes(x.gather(index))
            found = instants.dt.date()
            values.scatter(index.filter(~still), found.filter(~still))
            need = need.scatter(index.filter(~still), False)
        return values, need

    def _boolean(self, x: pl.Series) -> tuple[pl.Series, pl.Series]:
        # As written (t/f, true/false…), and only what is not in lower case again.
        values = x.replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean)
        unread = x.is_not_null() & values.is_null()
        if unread.any():
            index = unread.arg_true()
            values.scatter(
                index,
                x.gather(index)
                .str.to_lowercase()
                .replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean),
            )
        need = pl.DataFrame({"x": x, "v": values}).select(
            pl.col("x").is_not_null() & pl.col("v").is_null() & (pl.col("x") != "")
        )
        return values, need.to_series()

    # -- the Python normaliser, for what the fast paths do not read --------------------

    def _patch(
        self, x: pl.Series, need: pl.Series | None, parts: list[pl.Series]
    ) -> tuple[list[pl.Series], tuple | None]:
        if need is None or not need.any():
            return parts, None
        index = need.arg_true()
        results = []
        for row, value in zip(index.to_list(), x.gather(index).to_list(), strict=True):
            try:
                results.append(self.python(value))
            except Refused as exc:
                return parts, (row, exc.message, value)
        for part, patch in zip(parts, self.from_python(results), strict=True):
            part.scatter(index, patch)
        return parts, None

    def normalise_python(self, values: list) -> tuple[list[pl.Series], tuple | None]:
        """Every value through the Python normaliser (values of types the input texts do
        not cover exactly)."""
        results = []
        for row, value in enumerate(values):
            try:
                results.append(self.python(value))
            except Refused as exc:
                return [], (row, exc.message, value)
        return self.from_python(results), None

    def from_python(self, results: list) -> list[pl.Series]:
        """Series of this column's dtype(s) from Python normal forms."""
        kind = self.rule.type
        if kind == "text":
            return [pl.Series(results, dtype=pl.String)]
        if self.number:
            numbers, texts = [], []
            for result in results:
                if result is None:
                    numbers.append(None)
                    texts.append(None)
                    continue
                number = result if isinstance(result, Decimal) else Decimal(result)
                if _fits(number):
                    numbers.append(number)
                    texts.append(None)
                else:
                    numbers.append(None)
                    texts.append(str(result))
            return [pl.Series(numbers, dtype=NUMBER), pl.Series(texts, dtype=pl.String)]
        if kind == "date":
            return [
                pl.Series([date.fromisoformat(r) if r else None for r in results], dtype=pl.Date)
            ]
        if kind == "datetime":
            return [
                pl.Series(
                    [
                        datetime.fromisoformat(r).replace(tzinfo=None) if r else None
                        for r in results
                    ],
                    dtype=pl.Datetime("us"),
                )
            ]
        return [pl.Series([None if r is None else r == "true" for r in results], dtype=pl.Boolean)]


def _bytes(frame: pl.DataFrame) -> int:
    """The memory a frame holds: estimated_size counts a text's bytes, not the 16-byte
    view every value of a String column has."""
    views = sum(
        16 * frame.height
        for name, dtype in frame.schema.items()
        if dtype == pl.String and frame[name].null_count() < frame.height
    )
    return frame.estimated_size() + views


def _whole(frame: pl.DataFrame, name: str) -> bool:
    """Whether every number of the column is a whole number that Int64 holds."""
    column = pl.col(name)
    return bool(
        frame.select(
            column.cast(pl.Int64, strict=False).cast(NUMBER).eq_missing(column).all()
        ).item()
    )


def _fits(number: Decimal) -> bool:
    """Whether Decimal(38, 12) holds the number exactly."""
    if not number.is_finite():
        return False
    if number == 0:
        return True
    with localcontext() as context:
        context.prec = 80
        if number.adjusted() >= MAX_INTEGER_DIGITS:
            return False
        try:
            return number == number.quantize(Decimal(1).scaleb(-NUMBER_SCALE))
        except InvalidOperation:
            return False


def _datetimes(x: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Instants (naive UTC) of ISO texts of the fast grammar; and which non-empty texts it
    does not cover (for the Python normaliser)."""
    n = len(x)
    ok = x.str.contains(_DATETIME).fill_null(False)
    if n and (ok & (x.str.len_bytes() > 10)).any():
        first = x.filter(ok & (x.str.len_bytes() > 10))[0]
        separators = [first[10], "T" if first[10] == " " else " "]
    else:
        separators = ["T", " "]
    base = x.str.slice(0, 19)
    values = base.str.strptime(
        pl.Datetime("us"), f"%Y-%m-%d{separators[0]}%H:%M:%S", strict=False, cache=False
    )
    length = x.str.len_bytes()
    missing = ok & values.is_null()
    if missing.any():
        index = missing.arg_true()
        texts = x.gather(index)
        other = texts.str.slice(0, 19).str.strptime(
            pl.Datetime("us"), f"%Y-%m-%d{separators[1]}%H:%M:%S", strict=False, cache=False
        )
        days = texts.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False, cache=False)
        dates = pl.select(
            pl.when(texts.str.len_bytes() == 10).then(days.cast(pl.Datetime("us")))
        ).to_series()
        values.scatter(index, pl.select(pl.coalesce(other, dates)).to_series())
    has_tail = (ok & (length > 19)).fill_null(False)
    if has_tail.any():
        # The fraction, vectorised; the offset per distinct offset (few: "+00", "Z"…). A
        # tail of the grammar is [.digits][offset], and an offset starts with Z, + or -.
        tail = pl.col("tail")
        start = tail.str.find("[Z+-]")
        digits = pl.when(tail.str.starts_with(".")).then(
            tail.str.slice(1, pl.coalesce(start, tail.str.len_bytes()) - 1)
        )
        fraction, offsets = (
            pl.DataFrame({"tail": pl.select(pl.when(has_tail).then(x.str.slice(19))).to_series()})
            .select(
                (digits.cast(pl.Int64) * pl.lit(10, pl.Int64).pow(6 - digits.str.len_bytes()))
                .fill_null(0)
                .alias("fraction"),
                tail.str.slice(start).alias("offset"),
            )
            .get_columns()
        )
        distinct = offsets.drop_nulls().unique().to_list()
        shifts = {offset: _offset_micros(offset) for offset in distinct}
        shift = offsets.replace_strict(shifts, default=None, return_dtype=pl.Int64)
        values = pl.select(
            values + pl.duration(microseconds=fraction - shift.fill_null(0))
        ).to_series()
        ok = ok & ~(offsets.is_not_null() & shift.is_null())
    years = values.dt.year()
    # Beyond 0002–9998 astimezone may overflow, as Python's would: leave those to Python.
    good = ok & values.is_not_null() & (years >= 2) & (years <= 9998)
    values = pl.select(pl.when(good).then(values)).to_series()
    need = x.is_not_null() & ~good.fill_null(False) & (x != "")
    return values, need


def _offset_micros(offset: str) -> int | None:
    """Microseconds an offset ("Z", "+01", "-0130", "+05:30") is ahead of UTC; None for
    what Python reads otherwise or refuses (minutes past 59, a day or more)."""
    if offset == "Z":
        return 0
    hours, minutes = int(offset[1:3]), int(offset[-2:]) if len(offset) > 3 else 0
    if minutes >= 60 or hours * 60 + minutes >= 24 * 60:
        return None
    micros = (hours * 60 + minutes) * 60_000_000
    return micros if offset[0] == "+" else -micros


def _input_function(rule: ColumnRule) -> Callable[[Any], str]:
    """The text of a raw (non-str) value that the normaliser reads as it reads the value."""
    if rule.type in ("number", "integer"):
        return str  # str(Decimal) is exact; str(float) is repr; str(True) is refused alike

    if rule.type in ("date", "datetime"):

        def moment(value):
            if isinstance(value, datetime):
                return utc_instant(value).isoformat()
            if isinstance(value, date):
                return value.isoformat()
            return str(value)

        return moment
    return text_of


_SAFE_TYPES = frozenset({str, int, float, Decimal, bool, date, datetime, type(None)})


# --------------------------------------------------------------------------------------
# Reading CSV text
# --------------------------------------------------------------------------------------


def _record_end(buffer: bytes | bytearray, quote: int = 0x22) -> int:
    """The end (after its line break) of the last whole record in the buffer; 0 if none.
    A line break inside a quoted cell does not end a record: the quotes before a record's
    end are even in number."""
    total = buffer.count(b'"')
    position = buffer.rfind(b"\n")
    while position >= 0:
        if (total - buffer.count(b'"', position)) % 2 == 0:
            return position + 1
        position = buffer.rfind(b"\n", 0, position)
    return 0


def _csv_chunks(data: Any, chunk_bytes: int) -> Iterator[bytes]:
    """Pieces of CSV text that end at a record's end (the last may not end with a line
    break)."""
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
        if len(data) <= chunk_bytes:
            if data:
                yield data
            return
        data = io.BytesIO(data)
    close = False
    if isinstance(data, str | os.PathLike):
        data = open(data, "rb")  # noqa: SIM115 - closed below
        close = True
    try:
        pending = b""
        while True:
            block = data.read(chunk_bytes)
            if not block:
                break
            pending += block
            end = _record_end(pending)
            if end:
                yield pending[:end]
                pending = pending[end:]
        if pending:
            yield pending
    finally:
        if close:
            data.close()


def _split_header(chunk: bytes, delimiter: str) -> tuple[list[str], bytes]:
    """The header record's cells and the rest of the chunk."""
    newline = chunk.find(b"\n")
    end = len(chunk) if newline < 0 else newline + 1
    if b'"' in chunk[:end]:
        # A quoted header (perhaps over several lines): the first record by the csv module.
        end = _first_record_end(chunk)
    line = chunk[:end].decode("utf-8")
    cells = next(csv.reader(io.StringIO(line, newline=""), delimiter=delimiter), [])
    return cells, chunk[end:]


def _first_record_end(chunk: bytes) -> int:
    quotes = 0
    for index, byte in enumerate(chunk):
        if byte == 0x22:
            quotes += 1
        elif byte == 0x0A and quotes % 2 == 0:
            return index + 1
    return len(chunk)


def _check_plain(chunk: bytes, width: int) -> None:
    """Raises CsvFallback for what the csv module reads otherwise than polars (file mode).
    (With more than one column, a blank line is a record too short, which _check_frame
    finds.)"""
    if b"\x00" in chunk:
        raise CsvFallback("NUL bytes")
    if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
        raise CsvFallback("line breaks that are a lone CR")
    if width <= 1 and (
        chunk.startswith((b"\n", b"\r\n")) or b"\n\n" in chunk or b"\n\r\n" in chunk
    ):
        raise CsvFallback("blank lines")


# --------------------------------------------------------------------------------------
# Values as the streamed strategy shows them
# --------------------------------------------------------------------------------------


def _display(text: str | None, tag: int) -> Any:
    """The raw value as compare.shown_value gives it, from its stored text and tag."""
    if text is None:
        return None
    if tag == STR:
        return text
    if tag == INT:
        return int(text)
    if tag == BOOL:
        return text in ("True", "t")
    if tag == FLOAT:
        number = float(text)
        return number if math.isfinite(number) else str(number)
    if tag == NUMERIC:
        return text_of(Decimal(text))
    return datetime.fromisoformat(text).isoformat()  # TIMESTAMP (PostgreSQL's text)


def _cell(value: Any) -> str | None:
    """The text safe_cell makes of a shown value, before its formula escape."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# The shown values of a row are kept packed in one text (a value of a String column costs
# 16 bytes before its text): first the tag digit of every column (or nothing, when they are
# the side's usual tags), then each column's text separated by US (\x1f): RS (\x1e) alone
# for NULL, RS "=" for a text that is its own normal form (a text column's usual case), and
# a text's own US and RS escaped with RS.
_SEPARATOR = "\x1f"
_ESCAPE = "\x1e"
_SAME = _ESCAPE + "="


def _pack(
    shown: list[tuple[pl.Series, int | pl.Series]],
    normal: list[pl.Series | None],
    usual_tags: str | None,
    plain: bool = False,
) -> pl.Series:
    """``normal``: per column, its normal form when it is text (else None); ``plain``: the
    caller knows no text holds US or RS."""
    cells = []
    for (texts, _tag), normalised in zip(shown, normal, strict=True):
        if not plain and texts.str.contains_any([_SEPARATOR, _ESCAPE]).any():
            texts = texts.str.replace_all(_ESCAPE, _ESCAPE * 2, literal=True).str.replace_all(
                _SEPARATOR, _ESCAPE + "_", literal=True
            )
        cell = texts.fill_null(_ESCAPE)
        if normalised is not None:
            cell = pl.when(texts == normalised).then(pl.lit(_SAME)).otherwise(cell)
        cells.append(cell)
    if all(isinstance(tag, int) for _texts, tag in shown):
        constant = "".join(str(tag) for _texts, tag in shown)
        tags = pl.lit("" if constant == usual_tags else constant)
    else:
        tags = pl.concat_str(
            pl.lit(str(tag)) if isinstance(tag, int) else tag.cast(pl.String)
            for _texts, tag in shown
        )
    return pl.select(pl.concat_str([tags, *cells], separator=_SEPARATOR).alias("_raw")).to_series()


def _unpack(
    rows: pl.DataFrame, packed: str, width: int, suffix: str, usual_tags: str, normal: list
) -> list[pl.Series]:
    """The texts r{i} and tags t{i} (with the suffix) of packed shown values; ``normal``
    names each column's normal form in ``rows`` (text columns) or is None."""
    parts = rows[packed].str.split(_SEPARATOR)
    escaped = rows[packed].str.contains(_ESCAPE + "[^=]").any()
    tags = parts.list.get(0, null_on_oob=True)
    tags = pl.select(pl.when(tags == "").then(pl.lit(usual_tags)).otherwise(tags)).to_series()
    columns = []
    for index in range(width):
        cells = parts.list.get(index + 1, null_on_oob=True)
        same = normal[index]
        texts = rows.select(
            pl.when(cells == _ESCAPE)
            .then(None)
            .when(cells == _SAME)
            .then(pl.col(same) if same else None)
            .otherwise(cells)
        ).to_series()
        if escaped:
            texts = pl.Series([_unescape(text) for text in texts.to_list()], dtype=pl.String)
        columns.append(texts.alias(f"r{index}{suffix}"))
        columns.append(tags.str.slice(index, 1).cast(pl.UInt8).alias(f"t{index}{suffix}"))
    return columns


def _unescape(text: str | None) -> str | None:
    if text is None or _ESCAPE not in text:
        return text
    return re.sub(
        "\x1e(.)", lambda match: _SEPARATOR if match.group(1) == "_" else _ESCAPE, text, flags=re.S
    )


def _shown_column(values: list) -> tuple[pl.Series, int | pl.Series]:
    """Texts and tags of a column of raw Python values."""
    types = set(map(type, values))
    types.discard(type(None))
    if types <= {str}:
        return pl.Series(values, dtype=pl.String), STR
    if types <= {int}:
        return pl.Series([None if v is None else str(v) for v in values], dtype=pl.String), INT
    texts, tags = [], []
    for value in values:
        shown = shown_value(value)
        if shown is None or isinstance(shown, str):
            texts.append(shown)
            tags.append(STR)
        elif isinstance(shown, bool):
            texts.append(str(shown))
            tags.append(BOOL)
        elif isinstance(shown, int):
            texts.append(str(shown))
            tags.append(INT)
        else:  # a finite float
            texts.append(repr(shown))
            tags.append(FLOAT)
    return pl.Series(texts, dtype=pl.String), pl.Series(tags, dtype=pl.UInt8)


# --------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------


class VectorisedComparison:
    """Compares two streams of rows by key, vectorised, with bounded memory.

    The contract of :class:`~apps.reconciliation.compare.StreamedComparison`: feed each side
    (in any order) with :meth:`add` (raw tuples in :meth:`Plan.side_columns` order),
    :meth:`add_csv` or :meth:`add_frame`, then call :meth:`finish`. ``outcome.source_rows``
    and ``outcome.target_rows`` count the rows added so far.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        partitions: int = 2 * PARTITIONS,
        spill_bytes: int = SPILL_BYTES,
        flush_bytes: int = FLUSH_BYTES,
        work_dir: str | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ):
        self.plan = plan
        self.partitions = max(1, partitions)
        self.spill_bytes = spill_bytes
        self.flush_bytes = flush_bytes
        self.work_dir = work_dir
        self.chunk_bytes = chunk_bytes
        self.key_count = len(plan.keys)
        self.sources = [source for source, _ in plan.keys + plan.columns]
        self.rules = [plan.rules[source] for source in self.sources]
        self.columns = [_Column(rule) for rule in self.rules]
        self.width = len(self.columns)
        self.normal_names: list[list[str]] = [
            column.names(f"n{index}") for index, column in enumerate(self.columns)
        ]
        self.key_names = [name for names in self.normal_names[: self.key_count] for name in names]
        self.schema: dict[str, pl.DataType] = {}
        for column, names in zip(self.columns, self.normal_names, strict=True):
            self.schema.update(zip(names, column.dtypes(), strict=True))
        self.schema["_raw"] = pl.String  # the shown values of the row, packed (_pack)
        self.outcome = Outcome(column_mismatches={source: 0 for source, _ in plan.columns})
        self._held: dict[str, list[pl.DataFrame]] = {side: [] for side in SIDES}
        self._parts: dict[str, list[list[pl.DataFrame]]] = {
            side: [[] for _ in range(self.partitions)] for side in SIDES
        }
        self._partitioned = False
        self._tags: dict[str, str | None] = dict.fromkeys(SIDES)  # usual, per side
        self._held_bytes = 0
        self._pieces_bytes = 0
        self._files: dict[str, list[list[str]]] = {
            side: [[] for _ in range(self.partitions)] for side in SIDES
        }
        self._flushes = 0
        self._temp: tempfile.TemporaryDirectory | None = None
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pontis-recon")
        # The two sides may be added from two threads at once (see read_sides): what they
        # hold together is kept under this lock.
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------

    def add(self, side: str, rows: Iterable[tuple]) -> int:
        """Normalises and keeps a batch of raw rows of a side; returns how many."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return 0
        names = self.plan.side_columns(side)
        for raw in rows:
            if len(raw) != self.width:
                raise ComparisonError(
                    f"A {side} row has {len(raw)} values; {len(names)} columns were asked for."
                )
        columns = [list(values) for values in zip(*rows, strict=True)]
        inputs: list[pl.Series | list] = []
        shown: list[tuple[pl.Series, int | pl.Series]] = []
        for column, values in zip(self.columns, columns, strict=True):
            types = set(map(type, values))
            if types <= {str, type(None)}:
                series = pl.Series(values, dtype=pl.String)
                inputs.append(series)
                shown.append((series, STR))
                continue
            shown.append(_shown_column(values))
            if not types <= _SAFE_TYPES:
                inputs.append(values)  # through the Python normaliser
                continue
            convert = column.text_input
            inputs.append(
                pl.Series(
                    [
                        None if v is None else v if v.__class__ is str else convert(v)
                        for v in values
                    ],
                    dtype=pl.String,
                )
            )
        return self._ingest(side, inputs, shown, lambda row: rows[row])

    def add_frame(self, side: str, frame: pl.DataFrame) -> int:
        """A polars DataFrame of a side: its columns in :meth:`Plan.side_columns` order (by
        position). String columns are taken as texts (null is NULL); other columns as the
        Python values polars gives for them."""
        if frame.width != self.width:
            raise ComparisonError(
                f"A {side} frame has {frame.width} columns; {self.width} columns were asked for."
            )
        if frame.height == 0:
            return 0
        if all(dtype == pl.String for dtype in frame.dtypes):
            return self._add_texts(side, list(frame.get_columns()), ["text"] * self.width)
        return self.add(side, frame.rows())

    def add_csv(
        self,
        side: str,
        data: Any,
        *,
        columns: Sequence[str | int] | None = None,
        header: bool = True,
        delimiter: str = ",",
        nulls: bool = True,
        kinds: Sequence[str] | None = None,
        width: int | None = None,
    ) -> int:
        """CSV text of a side: ``bytes``, a binary file or a path, UTF-8.

        ``header``: the first record names the columns; ``columns`` then names the side's
        columns in :meth:`Plan.side_columns` order (default: the header's columns, which
        must be exactly the side's). Without a header, ``columns`` gives their positions
        (default: the first ones) among ``width`` columns.

        ``nulls=True`` reads CSV as ``COPY … TO STDOUT (FORMAT csv)`` writes it: an unquoted
        empty cell is NULL and ``""`` the empty text. ``nulls=False`` reads it as an
        uploaded file is read (every cell is a text; the file reader's rules on blank and
        ragged lines, CsvFallback where polars would read otherwise). ``kinds`` says for
        each column what PostgreSQL type its text is the output of (:data:`KINDS`; default
        text)."""
        kinds = list(kinds or ["text"] * self.width)
        if len(kinds) != self.width or not set(kinds) <= set(KINDS):
            raise ValueError(f"kinds must name one of {', '.join(KINDS)} per column")
        if len(delimiter) != 1:
            raise ValueError("the delimiter is one character")
        added = 0
        positions: list[int] | None = None
        for number, chunk in enumerate(_csv_chunks(data, self.chunk_bytes)):
            if number == 0 and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            if not nulls and number == 0 and header:
                _check_plain(chunk, 2)  # the header's line; the records' again below
            if number == 0 and header:
                try:
                    names, chunk = _split_header(chunk, delimiter)
                except UnicodeDecodeError:
                    raise CsvFallback("a header that is not UTF-8") from None
                width = len(names)
                positions = self._header_positions(side, names, columns)
            elif positions is None:
                width = width or self.width
                positions = list(columns) if columns is not None else list(range(self.width))
                if len(positions) != self.width or not all(
                    isinstance(p, int) and 0 <= p < width for p in positions
                ):
                    raise ValueError("columns must give a position per column of the side")
            if not chunk:
                continue
            added += self._add_chunk(side, chunk, positions, width, delimiter, nulls, kinds)
        return added

    def _header_positions(
        self, side: str, names: list[str], columns: Sequence[str | int] | None
    ) -> list[int]:
        if columns is None:
            if len(names) != self.width:
                raise ComparisonError(
                    f"The {side} CSV has {len(names)} columns; {self.width} were asked for."
                )
            return list(range(self.width))
        positions = []
        for column in columns:
            if isinstance(column, int):
                positions.append(column)
            elif column in names:
                positions.append(names.index(column))
            else:
                raise ComparisonError(f"The {side} CSV has no column {column!r}.")
        if len(positions) != self.width:
            raise ValueError("columns must name a column per column of the side")
        return positions

    def _add_chunk(
        self,
        side: str,
        chunk: bytes,
        positions: list[int],
        width: int,
        delimiter: str,
        nulls: bool,
        kinds: list[str],
    ) -> int:
        schema = {f"c{index}": pl.String for index in range(width)}
        if not nulls:
            _check_plain(chunk, width)
        wanted = sorted(set(positions))
        read_all = not nulls  # the checks of file mode look at every cell
        try:
            frame = pl.read_csv(
                chunk,
                has_header=False,
                schema=schema,
                columns=None if read_all else wanted,
                separator=delimiter,
                quote_char='"',
                empty_string_is_null=nulls,
                raise_if_empty=False,
                truncate_ragged_lines=False,
            )
        except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
            if not nulls:
                raise CsvFallback(str(exc).splitlines()[0] if str(exc) else "polars") from None
            raise ComparisonError(f"The {side} CSV could not be read: {exc}") from None
        if frame.height == 0:
            return 0
        if not nulls:
            self._check_frame(chunk, frame, delimiter, width)
        texts = [frame[f"c{position}"] for position in positions]
        plain = _SEPARATOR.encode() not in chunk and _ESCAPE.encode() not in chunk
        return self._add_texts(side, texts, kinds, plain=plain)

    @staticmethod
    def _check_frame(chunk: bytes, frame: pl.DataFrame, delimiter: str, width: int) -> None:
        """What the file reader refuses and polars reads: a ragged (short) record, which
        polars fills with empty cells (every record has width - 1 delimiters outside its
        quoted cells), a cell over the csv module's field limit, a line over the reader's."""
        lengths = [pl.col(name).str.len_bytes() for name in frame.columns]
        inside, longest, widest = frame.select(
            (
                pl.sum_horizontal(
                    pl.col(name).str.count_matches(delimiter, literal=True)
                    for name in frame.columns
                ).sum()
                if b'"' in chunk
                else pl.lit(0)
            ).alias("inside"),
            pl.max_horizontal(length.max() for length in lengths).alias("longest"),
            pl.sum_horizontal(lengths).max().alias("widest"),
        ).row(0)
        if width > 1 and chunk.count(delimiter.encode()) - inside != frame.height * (width - 1):
            raise CsvFallback("records with fewer cells than the header")
        # A record's bytes are at most twice its cells' (doubled quotes) plus quotes and
        # delimiters; no physical line of it is longer.
        widest = (widest or 0) * (2 if b'"' in chunk else 1) + 3 * width
        if (longest or 0) > CSV_FIELD_LIMIT or widest > MAX_LINE_BYTES:
            raise CsvFallback("very long cells or lines")

    def _add_texts(
        self, side: str, texts: list[pl.Series], kinds: list[str], *, plain: bool = False
    ) -> int:
        """Columns of texts (CSV cells or PostgreSQL's output) of a side."""
        inputs: list[pl.Series | list] = []
        shown: list[tuple[pl.Series, int | pl.Series]] = []
        for column, x, kind in zip(self.columns, texts, kinds, strict=True):
            x = x.cast(pl.String)
            value, tag = _pg_input(column, x, kind)
            inputs.append(value)
            shown.append((x, tag))

        def raw_row(row: int) -> tuple:
            return tuple(
                _display(text[row], tag if isinstance(tag, int) else tag[row])
                for text, tag in shown
            )

        return self._ingest(side, inputs, shown, raw_row, plain=plain)

    def _ingest(
        self,
        side: str,
        inputs: list[pl.Series | list],
        shown: list[tuple[pl.Series, int | pl.Series]],
        raw_row: Callable[[int], tuple],
        *,
        plain: bool = False,
    ) -> int:
        height = len(shown[0][0])

        def normalise(index: int):
            column, value = self.columns[index], inputs[index]
            if isinstance(value, list):
                return column.normalise_python(value)
            return column.normalise(value)

        results = list(self._pool.map(normalise, range(self.width)))
        refused = [
            (problem[0], index, problem)
            for index, (_parts, problem) in enumerate(results)
            if problem is not None
        ]
        if refused:
            self._refuse(side, raw_row, min(refused))
        data: dict[str, pl.Series] = {}
        for names, (parts, _problem) in zip(self.normal_names, results, strict=True):
            for name, part in zip(names, parts, strict=True):
                data[name] = part.rename(name)
        tags = [tag for _texts, tag in shown]
        if self._tags[side] is None and all(isinstance(tag, int) for tag in tags):
            self._tags[side] = "".join(map(str, tags))
        normal = [
            results[index][0][0] if column.rule.type == "text" else None
            for index, column in enumerate(self.columns)
        ]
        data["_raw"] = _pack(shown, normal, self._tags[side], plain)
        frame = pl.DataFrame(data).cast(self.schema)
        self._keep(side, frame)
        if side == "source":
            self.outcome.source_rows += height
        else:
            self.outcome.target_rows += height
        return height

    def _refuse(self, side: str, raw_row: Callable[[int], tuple], first: tuple) -> None:
        """Raises the streamed strategy's error for the first row with a refused value: its
        first column whose raw value the normaliser refuses."""
        row, index, (_row, message, value) = first
        names = self.plan.side_columns(side)
        for position, (column, shown) in enumerate(zip(self.columns, raw_row(row), strict=True)):
            try:
                column.python(shown)
            except Refused as exc:
                index, value, message = position, shown, exc.message
                break
        text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ComparisonError(f"{side} column {names[index]}: {text} {message}.")

    def discard(self, side: str) -> None:
        """Forgets every row of a side read so far (to read it again another way)."""
        with self._lock:
            self._discard(side)

    def _discard(self, side: str) -> None:
        self._held_bytes -= sum(_bytes(frame) for frame in self._held[side])
        self._held[side] = []
        self._parts[side] = [[] for _ in range(self.partitions)]
        for paths in self._files[side]:
            for path in paths:
                os.unlink(path)
            paths.clear()
        if side == "source":
            self.outcome.source_rows = 0
        else:
            self.outcome.target_rows = 0

    # -- holding, partitioning and spilling ---------------------------------------------
    #
    # Rows are held as they come, in memory, until spill_bytes are held; then they are
    # split by key hash, a frame at a time, and every flush_bytes of split pieces are
    # written to one file per partition (so the split never holds a second copy of much);
    # from then on every frame is split on arrival. finish compares what stayed in memory
    # at once, or else one partition at a time.

    def _keep(self, side: str, frame: pl.DataFrame) -> None:
        with self._lock:
            self._keep_locked(side, frame)

    def _keep_locked(self, side: str, frame: pl.DataFrame) -> None:
        size = _bytes(frame)
        self._held_bytes += size
        if self._partitioned:
            self._add_pieces(side, frame, size)
            return
        self._held[side].append(frame)
        if self._held_bytes >= self.spill_bytes:
            self._partitioned = True
            self._held_bytes = 0
            for held_side in SIDES:
                held, self._held[held_side] = self._held[held_side], []
                while held:
                    piece = held.pop(0)
                    self._add_pieces(held_side, piece, _bytes(piece))
                    del piece

    def _add_pieces(self, side: str, frame: pl.DataFrame, size: int) -> None:
        parts = self._parts[side]
        if self.partitions == 1:
            parts[0].append(frame)
        else:
            index = (frame.select(self.key_names).hash_rows(seed=HASH_SEED) % self.partitions).cast(
                pl.UInt32
            )
            split = frame.with_columns(index.alias("_p")).partition_by(
                "_p", as_dict=True, include_key=False
            )
            for (number,), piece in split.items():
                parts[number].append(piece)
        self._pieces_bytes += size
        if self._pieces_bytes >= self.flush_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._temp is None:
            self._temp = tempfile.TemporaryDirectory(prefix="pontis-recon-", dir=self.work_dir)
        self._flushes += 1
        for side in SIDES:
            for index, pieces in enumerate(self._parts[side]):
                if not pieces:
                    continue
                path = os.path.join(self._temp.name, f"{side}-{index}-{self._flushes}.arrow")
                pl.concat(pieces, rechunk=False).write_ipc(path)
                self._files[side][index].append(path)
                pieces.clear()
        self._pieces_bytes = 0

    def _partition_frames(self, side: str, index: int) -> pl.DataFrame:
        """A partition of a side, from its files and the pieces in memory (both let go)."""
        paths, pieces = self._files[side][index], self._parts[side][index]
        frames = [pl.read_ipc(path) for path in paths] + pieces
        for path in paths:
            os.unlink(path)
        self._files[side][index], self._parts[side][index] = [], []
        return pl.concat(frames, rechunk=False) if frames else pl.DataFrame(schema=self.schema)

    # -- comparing -------------------------------------------------------------------

    def finish(self, report: io.TextIOBase | None = None) -> Outcome:
        if report is not None:
            ReportWriter(report, [source for source, _ in self.plan.keys])  # the header
        order = key_order(self.plan)
        candidates: dict[str, list[tuple]] = {kind: [] for kind in _KINDS}
        pending: list[pl.DataFrame] = []
        try:
            if self._partitioned:
                pairs = (
                    (
                        self._partition_frames("source", index),
                        self._partition_frames("target", index),
                    )
                    for index in range(self.partitions)
                )
            else:
                pairs = iter([tuple(self._take_held(side) for side in SIDES)])
            for source, target in pairs:
                differences = self._compare(source, target)
                if differences is not None:
                    pending.append(differences)
                if sum(frame.height for frame in pending) >= DIFFERENCES_AT_ONCE:
                    self._differences(pl.concat(pending), candidates, report)
                    pending = []
            if pending:
                self._differences(pl.concat(pending), candidates, report)
        finally:
            self._pool.shutdown(wait=False)
            if self._temp is not None:
                self._temp.cleanup()
                self._temp = None
        self.outcome.samples = {
            kind: [item for _key, item in sorted(found, key=lambda pair: order(pair[0]))][
                :SAMPLE_SIZE
            ]
            for kind, found in candidates.items()
        }
        return self.outcome

    def _take_held(self, side: str) -> pl.DataFrame:
        frames, self._held[side] = self._held[side], []
        if not frames:
            return pl.DataFrame(schema=self.schema)
        return pl.concat(frames, rechunk=False)

    def _compare(self, source: pl.DataFrame, target: pl.DataFrame) -> pl.DataFrame | None:
        """Counts the keys of one partition into the outcome; returns its differences (with
        the shown values of both rows) or None."""
        outcome = self.outcome
        if source.height == 0 and target.height == 0:
            return None
        keys = list(self.key_names)
        # Overflow columns of number keys that hold nothing on either side are left out.
        for name in list(keys):
            if (
                name.endswith("_o")
                and source[name].null_count() == source.height
                and (target[name].null_count() == target.height)
            ):
                keys.remove(name)
        # Whole-number keys (ids) group and join faster as Int64 than as Decimal(38, 12).
        for column, names in zip(
            self.columns[: self.key_count], self.normal_names[: self.key_count], strict=True
        ):
            name = names[0]
            if (
                column.number
                and names[1] not in keys
                and _whole(source, name)
                and _whole(target, name)
            ):
                source = source.with_columns(pl.col(name).cast(pl.Int64))
                target = target.with_columns(pl.col(name).cast(pl.Int64))
        values = [name for names in self.normal_names[self.key_count :] for name in names]
        source = source.with_row_index("_i")
        target = target.with_row_index("_i")
        aggregate = [pl.len().alias("_n"), pl.col("_i").first()] + [
            pl.col(name).first() for name in values
        ]
        grouped_source = source.group_by(keys).agg(aggregate)
        grouped_target = target.group_by(keys).agg(aggregate)
        # Only the shown values are looked up again (for the differences): let the rest go.
        source, target = source.select("_raw"), target.select("_raw")
        joined = grouped_source.join(
            grouped_target, on=keys, how="full", nulls_equal=True, coalesce=True, suffix="_t"
        )
        source_n, target_n = pl.col("_n"), pl.col("_n_t")
        single = source_n.eq(1) & target_n.eq(1)
        differs = []
        for offset in range(len(self.plan.columns)):
            names = self.normal_names[self.key_count + offset]
            equal = pl.lit(True)
            for name in names:
                equal = equal & pl.col(name).eq_missing(pl.col(f"{name}_t"))
            differs.append((single & ~equal).fill_null(False).alias(f"_d{offset}"))
        joined = joined.with_columns(differs)
        for offset, (source_name, _) in enumerate(self.plan.columns):
            if self.plan.rules[source_name].tolerance is not None:
                joined = self._within_tolerance(joined, offset)
        flags = [f"_d{offset}" for offset in range(len(self.plan.columns))]
        any_differs = pl.any_horizontal(flags) if flags else pl.lit(False)
        code = (
            pl.when(target_n.is_null())
            .then(pl.lit(1, dtype=pl.UInt8))
            .when(source_n.is_null())
            .then(pl.lit(2, dtype=pl.UInt8))
            .when((source_n > 1) | (target_n > 1))
            .then(pl.lit(3, dtype=pl.UInt8))
            .when(any_differs)
            .then(pl.lit(4, dtype=pl.UInt8))
            .otherwise(pl.lit(0, dtype=pl.UInt8))
        )
        joined = joined.with_columns(code.alias("_code"))
        kinds = pl.col("_code")
        counts = joined.select(
            (kinds == 0).sum().alias("matched"),
            (kinds == 4).sum().alias("mismatched"),
            (kinds == 1).sum().alias("missing_in_target"),
            (kinds == 2).sum().alias("unexpected_in_target"),
            (kinds == 3).sum().alias("duplicates"),
            (source_n > 1).sum().alias("duplicate_source_keys"),
            pl.when(source_n > 1).then(source_n).sum().alias("duplicate_source_rows"),
            (target_n > 1).sum().alias("duplicate_target_keys"),
            pl.when(target_n > 1).then(target_n).sum().alias("duplicate_target_rows"),
            *[pl.col(flag).sum().alias(flag) for flag in flags],
        ).row(0, named=True)
        for name in Outcome.COUNTS[2:]:
            setattr(outcome, name, getattr(outcome, name) + int(counts[name] or 0))
        for offset, (source_name, _) in enumerate(self.plan.columns):
            outcome.column_mismatches[source_name] += int(counts[f"_d{offset}"] or 0)
        differences = joined.filter(kinds != 0)
        if differences.height == 0:
            return None
        differences = differences.with_columns(
            kinds.replace_strict(_CODES, return_dtype=pl.String).alias("_kind")
        )
        shown_source = source.select("_raw").gather(differences["_i"])
        shown_target = target.select("_raw").gather(differences["_i_t"])
        texts = [  # the normal forms of text columns: the shown values of _SAME cells
            name
            for offset, column in enumerate(self.columns[self.key_count :])
            if column.rule.type == "text"
            for name in (f"n{self.key_count + offset}", f"n{self.key_count + offset}_t")
        ]
        key_columns = [
            pl.col(name).cast(self.schema[name])
            if name in keys
            else pl.lit(None, dtype=pl.String).alias(name)
            for name in self.key_names
        ]
        return pl.concat(
            [
                differences.select("_kind", "_n", "_n_t", *flags, *key_columns, *texts),
                shown_source,
                shown_target.rename({"_raw": "_raw_t"}),
            ],
            how="horizontal",
        )

    def _differences(
        self,
        differences: pl.DataFrame,
        candidates: dict[str, list[tuple]],
        report: io.TextIOBase | None,
    ) -> None:
        # Where a text column's normal form is in the differences (for _SAME cells).
        normal, normal_t = [], []
        for index, (column, names) in enumerate(zip(self.columns, self.normal_names, strict=True)):
            text = column.rule.type == "text"
            key = index < self.key_count
            normal.append(names[0] if text else None)
            normal_t.append((names[0] if key else f"{names[0]}_t") if text else None)
        differences = differences.with_columns(
            _unpack(differences, "_raw", self.width, "", self._tags["source"] or "", normal)
            + _unpack(differences, "_raw_t", self.width, "_t", self._tags["target"] or "", normal_t)
        )
        self._sample(differences, candidates)
        if report is not None:
            self._write_report(differences, report)

    def _within_tolerance(self, joined: pl.DataFrame, offset: int) -> pl.DataFrame:
        """Tolerance columns: values that differ count only beyond the tolerance (compare.
        values_equal, in Python, for the few pairs that are not plainly equal)."""
        source_name = self.plan.columns[offset][0]
        rule = self.plan.rules[source_name]
        name = self.normal_names[self.key_count + offset][0]
        flag = f"_d{offset}"
        candidates = joined[flag].arg_true()
        if len(candidates) == 0:
            return joined
        pairs = joined.select(
            pl.col(name).gather(candidates),
            pl.col(f"{name}_o").gather(candidates),
            pl.col(f"{name}_t").gather(candidates),
            pl.col(f"{name}_o_t").gather(candidates),
        ).rows()
        still = []
        for a, a_text, b, b_text in pairs:
            first = a if a is not None else (Decimal(a_text) if a_text is not None else None)
            second = b if b is not None else (Decimal(b_text) if b_text is not None else None)
            still.append(not values_equal(first, second, rule))
        flags = joined[flag].scatter(candidates, pl.Series(still, dtype=pl.Boolean))
        return joined.with_columns(flags.alias(flag))

    # -- samples and the report --------------------------------------------------------

    def _python_key(self, values: tuple) -> tuple:
        """A normalised key as compare.normaliser gives it (for compare.key_order)."""
        key = []
        position = 0
        for column in self.columns[: self.key_count]:
            value = values[position]
            if column.number:
                overflow = values[position + 1]
                position += 2
                key.append(
                    overflow
                    if overflow is not None
                    else None
                    if value is None
                    else canonical_number(Decimal(value))
                )
                continue
            position += 1
            if value is None or isinstance(value, str):
                key.append(value)
            elif isinstance(value, bool):
                key.append("true" if value else "false")
            elif isinstance(value, datetime):
                key.append(value.replace(tzinfo=UTC).isoformat(timespec="microseconds"))
            else:
                key.append(value.isoformat())
        return tuple(key)

    def _sample(self, differences: pl.DataFrame, candidates: dict[str, list[tuple]]) -> None:
        order_by = [names[0] for names in self.normal_names[: self.key_count]]
        overflow = [name for name in self.key_names if name.endswith("_o")]
        for kind in _KINDS:
            rows = differences.filter(pl.col("_kind") == kind)
            if rows.height == 0:
                continue
            if overflow:
                unusual = rows.filter(
                    pl.any_horizontal(pl.col(name).is_not_null() for name in overflow)
                )
                usual = rows.filter(pl.all_horizontal(pl.col(name).is_null() for name in overflow))
            else:
                unusual, usual = rows.head(0), rows
            chosen = pl.concat([usual.sort(order_by, nulls_last=False).head(SAMPLE_SIZE), unusual])
            for row in chosen.iter_rows(named=True):
                key_values = tuple(
                    row.get(name) for names in self.normal_names[: self.key_count] for name in names
                )
                candidates[kind].append((self._python_key(key_values), self._item(kind, row)))

    def _item(self, kind: str, row: dict) -> dict:
        source = None
        target = None
        if kind != "unexpected_in_target":
            source = tuple(_display(row[f"r{i}"], row[f"t{i}"]) for i in range(self.width))
        if kind != "missing_in_target":
            target = tuple(_display(row[f"r{i}_t"], row[f"t{i}_t"]) for i in range(self.width))
        item = {
            "key": list((source or target)[: self.key_count]),
            "source": self._row_dict("source", source),
            "target": self._row_dict("target", target),
        }
        if kind == "mismatched":
            item["columns"] = [
                source_name
                for offset, (source_name, _) in enumerate(self.plan.columns)
                if row[f"_d{offset}"]
            ]
        if kind == "duplicate":
            item["source_count"], item["target_count"] = row["_n"], row["_n_t"]
        return item

    def _row_dict(self, side: str, raw: tuple | None) -> dict | None:
        if raw is None:
            return None
        return dict(zip(self.plan.side_columns(side), raw, strict=True))

    def _write_report(self, differences: pl.DataFrame, report: io.TextIOBase) -> None:
        frames = []
        plain = differences.filter(pl.col("_kind") != "mismatched")
        if plain.height:
            frames.append(
                plain.select(
                    pl.col("_kind").alias("difference"),
                    *self._key_cells(plain),
                    pl.lit(None, dtype=pl.String).alias("column"),
                    pl.when(pl.col("_kind") == "duplicate")
                    .then(pl.format("{} rows", pl.col("_n")))
                    .alias("source value"),
                    pl.when(pl.col("_kind") == "duplicate")
                    .then(pl.format("{} rows", pl.col("_n_t")))
                    .alias("target value"),
                )
            )
        for offset, (source_name, _) in enumerate(self.plan.columns):
            rows = differences.filter(pl.col(f"_d{offset}"))
            if rows.height == 0:
                continue
            index = self.key_count + offset
            frames.append(
                rows.select(
                    pl.lit("mismatched").alias("difference"),
                    *self._key_cells(rows),
                    pl.lit(source_name, dtype=pl.String).alias("column"),
                    self._cell_expr(f"r{index}", f"t{index}", rows).alias("source value"),
                    self._cell_expr(f"r{index}_t", f"t{index}_t", rows).alias("target value"),
                )
            )
        for frame in frames:
            # As ReportWriter writes a row: safe_cell (a leading formula character gets a
            # quote), and an empty text as an empty cell (polars would write "").
            cells = frame.select(
                pl.when(pl.col(name) == "")
                .then(None)
                .when(pl.col(name).str.contains(_FORMULA))
                .then(pl.lit("'") + pl.col(name))
                .otherwise(pl.col(name))
                .alias(name)
                for name in frame.columns
            )
            report.write(
                cells.write_csv(
                    include_header=False, line_terminator="\r\n", quote_style="necessary"
                )
            )

    def _key_cells(self, rows: pl.DataFrame) -> list[pl.Expr]:
        cells = []
        for index in range(self.key_count):
            source_cell = self._cell_expr(f"r{index}", f"t{index}", rows)
            target_cell = self._cell_expr(f"r{index}_t", f"t{index}_t", rows)
            cells.append(
                pl.when(pl.col("_kind") == "unexpected_in_target")
                .then(target_cell)
                .otherwise(source_cell)
                .alias(f"key{index}")
            )
        return cells

    @staticmethod
    def _cell_expr(text: str, tag: str, rows: pl.DataFrame) -> pl.Expr:
        """The report cell of a shown value: its text, or (for tags whose text is not what
        csv.writer writes) the text of _display(…)."""
        tags = rows[tag].drop_nulls().unique().to_list()
        if set(tags) <= {STR, INT}:
            return pl.col(text)
        cells = [
            _cell(_display(value, kind)) if value is not None else None
            for value, kind in zip(rows[text].to_list(), rows[tag].to_list(), strict=True)
        ]
        return pl.lit(pl.Series(cells, dtype=pl.String))


_KINDS = ("missing_in_target", "unexpected_in_target", "mismatched", "duplicate")
_CODES = {1: "missing_in_target", 2: "unexpected_in_target", 3: "duplicate", 4: "mismatched"}


# --------------------------------------------------------------------------------------
# PostgreSQL's text as the input texts of a column
# --------------------------------------------------------------------------------------


def _pg_input(column: _Column, x: pl.Series, kind: str) -> tuple[pl.Series | list, int]:
    """What the normaliser reads for a column of PostgreSQL's (or a CSV file's) texts of
    ``kind``, and the tag that shows the raw value as psycopg would give it."""
    rule_type = column.rule.type
    if kind == "text":
        return x, STR
    if kind == "int":
        return x, INT
    if kind == "bool":
        if rule_type in ("text", "boolean"):
            texts = x.replace_strict({"t": "true", "f": "false"}, default=None)
        else:
            texts = x.replace_strict({"t": "True", "f": "False"}, default=None)
        return texts, BOOL
    if kind == "numeric":
        if rule_type in ("text", "boolean"):
            return _python_texts(x, lambda text: text_of(Decimal(text))), NUMERIC
        return x, NUMERIC
    if kind == "float":
        convert = column.text_input
        return _python_texts(x, lambda text: convert(float(text))), FLOAT
    if rule_type not in ("text", "boolean"):
        # The typed fast paths read PostgreSQL's ISO text (naive = UTC); anything else in
        # it (infinity, BC, years past 9999, which psycopg refuses too) stops the run.
        return x, STR if kind == "date" else TIMESTAMP
    present = x.drop_nulls()
    pattern = (
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
        if kind == "date"
        else r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
        + (r"\+00$" if kind == "timestamptz" else "$")
    )
    bad = present.filter(~present.str.contains(pattern))
    if len(bad):
        raise ComparisonError(
            f"PostgreSQL gave {bad[0]!r}, which Python does not read as a {kind} "
            "(infinity, BC or past year 9999); filter or cast it in the query."
        )
    if kind == "date":
        return x, STR
    return _python_texts(x, lambda text: text_of(datetime.fromisoformat(text))), TIMESTAMP


def _python_texts(x: pl.Series, convert: Callable[[str], str]) -> pl.Series:
    return pl.Series([None if v is None else convert(v) for v in x.to_list()], dtype=pl.String)


# --------------------------------------------------------------------------------------
# Feeding a side from a reader
# --------------------------------------------------------------------------------------


def read_side(
    comparison: VectorisedComparison, side: str, dataset: Any, batch_rows: int
) -> Iterator[int]:
    """Reads an open dataset (``with readers.open_dataset(…) as dataset``) into the
    comparison, yielding the rows added by each step (for progress): PostgreSQL through
    COPY, an uploaded CSV file through polars, anything else in batches of tuples."""
    from apps.reconciliation.readers import FileReader, PostgresReader

    if isinstance(dataset, PostgresReader):
        kinds = postgres_kinds(dataset)
        if kinds is not None:
            yield from _read_postgres(comparison, side, dataset, kinds)
            return
    if isinstance(dataset, FileReader):
        layout = file_layout(dataset)
        if layout is not None:
            try:
                yield from _read_file(comparison, side, dataset, layout)
                return
            except CsvFallback:
                comparison.discard(side)
                yield 0
    for batch in dataset.batches(batch_rows):
        yield comparison.add(side, batch)


def postgres_kinds(reader: Any) -> list[str] | None:
    """The kind (PG_KINDS) of each column the reader selects; None when one is of a type
    COPY's text does not give as psycopg does (time, interval, bytea, arrays…) or the
    connection's encoding is not UTF-8."""
    import psycopg

    from apps.reconciliation.readers import ReadError
    from apps.reconciliation.readers.sql import pg_message  # one wording of PostgreSQL errors

    if reader.conn.info.encoding not in ("utf-8", "utf8"):
        return None
    try:
        with reader.conn.cursor() as cursor:
            cursor.execute(f"SELECT * FROM ({reader.select_sql}) AS q LIMIT 0", binary=True)  # noqa: S608 - the reader's checked SELECT
            oids = [column.type_code for column in cursor.description]
    except psycopg.Error as exc:
        raise ReadError(pg_message(exc, reader.timeout)) from None
    kinds = [PG_KINDS.get(oid) or ("text" if oid >= FIRST_USER_OID else None) for oid in oids]
    return None if None in kinds else kinds


def _read_postgres(
    comparison: VectorisedComparison, side: str, reader: Any, kinds: list[str]
) -> Iterator[int]:
    """COPY's CSV in chunks of whole rows, read by a thread of its own while this one
    normalises the chunk before (PostgreSQL, the read and polars overlap)."""
    import psycopg

    from apps.reconciliation.readers import ReadError
    from apps.reconciliation.readers.sql import pg_message

    statement = f"COPY ({reader.select_sql}) TO STDOUT (FORMAT csv, HEADER)"
    chunks: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with reader.conn.cursor() as cursor:
                # ISO dates, whatever the server's default; for this transaction only.
                cursor.execute("SELECT set_config('DateStyle', 'ISO, MDY', true)")
                with cursor.copy(statement) as copy:
                    # One row a message, so a chunk ends at a row's end. Copied into one
                    # buffer at once: a list of 100,000 memoryviews wakes the garbage
                    # collector over the whole heap again and again.
                    pending = bytearray()
                    for data in copy:
                        pending += data
                        if len(pending) >= comparison.chunk_bytes:
                            if not put(bytes(pending)):
                                return
                            pending = bytearray()
                    if pending and not put(bytes(pending)):
                        return
            put(done)
        except BaseException as exc:  # handed to the reading thread
            put(exc)

    thread = threading.Thread(target=produce, name="pontis-recon-copy", daemon=True)
    thread.start()
    first = True
    try:
        while True:
            item = chunks.get()
            if item is done:
                return
            if isinstance(item, psycopg.Error):
                raise ReadError(pg_message(item, reader.timeout))
            if isinstance(item, BaseException):
                raise item
            added = comparison.add_csv(side, item, header=first, kinds=kinds)
            first = False
            yield added
    finally:
        stop.set()
        thread.join()


def file_layout(reader: Any) -> tuple[int, str, list[int], int] | None:
    """For an uploaded CSV file read without a window: (offset of the first record, the
    delimiter, the positions of the columns, the header's width); None otherwise (XLSX, a
    window, a quoted header, a header that is not UTF-8)."""
    from apps.reconciliation.readers.base import resolve_columns
    from apps.reconciliation.readers.files import MAX_LINE_CHARS, sniff_delimiter

    if reader.format != "csv" or reader.window is not None:
        return None
    storage, name = reader.source.file.storage, reader.source.file.name
    with storage.open(name, "rb") as handle:
        start = handle.read(MAX_LINE_CHARS)
    offset = len(codecs.BOM_UTF8) if start.startswith(codecs.BOM_UTF8) else 0
    while True:
        end = start.find(b"\n", offset)
        if end < 0:
            return None
        try:
            line = start[offset : end + 1].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if line.strip():
            break
        offset = end + 1
    if '"' in line or "\r" in line.rstrip("\r\n"):
        return None
    delimiter = reader.delimiter or sniff_delimiter(line)
    header = [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter))]
    positions = resolve_columns(reader.columns, header, f"the header of {reader.name}")
    return end + 1, delimiter, positions, len(header)


def _read_file(
    comparison: VectorisedComparison,
    side: str,
    reader: Any,
    layout: tuple[int, str, list[int], int],
) -> Iterator[int]:
    offset, delimiter, positions, width = layout
    storage, name = reader.source.file.storage, reader.source.file.name
    with storage.open(name, "rb") as handle:
        handle.seek(offset)
        for chunk in _csv_chunks(handle, comparison.chunk_bytes):
            yield comparison.add_csv(
                side,
                chunk,
                header=False,
                columns=positions,
                width=width,
                delimiter=delimiter,
                nulls=False,
            )
