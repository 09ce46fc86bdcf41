"""The vectorised strategy answers what the streamed one answers: the equality table of
test_compare through polars (raw values and CSV text), the same counts, samples and report,
the same errors, and agreement with the reference on random datasets, partitions spilled."""

import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.reconciliation import vectorised
from apps.reconciliation.compare import (
    ColumnRule,
    ComparisonError,
    Plan,
    Refused,
    StreamedComparison,
    normaliser,
    values_equal,
)
from apps.reconciliation.vectorised import CsvFallback, VectorisedComparison
from tests.reconciliation import postgres, reference
from tests.reconciliation.strategies import PLAN, datasets
from tests.reconciliation.test_compare import test_values_equal_after_normalisation as table

EQUALITY_TABLE = table.pytestmark[0].args[1]  # test_compare's table of (a, b, rule, equal)
SMALL = {"partitions": 3, "spill_bytes": 1}  # every batch goes to disk, in 3 partitions
PARTITIONED = {"partitions": 4, "spill_bytes": 1, "flush_bytes": 10**9}  # split, one flush


def csv_text(rows, width=None) -> bytes:
    """Text rows as COPY … TO STDOUT (FORMAT csv, HEADER) writes them: a header of c0, c1, …,
    NULL as a bare empty cell and every text quoted (COPY quotes the empty text)."""
    width = width or len(rows[0])
    lines = [",".join(f"c{index}" for index in range(width))]
    for row in rows:
        lines.append(",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row))
    return ("\n".join(lines) + "\n").encode()


def as_text(value):
    """A raw value as a CSV export writes it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def outcome_of(comparison_class, plan, source, target, *, csv_rows=False, **options):
    comparison = comparison_class(plan, **options)
    if csv_rows:
        width = len(plan.side_columns("source"))
        comparison.add_csv("source", csv_text(source, width))
        comparison.add_csv("target", csv_text(target, width))
    else:
        for start in range(0, len(source), 7):
            comparison.add("source", source[start : start + 7])
        comparison.add("target", target)
    report = io.StringIO()
    outcome = comparison.finish(report)
    return outcome, sorted(report.getvalue().splitlines())


def assert_same(plan, source, target, *, csv_rows=False, **options):
    """The vectorised outcome (counts, per-column counts, samples, report) is the streamed
    one's."""
    texts = (
        [tuple(map(as_text, row)) for row in source],
        [tuple(map(as_text, row)) for row in target],
    )
    streamed = outcome_of(StreamedComparison, plan, *(texts if csv_rows else (source, target)))
    vectorised = outcome_of(
        VectorisedComparison,
        plan,
        *(texts if csv_rows else (source, target)),
        csv_rows=csv_rows,
        **options,
    )
    assert vectorised[0].counts() == streamed[0].counts()
    assert vectorised[0].column_mismatches == streamed[0].column_mismatches
    assert vectorised[0].samples == streamed[0].samples
    assert vectorised[1] == streamed[1]
    return vectorised[0]


# --------------------------------------------------------------------------------------
# What "equal" means, through polars
# --------------------------------------------------------------------------------------


def python_same(a, b, rule) -> bool:
    column = ColumnRule.from_dict("c", rule)
    normalise = normaliser(column)
    return values_equal(normalise(a), normalise(b), column)


@pytest.mark.parametrize("a, b, rule, equal", EQUALITY_TABLE)
@pytest.mark.parametrize("csv_rows", [False, True], ids=["tuples", "csv"])
def test_values_equal_after_normalisation(a, b, rule, equal, csv_rows):
    plan = Plan.build(["id"], ["c"], normalisation={"c": rule})
    for first, second in ((a, b), (b, a)):
        if csv_rows:
            first, second = as_text(first), as_text(second)
            equal = python_same(first, second, rule)
        outcome = assert_same(plan, [(1, first)], [(1, second)], csv_rows=csv_rows)
        assert (outcome.matched, outcome.mismatched) == ((1, 0) if equal else (0, 1))


@pytest.mark.parametrize(
    "rule, values",
    [
        (
            {"type": "number"},
            [
                "10.10",
                "10.1",
                " 7 ",
                "1E+2",
                "100",
                "-0.00",
                "0",
                "1_000",
                "1e-30",
                "123456789012345678901234567890.5",
                "0.1234567890123456",
                "",
                "  ",
                None,
            ],
        ),
        (
            {"type": "number", "places": 2},
            [
                "10.005",
                "10.01",
                "-10.005",
                "10.004",
                "2.675",
                "1E+3",
                "99999999999999999.995",
                "0.125",
                "-0.004",
            ],
        ),
        (
            {"type": "number", "tolerance": "0.05"},
            [
                "10.00",
                "10.04",
                "10.06",
                "1e20",
                "100000000000000000000.01",
                "12345678901234567.123",
                "12345678901234567.15",
                None,
            ],
        ),
        (
            {"type": "date"},
            [
                "2024-05-01",
                "2024-05-01T23:30:00-02:00",
                "2024-05-02",
                "20240501",
                "2024-02-30",
                "2024-05-01 10:00Z",
                " 2024-05-01 ",
                "2024-W18-3",
                "0001-01-01",
            ],
        ),
        (
            {"type": "datetime"},
            [
                "2024-05-01T10:00:00+02:00",
                "2024-05-01 08:00:00Z",
                "2024-05-01T08:00:00",
                "2024-05-01 08:00:00+00",
                "2024-05-01T08:00",
                "2024-05-01T08:00:00.5+0000",
                "2024-05-01T08:00:00.500000",
                "2024-05-01",
                "2024-05-01T09:00:00+01:00:00",
                "2024-05-01T08:30:00+00:30",
                "2024-05-01T09:00:00+00:60",
            ],
        ),
        ({"type": "boolean"}, ["t", "TRUE", " yes ", "Y", "1", "0", "no", "F", "False", None, ""]),
        (
            {"case_insensitive": True, "trim": True},
            ["ABC", "abc", " Abc\u00a0", "ÉCOLE", "école", "İ", "i̇", "ΣΑΣ", "σας"],
        ),
        ({"empty_is_null": True}, ["", " ", "\x1c", None, "a", "a\u3000"]),
        ({"keep_trailing_whitespace": True}, ["a", "a ", "a\t", None]),
    ],
)
def test_every_pair_of_texts_compares_as_python_compares_them(rule, values):
    """Values inside and outside the fast paths, pairwise: the same verdict as Python's;
    and the same error for a value Python refuses."""
    plan = Plan.build(["id"], ["c"], normalisation={"c": rule})
    normalise = normaliser(ColumnRule.from_dict("c", rule))
    good = []
    for value in values:
        try:
            normalise(value)
        except Refused:
            messages = []
            for comparison_class in (StreamedComparison, VectorisedComparison):
                with pytest.raises(ComparisonError) as info:
                    comparison_class(plan).add("target", [(1, None), (2, value)])
                messages.append(str(info.value))
            with pytest.raises(ComparisonError) as info:
                VectorisedComparison(plan).add_csv("target", csv_text([("1", None), ("2", value)]))
            messages.append(str(info.value))
            assert messages[0].startswith(f"target column c: {value!r} is not")
            assert messages == [messages[0]] * 3
        else:
            good.append(value)
    keys = range(len(good) ** 2)
    source = [(key, good[key // len(good)]) for key in keys]
    target = [(key, good[key % len(good)]) for key in keys]
    for csv_rows in (False, True):
        outcome = assert_same(plan, source, target, csv_rows=csv_rows, partitions=2, spill_bytes=1)
        expected = sum(
            python_same(a, b, rule) for (_, a), (_, b) in zip(source, target, strict=True)
        )
        assert outcome.matched == expected


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_a_value_of_the_wrong_type_stops_the_run_naming_column_side_and_value():
    plan = Plan.build(["id"], ["amount"], normalisation={"amount": {"type": "number"}})
    comparison = VectorisedComparison(plan)
    comparison.add("source", [(1, "10.00")])
    with pytest.raises(ComparisonError) as info:
        comparison.add("target", [(1, "ten")])
    assert str(info.value) == "target column amount: 'ten' is not a number."
    comparison = VectorisedComparison(plan)
    with pytest.raises(ComparisonError) as info:
        comparison.add_csv("target", b'id,amount\n1,"10"\n2,"ten"\n3,"x"\n')
    assert str(info.value) == "target column amount: 'ten' is not a number."


def test_the_first_bad_row_and_its_first_bad_column_are_named():
    plan = Plan.build(
        ["id"],
        ["day", "flag"],
        normalisation={
            "id": {"type": "integer"},
            "day": {"type": "date"},
            "flag": {"type": "boolean"},
        },
    )
    rows = [(1, "2024-05-01", "t"), (2, "2024-05-01", "maybe"), (3, "May 1st", "nope")]
    for comparison_class in (StreamedComparison, VectorisedComparison):
        with pytest.raises(ComparisonError) as info:
            comparison_class(plan).add("source", rows)
        assert str(info.value) == "source column flag: 'maybe' is not true or false."
    with pytest.raises(
        ComparisonError, match="A source row has 2 values; 3 columns were asked for."
    ):
        VectorisedComparison(plan).add("source", [(1, "2024-05-01")])


# --------------------------------------------------------------------------------------
# Counts, samples and the report
# --------------------------------------------------------------------------------------

EXAMPLE_PLAN = Plan.build(
    ["id"],
    ["amount", "name"],
    mapping={"id": "ID", "amount": "AMOUNT"},
    normalisation={"amount": {"type": "number"}},
)
EXAMPLE_SOURCE = [
    (1, "10.10", "a"),
    (2, "5", "b"),
    (3, "1", "c"),
    (4, "1", "d"),
    (4, "1", "d"),
    (6, "2", "x"),
]
EXAMPLE_TARGET = [
    (1, "10.1", "a "),
    (2, "6", "B"),
    (3, "1", "c"),
    (4, "1", "d"),
    (5, "9", "z"),
    (6, "2", "x"),
    (6, "2", "x"),
    (6, "2", "x"),
]


@pytest.mark.parametrize(
    "options", [{}, SMALL, PARTITIONED], ids=["in memory", "spilled", "partitioned"]
)
def test_counts_samples_and_the_report(options):
    comparison = VectorisedComparison(EXAMPLE_PLAN, **options)
    comparison.add("source", EXAMPLE_SOURCE)
    comparison.add("target", EXAMPLE_TARGET)
    report = io.StringIO()
    outcome = comparison.finish(report)
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
    assert outcome.samples["mismatched"] == [
        {
            "key": [2],
            "source": {"id": 2, "amount": "5", "name": "b"},
            "target": {"ID": 2, "AMOUNT": "6", "name": "B"},
            "columns": ["amount", "name"],
        }
    ]
    assert outcome.samples["unexpected_in_target"][0]["key"] == [5]
    assert outcome.samples["duplicate"][0]["source_count"] == 2
    lines = report.getvalue().split("\r\n")
    assert lines[0] == "difference,id,column,source value,target value"
    assert lines[-1] == ""
    assert sorted(lines[1:-1]) == [
        "duplicate,4,,2 rows,1 rows",
        "duplicate,6,,1 rows,3 rows",
        "mismatched,2,amount,5,6",
        "mismatched,2,name,b,B",
        "unexpected_in_target,5,,,",
    ]
    assert_same(EXAMPLE_PLAN, EXAMPLE_SOURCE, EXAMPLE_TARGET, **options)


def test_samples_are_bounded_and_the_first_keys_in_order():
    plan = Plan.build(["id"], [], normalisation={"id": {"type": "integer"}})
    comparison = VectorisedComparison(plan, partitions=3, spill_bytes=2_000)
    comparison.add("source", [(f"{n:04d}",) for n in reversed(range(500))])
    outcome = comparison.finish()
    assert outcome.missing_in_target == 500
    assert [item["key"] for item in outcome.samples["missing_in_target"]] == [
        [f"{n:04d}"] for n in range(20)
    ]


def test_numbers_order_samples_by_value_even_beyond_what_polars_holds():
    plan = Plan.build(["id"], [], normalisation={"id": {"type": "number"}})
    keys = ["1E+40", "-1E+40", "1e-20", "-5", "10", "9.5", None, "0.000000000001", "2"]
    assert_same(plan, [(key,) for key in keys], [], partitions=2, spill_bytes=1)
    outcome = outcome_of(VectorisedComparison, plan, [(key,) for key in keys], [])[0]
    assert [item["key"][0] for item in outcome.samples["missing_in_target"]] == [
        None, "-1E+40", "-5", "1e-20", "0.000000000001", "2", "9.5", "10", "1E+40"
    ]  # fmt: skip


def test_shown_values_keep_their_python_types():
    plan = Plan.build(["id", "day"], ["amount", "at", "flag", "ratio"])
    moment = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    source = [
        (1, date(2024, 5, 1), Decimal("10.50"), moment, True, 0.5),
        (2, None, None, None, False, float("nan")),
    ]
    target = [(1, "2024-05-01", "10.5", "x", "true", "0.5"), (3, "d", "1", "2", "3", "4")]
    assert_same(plan, source, target)
    assert_same(plan, source, target, **SMALL)


@pytest.mark.parametrize(
    "options", [{}, SMALL, PARTITIONED], ids=["in memory", "spilled", "partitioned"]
)
def test_null_and_composite_keys_and_text_with_commas_quotes_and_line_breaks(options):
    plan = Plan.build(["a", "b"], ["note"], normalisation={"a": {"type": "integer"}})
    source = [(None, "x", 'say "hi", then\nleave'), (1, None, ""), (1, "y", "  "), (2, "z", "é")]
    target = [
        (None, "x", 'say "hi", then\r\nleave'),
        ("1", None, None),
        (1, "y", ""),
        (2, "z", "É"),
    ]
    assert_same(plan, source, target, **options)
    assert_same(plan, source, target, csv_rows=True, **options)


# --------------------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------------------


def test_a_csv_file_is_read_in_chunks_by_its_header(tmp_path):
    plan = Plan.build(
        ["id"],
        ["amount"],
        mapping={"amount": "total"},
        normalisation={"amount": {"type": "number"}},
    )
    path = tmp_path / "target.csv"
    lines = ["\ufeffnote;id;total"] + [f'"line\n{n}";{n};{n}.10' for n in range(3000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    comparison = VectorisedComparison(plan, chunk_bytes=1000, **SMALL)
    comparison.add("source", [(n, f"{n}.1") for n in range(1, 3001)])
    assert (
        comparison.add_csv("target", str(path), columns=["id", "total"], delimiter=";", nulls=False)
        == 3000
    )
    outcome = comparison.finish()
    assert (outcome.matched, outcome.missing_in_target, outcome.unexpected_in_target) == (
        2999,
        1,
        1,
    )


@pytest.mark.parametrize(
    "text",
    [
        b"id,amount\n1,2\n\n2,3\n",  # a blank line (the csv module skips it)
        b"id,amount\n1,2\n2\n",  # a short record (the file reader refuses it)
        b'id,amount\n1,a"b\n',  # a quote inside a bare cell (the csv module keeps it)
        b"id,amount\r1,2\r",  # lone CRs
        b"id,amount\n1,\xff\n",  # not UTF-8
    ],
)
def test_csv_the_fast_reader_would_read_otherwise_falls_back(text):
    plan = Plan.build(["id"], ["amount"])
    comparison = VectorisedComparison(plan)
    with pytest.raises(CsvFallback):
        comparison.add_csv("source", text, nulls=False)
    comparison.discard("source")
    assert comparison.outcome.source_rows == 0


# --------------------------------------------------------------------------------------
# Against the reference, on random datasets
# --------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets())
def test_the_vectorised_comparison_agrees_with_the_reference(data):
    source, target = data
    expected = reference.reconcile(PLAN, source, target)
    for options in ({}, SMALL, PARTITIONED):
        outcome = assert_same(PLAN, source, target, **options)
        assert outcome.counts() == expected["counts"]
        assert outcome.column_mismatches == expected["column_mismatches"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets())
def test_the_vectorised_comparison_of_csv_text_agrees_with_the_reference(data):
    source, target = ([tuple(map(as_text, row)) for row in rows] for rows in data)
    expected = reference.reconcile(PLAN, source, target)
    for options in ({}, SMALL, PARTITIONED):
        outcome = assert_same(PLAN, source, target, csv_rows=True, **options)
        assert outcome.counts() == expected["counts"]
        assert outcome.column_mismatches == expected["column_mismatches"]


def test_equal_by_value_examples_from_other_systems():
    """The strategies' "same record, written by another system" by hand: offsets, scales."""
    moment = datetime(2024, 5, 1, 23, 30, 0, 250000, tzinfo=UTC)
    source = [(1, "a", Decimal("12.30"), moment, "x", True, date(2024, 5, 1))]
    target = [
        (
            "1",
            "a",
            "12.3000",
            moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
            "x  ",
            "yes",
            "2024-05-01",
        )
    ]
    outcome = assert_same(PLAN, source, target)
    assert outcome.matched == 1


def test_report_cells_are_escaped_against_formulas_as_the_streamed_report():
    from apps.core.csv_export import FORMULA_PREFIXES

    plan = Plan.build(["id"], ["note", "flag"])
    source = [(f"{prefix}k", f"{prefix}v", True) for prefix in FORMULA_PREFIXES] + [
        ("k", "", False)
    ]
    target = [(f"{prefix}k", "v", None) for prefix in FORMULA_PREFIXES] + [("k", None, True)]
    assert_same(plan, source, target)


# --------------------------------------------------------------------------------------
# Reading sides: PostgreSQL through COPY, CSV files through polars
# --------------------------------------------------------------------------------------

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PG_TABLE = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN code AS text;
CREATE TABLE items (
    id integer, amount numeric(14, 4), ratio float8, flag boolean, day date,
    at timestamp, atz timestamptz, name text, padded char(4), uid uuid, doc jsonb,
    kind mood, tag code, big bigint, spent interval
);
INSERT INTO items
SELECT g, round((g * 1.37)::numeric, 2), g / 8.0, g % 3 = 0, date '2024-01-01' + g,
       timestamp '2024-01-01 00:00:00.5' + g * interval '61 minutes',
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second 250 ms',
       CASE WHEN g % 7 = 0 THEN NULL WHEN g % 11 = 0 THEN '' ELSE 'Name ' || g || ' ' END,
       'ab', md5(g::text)::uuid, jsonb_build_object('g', g), 'happy',
       'T' || g, g::bigint * 1000000000, g * interval '1 minute'
FROM generate_series(1, 3000) g;
INSERT INTO items (id, amount, name) VALUES (1, -0.00, 'A, "quoted"
name'), (NULL, NULL, NULL);
"""


@pytest.fixture(scope="module")
def pg_items():
    with postgres.scratch_database("pontis_recon_vectorised", PG_TABLE) as name:
        yield name


def pg_source(database):
    from apps.reconciliation.models import DataSource

    source = DataSource(kind="postgresql", dsn=f"postgresql://postgres@127.0.0.1:5432/{database}")
    source.set_credentials({"password": ""})
    return source


def read_both_ways(source, dataset, plan, target_rows, **options):
    """The outcome of the plan with the source read by the vectorised strategy's fastest
    way (read_side) and by the streamed strategy from the reader's rows."""
    from apps.reconciliation.readers import open_dataset
    from apps.reconciliation.vectorised import read_side

    outcomes = []
    for fast in (True, False):
        comparison = VectorisedComparison(plan, **options) if fast else StreamedComparison(plan)
        with open_dataset(source, dataset, {}, plan.side_columns("source")) as dataset_rows:
            if fast:
                for _ in read_side(comparison, "source", dataset_rows, 500):
                    pass
            else:
                for batch in dataset_rows.batches(500):
                    comparison.add("source", batch)
        comparison.add("target", target_rows)
        report = io.StringIO()
        outcomes.append((comparison.finish(report), sorted(report.getvalue().splitlines())))
    (fast, fast_report), (streamed, streamed_report) = outcomes
    assert fast.counts() == streamed.counts()
    assert fast.column_mismatches == streamed.column_mismatches
    assert fast.samples == streamed.samples
    assert fast_report == streamed_report
    return fast


@pytest.mark.parametrize(
    "normalisation",
    [
        {},  # every column compared by its text, as psycopg's values give it
        {
            "id": {"type": "integer"},
            "amount": {"type": "number", "places": 1},
            "ratio": {"type": "number", "tolerance": "0.01"},
            "flag": {"type": "boolean"},
            "day": {"type": "date"},
            "at": {"type": "datetime"},
            "atz": {"type": "datetime"},
            "name": {"type": "text", "trim": True, "case_insensitive": True, "empty_is_null": True},
        },
    ],
    ids=["as text", "typed"],
)
def test_postgres_through_copy_reads_what_psycopg_gives(pg_items, normalisation, monkeypatch):
    from apps.reconciliation import vectorised

    columns = ["amount", "ratio", "flag", "day", "at", "atz", "name", "padded", "uid", "doc"]
    columns += ["kind", "tag", "big"]
    plan = Plan.build(["id"], columns, normalisation=normalisation)
    # A target that matches some rows, differs in others (every column somewhere).
    with __import__("psycopg").connect(**PG, dbname=pg_items) as conn:
        rows = conn.execute(
            "SELECT id, amount, ratio, flag, day, at, atz, name, padded, uid, doc::text, kind::text,"
            " tag, big FROM items ORDER BY id"
        ).fetchall()
    target = []
    for number, row in enumerate(rows):
        row = list(row)
        if number % 5 == 1:
            row[1 + number % len(columns)] = None
        if number % 13 == 2:
            row[1] = str(row[1]) + " "
        target.append(tuple(row))
    monkeypatch.setattr(vectorised, "CHUNK_BYTES", 10_000)
    for options in ({}, SMALL | {"chunk_bytes": 10_000}):
        outcome = read_both_ways(
            pg_source(pg_items), "items", plan, target[5:] + [(9999,) + (None,) * 13], **options
        )
        assert outcome.source_rows == 3002


def test_postgres_types_copy_does_not_give_as_psycopg_does_are_read_as_rows(pg_items):
    from apps.reconciliation.readers import open_dataset
    from apps.reconciliation.vectorised import postgres_kinds

    plan = Plan.build(["id"], ["spent", "kind", "tag"])
    with open_dataset(pg_source(pg_items), "items", {}, ["id", "spent", "kind", "tag"]) as rows:
        assert postgres_kinds(rows) is None  # interval
    with open_dataset(pg_source(pg_items), "items", {}, ["id", "kind", "tag"]) as rows:
        assert postgres_kinds(rows) == ["int", "text", "text"]  # an enum, a domain over text
    outcome = read_both_ways(pg_source(pg_items), "items", plan, [(1, "00:01:00", "happy", "T1")])
    assert outcome.matched == 0 and outcome.duplicates == 1


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "content, rows",
    [
        (
            b"\xef\xbb\xbf\r\nname;ID;amount\r\nx;1;10.10\r\ny;2;\r\nz;3;abc\r\n",
            3,
        ),  # polars reads it
        (
            b'name;ID;amount\n"x\n";1;10.10\ny;2;\n\nz;3;abc\n',
            3,
        ),  # a blank line: for the csv module
        (b"name;ID;amount\nx;1;10.10\ny;2\n", None),  # a short line: the file reader refuses it
        (b'name;ID;amount\nx;1;10.10\ny"y;2;""\n', 2),  # a quote in a bare cell
    ],
)
def test_csv_files_are_read_by_polars_or_else_by_the_file_reader(media, content, rows):
    from apps.reconciliation.models import DataSource
    from apps.reconciliation.readers import ReadError

    (media / "target.csv").write_bytes(content)
    source = DataSource(kind="file", file="target.csv", file_name="target.csv")
    plan = Plan.build(["id"], ["amount"], normalisation={"amount": {"type": "text"}})
    try:
        outcome = read_both_ways(source, "", plan, [("1", "10.1"), ("2", None)])
    except ReadError as exc:
        assert rows is None
        assert str(exc) == "line 3 of target.csv: 2 cells, but the header has 3"
        return
    assert outcome.source_rows == rows


def test_a_bad_value_read_through_copy_stops_the_run_and_the_copy(pg_items, monkeypatch):
    from apps.reconciliation import vectorised
    from apps.reconciliation.readers import open_dataset

    plan = Plan.build(["id"], ["name"], normalisation={"name": {"type": "number"}})
    comparison = VectorisedComparison(plan, chunk_bytes=2_000)
    with (
        open_dataset(pg_source(pg_items), "items", {}, ["id", "name"]) as rows,
        pytest.raises(ComparisonError, match=r"^source column name: 'Name 1 ' is not a number\.$"),
    ):
        for _ in vectorised.read_side(comparison, "source", rows, 500):
            pass


def test_whole_and_fractional_number_keys_in_different_partitions():
    plan = Plan.build(["id"], ["v"], normalisation={"id": {"type": "number"}})
    source = [(n if n % 5 else f"{n}.5", "x") for n in range(200)] + [("1E+30", "y")]
    target = [(n, "x" if n % 7 else "z") for n in range(150)] + [
        ("1000000000000000000000000000000", "y")
    ]
    for options in ({}, SMALL, {"partitions": 8, "spill_bytes": 1}):
        assert_same(plan, source, target, **options)


ISO_INSTANTS = st.builds(
    lambda day, time, separator, fraction, offset: (
        day.isoformat() + separator + time.strftime("%H:%M:%S") + fraction + offset
    ),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
    st.times(),
    st.sampled_from(["T", " "]),
    st.one_of(
        st.just(""),
        st.integers(1, 6).flatmap(
            lambda n: st.text("0123456789", min_size=n, max_size=n).map(lambda d: "." + d)
        ),
    ),
    st.sampled_from(["", "Z", "+00", "-05", "+0530", "-0130", "+05:30", "-11:45", "+14:00"]),
)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(ISO_INSTANTS, min_size=1, max_size=30))
def test_iso_instants_read_as_python_reads_them(texts):
    read = normaliser(ColumnRule.from_dict("at", {"type": "datetime"}))
    values, need = vectorised._datetimes(pl.Series(texts, dtype=pl.String))
    for text, value, needed in zip(texts, values.to_list(), need.to_list(), strict=True):
        if not needed:
            assert value.replace(tzinfo=UTC).isoformat(timespec="microseconds") == read(text), text
