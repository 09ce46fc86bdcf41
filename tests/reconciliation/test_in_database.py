"""The in-database strategy against the real PostgreSQL at 127.0.0.1:5432 (user postgres).

The tests use their own scratch database (``pontis_recon_sql_<random>``, dropped at the end)
and their own psycopg connections, whatever database the app's tests use; when the server
cannot be reached they fail, they do not skip.
"""

import csv
import decimal
import io
import re
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.string import TextLoader

from apps.reconciliation.compare import (
    ColumnRule,
    ComparisonError,
    Outcome,
    Plan,
    StreamedComparison,
    canonical_number,
    normaliser,
)
from apps.reconciliation.in_database import (
    DATETIME_PATTERN,
    NUMBER_PATTERN,
    WHITESPACE,
    apply_settings,
    compare_in_database,
    normal_sql,
)
from tests.reconciliation import postgres, reference, test_compare
from tests.reconciliation.strategies import PLAN, datasets

SERVER = "host=127.0.0.1 port=5432 user=postgres connect_timeout=10"


@pytest.fixture(scope="session")
def scratch_database():
    with postgres.scratch_database("pontis_recon_sql") as name:
        yield name


@pytest.fixture(scope="session")
def writer(scratch_database):
    """Creates and fills the tables."""
    with psycopg.connect(f"{SERVER} dbname={scratch_database}", autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def reader(scratch_database):
    """The connection as the runner opens it: read-only, a statement timeout, UTC."""
    connection = psycopg.connect(
        f"{SERVER} dbname={scratch_database}",
        options="-c statement_timeout=60000 -c TimeZone=UTC",
    )
    connection.read_only = True
    with connection:
        yield connection


def load(writer, table: str, columns: dict[str, str], rows) -> None:
    """(Re)creates a table with the columns (name: type) and copies the rows in."""
    name = sql.Identifier(table)
    writer.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
    writer.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            name,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(kind))
                for column, kind in columns.items()
            ),
        )
    )
    with writer.cursor() as cursor:
        with cursor.copy(sql.SQL("COPY {} FROM STDIN").format(name)) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(sql.SQL("ANALYZE {}").format(name))


def select(table: str, columns: list[str]) -> str:
    return (
        sql.SQL("SELECT {} FROM {}")
        .format(sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table))
        .as_string()
    )


# --------------------------------------------------------------------------------------
# What equal means: test_compare's table, through SQL
# --------------------------------------------------------------------------------------

EQUALITY_TABLE = next(
    mark
    for mark in test_compare.test_values_equal_after_normalisation.pytestmark
    if mark.name == "parametrize"
).args[1]


def column_type(value) -> str:
    """The PostgreSQL type a system would store the Python value in."""
    if value is None or isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, Decimal):
        return "numeric"
    if isinstance(value, datetime):
        return "timestamptz" if value.tzinfo else "timestamp"
    if isinstance(value, date):
        return "date"
    raise AssertionError(value)


def compare_one(writer, reader, a, b, rule, *, types=None):
    """Compares a one-row table holding ``a`` with one holding ``b``, by key 1."""
    source_type, target_type = types or (column_type(a), column_type(b))
    load(writer, "one_source", {"id": "integer", "c": source_type}, [(1, a)])
    load(writer, "one_target", {"id": "integer", "c": target_type}, [(1, b)])
    plan = Plan.build(["id"], ["c"], normalisation={"c": rule})
    return compare_in_database(
        reader, plan, select("one_source", ["id", "c"]), select("one_target", ["id", "c"])
    )


def equal_in_database(writer, reader, a, b, rule, **options) -> bool:
    outcome = compare_one(writer, reader, a, b, rule, **options)
    assert outcome.matched + outcome.mismatched == 1
    assert outcome.column_mismatches == {"c": outcome.mismatched}
    return outcome.matched == 1


@pytest.mark.parametrize("a, b, rule, equal", EQUALITY_TABLE)
def test_values_equal_in_the_database_as_in_compare(writer, reader, a, b, rule, equal):
    assert equal_in_database(writer, reader, a, b, rule) is equal
    assert equal_in_database(writer, reader, b, a, rule) is equal


@pytest.mark.parametrize(
    "a, b, rule, types, equal",
    [
        # numbers from every numeric type, by value
        (0.1, "0.1", {"type": "number"}, ("real", "text"), True),  # as psycopg reads real
        (1e20, "100000000000000000000", {"type": "number"}, None, True),
        (Decimal("10.50"), 10.5, {"type": "number"}, None, True),
        ("1_000.5", Decimal("1000.50"), {"type": "number"}, None, True),
        (" \u00a01E+2\u3000", 100, {"type": "integer"}, None, True),
        (Decimal("2.5"), "3", {"type": "integer", "places": 0}, None, True),
        (Decimal("-2.5"), "-3", {"type": "number", "places": 0}, None, True),
        ("10.00", 10.05, {"type": "number", "tolerance": "0.05"}, None, True),
        ("10.00", None, {"type": "number", "tolerance": "0.05"}, None, False),
        # integers on both sides compare as bigints, with or without a tolerance
        (5, 5, {"type": "number"}, ("integer", "bigint"), True),
        (5, 6, {"type": "integer"}, ("smallint", "bigint"), False),
        (2**40, 2**40 + 1, {"type": "integer", "tolerance": "1"}, ("bigint", "bigint"), True),
        (10, 12, {"type": "integer", "tolerance": "1.5"}, ("integer", "bigint"), False),
        (None, 0, {"type": "integer"}, ("integer", "integer"), False),
        (7, 7, {"type": "integer", "places": 0}, ("integer", "smallint"), True),
        # texts of text types on both sides: as stored, normalised only where they differ
        ("a \u00a0", "a", {}, ("varchar(5)", "text"), True),
        ("a ", "a", {"keep_trailing_whitespace": True}, ("varchar(5)", "text"), False),
        ("", None, {"empty_is_null": True}, ("text", "varchar"), True),
        ("", None, {}, ("text", "varchar"), False),
        # text of typed values is Python's text of them
        (Decimal("100"), "100", {}, None, True),
        (1e20, "100000000000000000000", {}, None, True),
        (True, "true", {}, None, True),
        (
            datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T08:00:00+00:00",
            {},
            None,
            True,
        ),
        (datetime(2024, 5, 1, 8, 0, 0, 5), "2024-05-01T08:00:00.000005+00:00", {}, None, True),
        (date(2024, 5, 1), "2024-05-01", {}, None, True),
        ("ab", "ab", {}, ("char(4)", "text"), True),
        ("ab", "ab", {"keep_trailing_whitespace": True}, ("char(4)", "text"), False),
        ("\u2003abc\u00a0", "abc", {"trim": True}, None, True),
        ("abc\u00a0", "abc", {}, None, True),
        ("\u0130STANBUL", "i\u0307stanbul", {"case_insensitive": True}, None, True),
        (
            "\u039f\u0394\u039f\u03a3",
            "\u03bf\u03b4\u03bf\u03c2",  # final sigma
            {"case_insensitive": True},
            None,
            True,
        ),
        (
            "\u039f\u0394\u039f\u03a3",
            "\u03bf\u03b4\u03bf\u03c3",
            {"case_insensitive": True},
            None,
            False,
        ),
        ("", None, {"empty_is_null": True, "trim": True}, None, True),
        # dates and instants
        ("2024-05-01T23:30:00-05:00", "2024-05-02", {"type": "date"}, None, True),
        (datetime(2024, 5, 1, 23, 30), date(2024, 5, 1), {"type": "date"}, None, True),
        (date(2024, 5, 1), "2024-05-01T00:00Z", {"type": "datetime"}, None, True),
        (datetime(2024, 5, 1, 8), "2024-05-01 10:00+0200", {"type": "datetime"}, None, True),
        (
            "2024-05-01 08:00:00.5",
            "2024-05-01T08:00:00.500000+00",
            {"type": "datetime"},
            None,
            True,
        ),
        ("2024-02-29", "2024-02-29T00:00:00", {"type": "date"}, None, True),
        # booleans: compare.py's words, from text or numbers
        (Decimal("1.0"), True, {"type": "boolean"}, None, True),
        (" Yes ", "y", {"type": "boolean"}, None, True),
        (0, "FALSE", {"type": "boolean"}, None, True),
        (None, "  ", {"type": "boolean"}, None, True),
    ],
)
def test_values_equal_in_the_database_for_each_column_type(
    writer, reader, a, b, rule, types, equal
):
    assert equal_in_database(writer, reader, a, b, rule, types=types) is equal
    swapped = (types[1], types[0]) if types else None
    assert equal_in_database(writer, reader, b, a, rule, types=swapped) is equal


# --------------------------------------------------------------------------------------
# Counts, samples and the report
# --------------------------------------------------------------------------------------

COUNTS_PLAN = Plan.build(
    ["id"],
    ["amount", "name"],
    mapping={"id": "ID", "amount": "AMOUNT"},
    normalisation={"amount": {"type": "number"}},
)


def load_counts_example(writer):
    load(
        writer,
        "orders",
        {"id": "integer", "amount": "text", "name": "text"},
        [
            (1, "10.10", "a"),
            (2, "5", "b"),
            (3, "1", "c"),
            (4, "1", "d"),
            (4, "1", "d"),
            (6, "2", "x"),
        ],
    )
    load(
        writer,
        "ORDERS",
        {"ID": "integer", "AMOUNT": "text", "name": "text"},
        [
            (1, "10.1", "a "),
            (2, "6", "B"),
            (3, "1", "c"),
            (4, "1", "d"),
            (5, "9", "z"),
            (6, "2", "x"),
            (6, "2", "x"),
            (6, "2", "x"),
        ],
    )


def compare_counts_example(reader, **options):
    return compare_in_database(
        reader,
        COUNTS_PLAN,
        select("orders", COUNTS_PLAN.side_columns("source")) + " -- the orders;",
        select("ORDERS", COUNTS_PLAN.side_columns("target")) + ";\n",
        **options,
    )


def test_counts_samples_and_the_report(writer, reader):
    load_counts_example(writer)
    report = io.StringIO()
    outcome = compare_counts_example(reader, report=report)
    assert outcome.counts() == {
        "source_rows": 6,
        "target_rows": 8,
        "matched": 2,
        "mismatched": 1,
        "missing_in_target": 0,
        "unexpected_in_target": 1,
        "duplicates": 2,
        "duplicate_source_keys": 1,
        "duplicate_source_rows": 2,
        "duplicate_target_keys": 1,
        "duplicate_target_rows": 3,
    }
    assert outcome.column_mismatches == {"amount": 1, "name": 1}
    assert str(outcome.accuracy) == "33.333"
    # Values are PostgreSQL's text of the raw values.
    assert outcome.samples == {
        "missing_in_target": [],
        "unexpected_in_target": [
            {"key": ["5"], "source": None, "target": {"ID": "5", "AMOUNT": "9", "name": "z"}}
        ],
        "mismatched": [
            {
                "key": ["2"],
                "source": {"id": "2", "amount": "5", "name": "b"},
                "target": {"ID": "2", "AMOUNT": "6", "name": "B"},
                "columns": ["amount", "name"],
            }
        ],
        "duplicate": [
            {
                "key": ["4"],
                "source": {"id": "4", "amount": "1", "name": "d"},
                "target": {"ID": "4", "AMOUNT": "1", "name": "d"},
                "source_count": 2,
                "target_count": 1,
            },
            {
                "key": ["6"],
                "source": {"id": "6", "amount": "2", "name": "x"},
                "target": {"ID": "6", "AMOUNT": "2", "name": "x"},
                "source_count": 1,
                "target_count": 3,
            },
        ],
    }
    lines = report.getvalue().splitlines()
    assert lines[0] == "difference,id,column,source value,target value"
    assert sorted(lines[1:]) == [
        "duplicate,4,,2 rows,1 rows",
        "duplicate,6,,1 rows,3 rows",
        "mismatched,2,amount,5,6",
        "mismatched,2,name,b,B",
        "unexpected_in_target,5,,,",
    ]


@pytest.mark.parametrize("rows", [0, 1, 3])
def test_sides_without_differences_still_count_their_rows(writer, reader, rows):
    data = [(n, f"{n}.50", f"name {n}") for n in range(rows)]
    load(writer, "orders", {"id": "integer", "amount": "text", "name": "text"}, data)
    load(writer, "ORDERS", {"ID": "integer", "AMOUNT": "text", "name": "text"}, data)
    report = io.StringIO()
    outcome = compare_counts_example(reader, report=report)
    assert outcome.counts() == {
        **dict.fromkeys(Outcome.COUNTS, 0),
        "source_rows": rows,
        "target_rows": rows,
        "matched": rows,
    }
    assert report.getvalue() == "difference,id,column,source value,target value\r\n"
    assert all(items == [] for items in outcome.samples.values())


def test_it_runs_inside_the_callers_open_transaction_and_leaves_it_open(writer, reader):
    load_counts_example(writer)
    reader.execute("SET LOCAL statement_timeout = 5000")  # as the SQL reader opens it
    try:
        outcome = compare_counts_example(reader)
        assert outcome.matched == 2
        assert reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert reader.execute("SHOW statement_timeout").fetchone() == ("5s",)
        assert reader.execute("SHOW transaction_read_only").fetchone() == ("on",)
    finally:
        reader.rollback()


def test_the_report_is_written_as_the_streamed_one_quoted_nulls_empty_formulas_escaped(
    writer, reader
):
    plan = Plan.build(["id"], ["note", "at"])
    load(
        writer,
        "notes",
        {"id": "text", "note": "text", "at": "timestamptz"},
        [
            ("a,1", 'say "hi"', datetime(2024, 5, 1, 8, tzinfo=UTC)),
            ("", "x\ny", None),
            ("=f", "=SUM(A1)", None),
        ],
    )
    load(
        writer,
        "notes_copy",
        {"id": "text", "note": "text", "at": "timestamptz"},
        [("a,1", "say hi", None), ("", None, None), ("=f", "-1", None)],
    )
    report = io.StringIO()
    outcome = compare_in_database(
        reader,
        plan,
        select("notes", ["id", "note", "at"]),
        select("notes_copy", ["id", "note", "at"]),
        report=report,
    )
    assert outcome.mismatched == 3
    assert outcome.column_mismatches == {"note": 3, "at": 1}
    assert sorted(report.getvalue().split("\r\n")[1:-1]) == sorted(
        [
            'mismatched,"a,1",note,"say ""hi""",say hi',
            'mismatched,"a,1",at,2024-05-01 08:00:00+00,',
            'mismatched,,note,"x\ny",',
            "mismatched,'=f,note,'=SUM(A1),'-1",
        ]
    )
    assert outcome.samples["mismatched"][0]["key"] == [""]  # '' sorts first (C order)


def test_column_collations_do_not_change_equality_or_order(writer, reader):
    writer.execute(
        "CREATE COLLATION IF NOT EXISTS case_blind "
        "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
    )
    plan = Plan.build(["code"], ["name", "amount"], normalisation={"amount": {"type": "number"}})
    columns = {"code": 'text COLLATE "case_blind"', "name": 'text COLLATE "POSIX"',
               "amount": 'text COLLATE "case_blind"'}  # fmt: skip
    load(writer, "coded", columns, [("a", "x", "1"), ("B", "y", "2")])
    load(writer, "coded_copy", columns, [("A", "X", "1.0"), ("B", "y", " 2 ")])
    outcome = compare_in_database(
        reader,
        plan,
        select("coded", ["code", "name", "amount"]),
        select("coded_copy", ["code", "name", "amount"]),
        report=io.StringIO(),
    )
    assert (outcome.matched, outcome.missing_in_target, outcome.unexpected_in_target) == (1, 1, 1)
    assert [item["key"] for item in outcome.samples["missing_in_target"]] == [["a"]]


def test_samples_are_bounded_and_the_first_keys_in_order(writer, reader):
    plan = Plan.build(["id", "code"], [], normalisation={"id": {"type": "integer"}})
    rows = [(f"{n:04d}", "x") for n in reversed(range(500))]
    rows += [(None, "x"), ("7", None), ("7", "b"), ("7", "B"), ("7", "é"), ("7", "Z")]
    load(writer, "keys", {"id": "text", "code": "text"}, rows)
    load(writer, "no_keys", {"id": "text", "code": "text"}, [])
    outcome = compare_in_database(
        reader, plan, select("keys", ["id", "code"]), select("no_keys", ["id", "code"])
    )
    assert outcome.missing_in_target == 506
    keys = [item["key"] for item in outcome.samples["missing_in_target"]]
    assert keys[:15] == [
        [None, "x"],
        ["0000", "x"],
        ["0001", "x"],
        ["0002", "x"],
        ["0003", "x"],
        ["0004", "x"],
        ["0005", "x"],
        ["0006", "x"],
        ["7", None],  # NULL first, then by code point: B Z b x é
        ["7", "B"],
        ["7", "Z"],
        ["7", "b"],
        ["0007", "x"],
        ["7", "é"],
        ["0008", "x"],
    ]
    assert len(keys) == 20
    assert outcome.samples["missing_in_target"][0] == {
        "key": [None, "x"],
        "source": {"id": None, "code": "x"},
        "target": None,
    }
    assert (
        compare_in_database(
            reader,
            plan,
            select("keys", ["id", "code"]),
            select("no_keys", ["id", "code"]),
            sample_size=3,
        ).samples["missing_in_target"]
        == outcome.samples["missing_in_target"][:3]
    )


# --------------------------------------------------------------------------------------
# The same answers as the reference on random datasets
# --------------------------------------------------------------------------------------

SOURCE_TYPES = {
    "id": "integer",
    "line": "text",
    "amount": "numeric(12, 2)",
    "booked_at": "timestamptz",
    "name": "text",
    "active": "boolean",
    "day": "date",
}
TARGET_TYPES = {
    "order_id": "text",
    "line": "text",
    "total": "numeric",
    "booked_at": "text",
    "name": "text",
    "active": "text",
    "day": "text",
}


def as_stored_text(row: tuple) -> tuple:
    """A target row as the text columns hold it (what the reference is given, too)."""

    def text(value):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value)

    key, line, amount, booked, name, active, day = row
    return (text(key), line, amount, text(booked), name, text(active), text(day))


def normalised_keys(plan: Plan, items: list[dict]) -> list[tuple]:
    normalise = [normaliser(plan.rules[source]) for source, _ in plan.keys]
    return [tuple(n(v) for n, v in zip(normalise, item["key"], strict=True)) for item in items]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets())
def test_the_in_database_comparison_agrees_with_the_reference(writer, reader, data):
    source, target = data
    target = [as_stored_text(row) for row in target]
    load(writer, "prop_source", SOURCE_TYPES, source)
    load(writer, "prop_target", TARGET_TYPES, target)
    assert_agrees_with_the_reference(reader, source, target)


TYPED_TARGET_TYPES = {
    "order_id": "bigint",
    "line": "text",
    "total": "numeric",
    "booked_at": "timestamptz",
    "name": "text",
    "active": "boolean",
    "day": "date",
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets())
def test_typed_sides_agree_with_the_reference(writer, reader, data):
    # Integer keys on both sides join as bigints, typed values are shown from their normal
    # form and text columns are normalised only where they differ.
    source, target = data
    load(writer, "prop_source", SOURCE_TYPES, source)
    load(writer, "prop_target", TYPED_TARGET_TYPES, target)
    assert_agrees_with_the_reference(reader, source, target)


def assert_agrees_with_the_reference(reader, source, target):
    report = io.StringIO()
    outcome = compare_in_database(
        reader,
        PLAN,
        select("prop_source", PLAN.side_columns("source")),
        select("prop_target", PLAN.side_columns("target")),
        report=report,
    )
    expected = reference.reconcile(PLAN, source, target)
    assert outcome.counts() == expected["counts"]
    assert outcome.column_mismatches == expected["column_mismatches"]

    streamed = StreamedComparison(PLAN)
    streamed.add("source", source)
    streamed.add("target", target)
    streamed_report = io.StringIO()
    streamed_outcome = streamed.finish(streamed_report)
    for kind, items in streamed_outcome.samples.items():
        ours = outcome.samples[kind]
        assert normalised_keys(PLAN, ours) == normalised_keys(PLAN, items)
        assert [i.get("columns") for i in ours] == [i.get("columns") for i in items]
        assert [i.get("source_count") for i in ours] == [i.get("source_count") for i in items]
        assert [i.get("target_count") for i in ours] == [i.get("target_count") for i in items]

    def kinds_and_columns(text):
        rows = list(csv.reader(io.StringIO(text)))
        return rows[0], Counter((row[0], row[3]) for row in rows[1:])

    assert kinds_and_columns(report.getvalue()) == kinds_and_columns(streamed_report.getvalue())


def test_values_are_shown_as_stored_whichever_form_is_compared(writer, reader):
    plan = Plan.build(
        ["id"],
        ["amount", "name", "at", "day", "active"],
        normalisation={"amount": {"type": "number"}, "name": {"trim": True}},
    )
    types = {
        "id": "integer",
        "amount": "numeric(12, 2)",
        "name": "text",
        "at": "timestamptz",
        "day": "date",
        "active": "boolean",
    }
    at = datetime(2024, 5, 1, 8, tzinfo=UTC)
    load(
        writer,
        "stored",
        types,
        [
            (1, Decimal("12.30"), " a ", at, date(2024, 5, 1), True),
            (2, Decimal("1"), "b", at, None, False),
        ],
    )
    load(
        writer,
        "stored_copy",
        {**types, "id": "bigint", "amount": "numeric"},
        [
            (1, Decimal("12.3"), "a", at, date(2024, 5, 1), True),
            (2, Decimal("1.50"), "b ", at, None, False),
        ],
    )
    report = io.StringIO()
    outcome = compare_in_database(
        reader,
        plan,
        select("stored", plan.side_columns("source")),
        select("stored_copy", plan.side_columns("target")),
        report=report,
    )
    assert outcome.matched == 1  # 12.30 = 12.3, ' a ' = 'a' trimmed
    assert outcome.samples["mismatched"] == [
        {
            "key": ["2"],
            "source": {
                "id": "2",
                "amount": "1.00",
                "name": "b",
                "at": "2024-05-01 08:00:00+00",
                "day": None,
                "active": "false",
            },
            "target": {
                "id": "2",
                "amount": "1.50",
                "name": "b ",
                "at": "2024-05-01 08:00:00+00",
                "day": None,
                "active": "false",
            },
            "columns": ["amount"],
        }
    ]
    assert report.getvalue().split("\r\n")[1] == "mismatched,2,amount,1.00,1.50"


# --------------------------------------------------------------------------------------
# Each normal form in SQL is compare.normaliser of the value psycopg reads
# --------------------------------------------------------------------------------------

WS = st.sampled_from(["", " ", "\t", "\u00a0", "\u3000 ", "\n"])
NUMBER_TEXT = st.one_of(
    st.builds(
        lambda d, style, ws1, ws2: ws1 + style(d) + ws2,
        st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=4),
        st.sampled_from([str, lambda d: f"{d:e}", lambda d: f"+{d}", lambda d: "_".join(str(d))]),
        WS,
        WS,
    ),
    st.sampled_from(["NaN", "inf", "-Infinity", "1_", "_", "1e", ".", "5.", ".5", "1.e3"]),
    st.text(alphabet="0123456789.eE+-_ aN", max_size=8),
)
DATETIME_TEXT = st.one_of(
    st.builds(
        lambda moment, zone, sep, spec, ws: ws + moment.replace(tzinfo=zone).isoformat(sep, spec),
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
        st.one_of(
            st.none(),
            st.just(UTC),
            st.integers(-959, 959).map(lambda m: timezone(timedelta(minutes=m))),
        ),
        st.sampled_from(["T", " "]),
        st.sampled_from(["minutes", "seconds", "milliseconds", "microseconds", "auto"]),
        WS,
    ),
    st.dates(min_value=date(1, 1, 1)).map(date.isoformat),
    st.sampled_from(
        [
            "2023-02-29",
            "2024-02-30",
            "2024-04-31",
            "0000-01-01",
            "2024-05-01T24:00",
            "2024-05-01T08",
            "2024-05-01T08:00+16:00",
            "2024-05-01T08:00:60",
            "20240501",
            "2024-05-01Z",
            "2024-05-01T08:00,5",
            "2024-W01-1",
            "2024-05-01T08:00:00.1234567",
        ]
    ),
    st.text(alphabet="0123456789-:T Z+.", max_size=22),
)
BOOLEAN_TEXT = st.builds(
    lambda word, upper, ws: ws + (word.upper() if upper else word) + ws,
    st.sampled_from(["true", "t", "yes", "y", "1", "false", "f", "no", "n", "0", "on", "x"]),
    st.booleans(),
    WS,
)
TEXT = st.one_of(
    NUMBER_TEXT,
    DATETIME_TEXT,
    BOOLEAN_TEXT,
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
)

VALUES_BY_TYPE = {
    "text": TEXT,
    "char(6)": st.text(alphabet="ab 1\u00a0", max_size=6),
    "numeric": st.one_of(
        # compare.canonical_number rounds to 28 significant digits (Decimal's context)
        st.integers(0, 15).flatmap(
            lambda places: st.decimals(-(10**12), 10**12, allow_nan=False, places=places)
        ),
        st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]),
    ),
    "double precision": st.floats(min_value=-1e15, max_value=1e15) | st.floats(),
    "real": st.floats(width=32),
    "bigint": st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1, 20240501]),
    "boolean": st.booleans(),
    "date": st.dates(min_value=date(1, 1, 1)),
    "timestamp": st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    "timestamptz": st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
}

RULES = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "trim": st.booleans(),
            "keep_trailing_whitespace": st.booleans(),
            "case_insensitive": st.booleans(),
            "empty_is_null": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["number", "integer"])},
        optional={
            "places": st.integers(0, 4),
            "tolerance": st.sampled_from(["0", "0.05", "1"]),
        },
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["date", "datetime", "boolean"])}),
).map(lambda data: ColumnRule.from_dict("c", data))

KIND_OF_TYPE = {
    "text": "text",
    "char(6)": "bpchar",
    "numeric": "numeric",
    "double precision": "float8",
    "real": "float4",
    "bigint": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
}


def python_form(value, rule: ColumnRule):
    """The SQL normal form as compare.normaliser writes it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return value if rule.tolerance is not None else canonical_number(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value.isoformat()


def in_the_read_forms(rule: ColumnRule, value) -> bool:
    """Whether a value is written in the forms the database reads (see the module)."""
    text = str(value).strip()
    if rule.type in ("number", "integer"):
        return re.fullmatch(NUMBER_PATTERN, text.replace("_", "")) is not None
    if rule.type in ("date", "datetime"):
        return re.fullmatch(DATETIME_PATTERN, text) is not None
    return True


@pytest.mark.parametrize("type_name", list(VALUES_BY_TYPE))
def test_each_normal_form_is_the_normaliser_of_what_psycopg_reads(reader, type_name):
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values=st.lists(st.none() | VALUES_BY_TYPE[type_name], max_size=25), rule=RULES)
    def check(values, rule):
        with reader.transaction():
            icu = apply_settings(reader)
            normal = normal_sql(KIND_OF_TYPE[type_name], rule, sql.Identifier("c0"), icu=icu)
            refused = normal.refused or sql.SQL("false")
            rows = reader.execute(
                sql.SQL(
                    "SELECT c0, CASE WHEN {refused} THEN NULL ELSE {value} END, {refused} "
                    "FROM unnest(%s::{type}[]) AS u(c0)"
                ).format(value=normal.value, refused=refused, type=sql.SQL(type_name)),
                [values],
            ).fetchall()
            first_refused = next((raw for raw, _, r in rows if r), None)
            if first_refused is not None:  # its normal form fails, never passes silently
                with pytest.raises(psycopg.errors.DataError), reader.transaction():
                    reader.execute(
                        sql.SQL("SELECT {} FROM (SELECT %s::{}) AS u(c0)").format(
                            normal.value, sql.SQL(type_name)
                        ),
                        [first_refused],
                    )
        normalise = normaliser(rule)
        for raw, value, refused in rows:
            try:
                expected, python_refused = normalise(raw), False
            except decimal.InvalidOperation:
                continue  # compare.py cannot round numbers beyond 28 digits (Decimal's context)
            except Exception as exc:
                assert getattr(exc, "message", None), exc  # compare's refusal, not a crash
                expected, python_refused = None, True
            if refused:  # refused by the database: by Python too, or outside the read forms
                assert python_refused or not in_the_read_forms(rule, raw), (raw, rule)
                continue
            assert not python_refused, (raw, rule)
            assert python_form(value, rule) == expected, (raw, rule)

    check()


def test_the_whitespace_is_pythons():
    python = "".join(char for char in map(chr, range(sys.maxunicode + 1)) if char.isspace())
    assert python == WHITESPACE


# --------------------------------------------------------------------------------------
# Values that do not read, and other failures, are clear errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "side, value, rule, types, message",
    [
        ("target", "ten", {"type": "number"}, None, "target column c: 'ten' is not a number."),
        (
            "source",
            Decimal("NaN"),
            {"type": "number"},
            None,
            "source column c: 'NaN' is not a finite number.",
        ),
        (
            "source",
            "2024-02-30",
            {"type": "date"},
            None,
            "source column c: '2024-02-30' is not an ISO date.",
        ),
        (
            "source",
            20240501,
            {"type": "date"},
            None,
            "source column c: '20240501' is not an ISO date the database reads "
            "(YYYY-MM-DD, or a date-time).",
        ),
        (
            "target",
            "2024-05-01T08:00+16:00",
            {"type": "datetime"},
            None,
            "target column c: '2024-05-01T08:00+16:00' is not an ISO date-time the database "
            "reads (YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|±HH[:MM]], offsets up to ±15:59).",
        ),
        ("target", "on", {"type": "boolean"}, None, "target column c: 'on' is not true or false."),
        ("source", True, {"type": "number"}, None, "source column c: 'true' is not a number."),
        (
            "source",
            "x" * 80,
            {"type": "integer"},
            None,
            "source column c: '" + "x" * 56 + "... is not a number.",
        ),
        (
            "source",
            '{"a": 1}',
            {},
            ("jsonb", "text"),
            "source column c: the in-database comparison does not read type jsonb; cast it to "
            "text in the query or use the streamed strategy.",
        ),
    ],
)
def test_a_value_that_does_not_read_stops_the_run_naming_side_column_and_value(
    writer, reader, side, value, rule, types, message
):
    good = {"number": "1", "integer": "1", "date": "2024-05-01", "boolean": "t"}.get(
        rule.get("type"), "2024-05-01T08:00"
    )
    a, b = (value, good) if side == "source" else (good, value)
    if types is None:
        types = (column_type(a), column_type(b))
    with pytest.raises(ComparisonError) as info:
        compare_one(writer, reader, a, b, rule, types=types)
    assert str(info.value) == message
    assert reader.execute("SELECT 1").fetchone() == (1,)  # the connection is usable


def test_types_psycopg_reads_as_text_compare_as_their_text(writer, scratch_database):
    writer.execute("DROP TYPE IF EXISTS mood CASCADE")
    writer.execute("CREATE TYPE mood AS ENUM ('ok', 'sad')")
    columns = {"id": "integer", "payload": "jsonb", "mood": "mood"}
    load(writer, "docs", columns, [(1, '{"b": 2, "a": 1}', "ok"), (2, "[1]", "sad")])
    load(writer, "docs_copy", {"id": "integer", "payload": "text", "mood": "text"},
         [(1, '{"a": 1, "b": 2}', "ok"), (2, "[1, 2]", "sad")])  # fmt: skip
    plan = Plan.build(["id"], ["payload", "mood"])
    with psycopg.connect(f"{SERVER} dbname={scratch_database}") as connection:
        connection.adapters.register_loader("jsonb", TextLoader)  # as the SQL reader does
        outcome = compare_in_database(
            connection,
            plan,
            select("docs", ["id", "payload", "mood"]),
            select("docs_copy", ["id", "payload", "mood"]),
        )
    assert outcome.matched == 1  # jsonb's text is its normal form: {"a": 1, "b": 2}
    assert outcome.column_mismatches == {"payload": 1, "mood": 0}


def test_failing_queries_and_timeouts_are_clear_errors(writer, reader):
    load_counts_example(writer)
    source = select("orders", COUNTS_PLAN.side_columns("source"))
    with pytest.raises(ComparisonError) as info:
        compare_in_database(reader, COUNTS_PLAN, source, "SELECT 1 FROM nowhere")
    assert str(info.value) == 'The target query failed: relation "nowhere" does not exist.'
    with pytest.raises(ComparisonError) as info:
        compare_in_database(reader, COUNTS_PLAN, source, "SELECT 1, 2")
    assert str(info.value) == (
        "The target query returns 2 columns; 3 were asked for (ID, AMOUNT, name)."
    )
    reader.execute("SET statement_timeout = 100")
    try:
        with pytest.raises(ComparisonError) as info:
            compare_in_database(reader, COUNTS_PLAN, source + ", pg_sleep(1)", source)
    finally:
        reader.rollback()
    assert str(info.value) == (
        "The database stopped the comparison: canceling statement due to statement timeout."
    )
    assert reader.execute("SHOW statement_timeout").fetchone() == ("1min",)
    reader.rollback()


# --------------------------------------------------------------------------------------
# One statement whatever the size, and a hash join
# --------------------------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch):
    """The statements run through psycopg cursors (executes and COPYs)."""
    seen = []
    execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

    def recording_execute(self, query, *args, **kwargs):
        seen.append(("execute", query))
        return execute(self, query, *args, **kwargs)

    def recording_copy(self, statement, *args, **kwargs):
        seen.append(("copy", statement))
        return copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", recording_execute)
    monkeypatch.setattr(psycopg.Cursor, "copy", recording_copy)
    return seen


def load_orders(writer, rows: int):
    source = [(n, f"{n}.10", f"name {n}") for n in range(rows)]
    target = [(n, f"{n}.1", f"name {n}" if n % 7 else "other") for n in range(1, rows + 1)]
    load(writer, "orders", {"id": "integer", "amount": "text", "name": "text"}, source)
    load(writer, "ORDERS", {"ID": "integer", "AMOUNT": "text", "name": "text"}, target)


@pytest.mark.parametrize("rows", [10, 2_000])
def test_one_statement_counts_whatever_the_size(writer, reader, statements, rows):
    load_orders(writer, rows)
    statements.clear()
    outcome = compare_counts_example(reader, report=io.StringIO())
    assert outcome.missing_in_target == 1
    assert outcome.unexpected_in_target == 1
    assert outcome.column_mismatches == {"amount": 0, "name": (rows - 1) // 7}
    # REPEATABLE READ, settings; the comparison, streamed by COPY, gives the counts, the
    # samples and the report
    assert [kind for kind, _ in statements] == ["execute", "execute", "copy"]
    statements.clear()
    compare_counts_example(reader, sample_size=0)
    assert [kind for kind, _ in statements] == ["execute", "execute", "copy"]


@pytest.mark.parametrize(
    "rescan, scans",
    [
        (set(), 1),  # each side read once, its rows counted as the comparison reads them
        ({"source", "target"}, 2),  # stored tables: read again, by count(*)
    ],
)
def test_the_sides_are_joined_by_hash_or_merge_never_a_nested_loop(
    writer, reader, statements, rescan, scans
):
    load_orders(writer, 10_000)
    statements.clear()
    outcome = compare_counts_example(reader, sample_size=0, rescan=rescan)
    assert (outcome.source_rows, outcome.target_rows) == (10_000, 10_000)
    kind, copy = statements[2]
    assert kind == "copy"
    comparison = list(copy)[1]  # COPY ( <the comparison> ) TO STDOUT …
    with reader.transaction():
        apply_settings(reader)
        plan = "\n".join(
            row[0] for row in reader.execute(sql.SQL("EXPLAIN {}").format(comparison)).fetchall()
        )
    assert "Hash Full Join" in plan or "Merge Full Join" in plan, plan
    assert "Nested Loop" not in plan, plan
    assert plan.count("Seq Scan on orders") == scans, plan
    assert plan.count('Seq Scan on "ORDERS"') == scans, plan
