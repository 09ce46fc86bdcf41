"""What "equal" means (by example), and the streamed comparison against the reference
implementation on random datasets."""

import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings

from apps.reconciliation.compare import (
    ColumnRule,
    ComparisonError,
    Plan,
    StreamedComparison,
    normaliser,
    values_equal,
)
from tests.reconciliation import reference
from tests.reconciliation.strategies import PLAN, datasets


def same(a, b, **rule) -> bool:
    column = ColumnRule.from_dict("c", rule)
    normalise = normaliser(column)
    return values_equal(normalise(a), normalise(b), column)


@pytest.mark.parametrize(
    "a, b, rule, equal",
    [
        (Decimal("10.10"), "10.1", {"type": "number"}, True),
        ("10", 10.0, {"type": "number"}, True),
        (Decimal("12.30"), Decimal("12.3"), {"type": "number"}, True),
        ("1E+2", 100, {"type": "integer"}, True),
        ("-0.00", "0", {"type": "number"}, True),
        ("10.005", "10.01", {"type": "number", "places": 2}, True),  # half away from zero
        ("-10.005", "-10.01", {"type": "number", "places": 2}, True),
        ("10.004", "10.01", {"type": "number", "places": 2}, False),
        ("10.00", "10.04", {"type": "number", "tolerance": "0.05"}, True),
        ("10.00", "10.06", {"type": "number", "tolerance": "0.05"}, False),
        (
            datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T08:00:00Z",
            {"type": "datetime"},
            True,
        ),
        ("2024-05-01T08:00:00", "2024-05-01T08:00:00+00:00", {"type": "datetime"}, True),
        ("2024-05-01 10:00:00+02:00", "2024-05-01T08:00:00.000001Z", {"type": "datetime"}, False),
        (datetime(2024, 5, 1, 23, 30, tzinfo=UTC), "2024-05-01", {"type": "date"}, True),
        (date(2024, 5, 1), "2024-05-02", {"type": "date"}, False),
        ("abc  ", "abc", {}, True),  # trailing whitespace is ignored by default
        ("abc  ", "abc", {"keep_trailing_whitespace": True}, False),
        ("  abc", "abc", {}, False),  # leading whitespace counts…
        ("  abc", "abc", {"trim": True}, True),  # …unless the job trims
        ("ABC", "abc", {}, False),
        ("ABC", "abc", {"case_insensitive": True}, True),
        (None, None, {}, True),  # NULL equals NULL
        (None, "", {}, False),  # and not the empty text…
        (None, "", {"empty_is_null": True}, True),  # …unless the job says so
        (None, "  ", {"empty_is_null": True}, True),
        (None, " ", {"type": "number"}, True),  # an empty typed value is NULL
        ("t", True, {"type": "boolean"}, True),
        ("NO", "0", {"type": "boolean"}, True),
        (10, "10", {}, True),  # text columns compare by text
        (Decimal("10.50"), "10.5", {}, True),
    ],
)
def test_values_equal_after_normalisation(a, b, rule, equal):
    assert same(a, b, **rule) is equal
    assert same(b, a, **rule) is equal


@pytest.mark.parametrize(
    "rule, message",
    [
        (
            {"type": "money"},
            "c: type must be one of text, number, integer, date, datetime, boolean.",
        ),
        ({"trim": "yes"}, "c: trim must be true or false."),
        ({"type": "number", "places": 40}, "c: places must be a whole number from 0 to 12."),
        ({"type": "number", "tolerance": "x"}, "c: tolerance must be a number."),
        ({"type": "number", "tolerance": -1}, "c: tolerance must be zero or more."),
        ({"places": 2}, "c: places and tolerance apply to numbers only."),
        ({"colour": "red"}, "c: unknown option colour."),
    ],
)
def test_bad_normalisation_is_refused_naming_the_column(rule, message):
    with pytest.raises(ComparisonError) as info:
        ColumnRule.from_dict("c", rule)
    assert str(info.value) == message


def test_plans_are_checked():
    with pytest.raises(ComparisonError, match="at least one key"):
        Plan.build([], ["a"])
    with pytest.raises(ComparisonError, match="not compared: b"):
        Plan.build(["id"], ["a"], normalisation={"b": {}})
    with pytest.raises(ComparisonError, match="key column cannot have a tolerance"):
        Plan.build(["id"], [], normalisation={"id": {"type": "number", "tolerance": 1}})
    plan = Plan.build(["id"], ["id", "a"], mapping={"a": "A"})
    assert plan.side_columns("source") == ["id", "a"]
    assert plan.side_columns("target") == ["id", "A"]


def test_a_value_of_the_wrong_type_stops_the_run_naming_column_side_and_value():
    plan = Plan.build(["id"], ["amount"], normalisation={"amount": {"type": "number"}})
    comparison = StreamedComparison(plan)
    comparison.add("source", [(1, "10.00")])
    with pytest.raises(ComparisonError) as info:
        comparison.add("target", [(1, "ten")])
    assert str(info.value) == "target column amount: 'ten' is not a number."


def test_counts_samples_and_the_report():
    plan = Plan.build(
        ["id"],
        ["amount", "name"],
        mapping={"id": "ID", "amount": "AMOUNT"},
        normalisation={"amount": {"type": "number"}},
    )
    comparison = StreamedComparison(plan, partitions=4, spill_rows=3)
    comparison.add(
        "source",
        [
            (1, "10.10", "a"),
            (2, "5", "b"),
            (3, "1", "c"),
            (4, "1", "d"),
            (4, "1", "d"),
            (6, "2", "x"),
        ],
    )
    comparison.add(
        "target",
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
    lines = report.getvalue().splitlines()
    assert lines[0] == "difference,id,column,source value,target value"
    assert sorted(lines[1:]) == [
        "duplicate,4,,2 rows,1 rows",
        "duplicate,6,,1 rows,3 rows",
        "mismatched,2,amount,5,6",
        "mismatched,2,name,b,B",
        "unexpected_in_target,5,,,",
    ]


def test_samples_are_bounded_and_the_first_keys_in_order():
    plan = Plan.build(["id"], [], normalisation={"id": {"type": "integer"}})
    comparison = StreamedComparison(plan, partitions=3, spill_rows=50)
    comparison.add("source", [(f"{n:04d}",) for n in reversed(range(500))])
    outcome = comparison.finish()
    assert outcome.missing_in_target == 500
    assert [item["key"] for item in outcome.samples["missing_in_target"]] == [
        [f"{n:04d}"] for n in range(20)
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets())
def test_the_streamed_comparison_agrees_with_the_reference(data):
    source, target = data
    expected = reference.reconcile(PLAN, source, target)
    for partitions, spill_rows in ((1, 10_000), (3, 4)):
        comparison = StreamedComparison(PLAN, partitions=partitions, spill_rows=spill_rows)
        for start in range(0, len(source), 7):
            comparison.add("source", source[start : start + 7])
        comparison.add("target", target)
        outcome = comparison.finish(io.StringIO())
        assert outcome.counts() == expected["counts"]
        assert outcome.column_mismatches == expected["column_mismatches"]


def test_report_cells_are_escaped_against_formulas():
    plan = Plan.build(["id"], ["note"])
    comparison = StreamedComparison(plan)
    comparison.add("source", [("=HYPERLINK(1)", "-5"), ("k", "@x")])
    comparison.add("target", [("k", "+y")])
    report = io.StringIO()
    comparison.finish(report)
    assert sorted(report.getvalue().splitlines()[1:]) == [
        "mismatched,k,note,'@x,'+y",
        "missing_in_target,'=HYPERLINK(1),,,",
    ]


def test_numbers_compare_exactly_beyond_28_digits():
    assert not same(
        "1234567890123456789012345678901", "1234567890123456789012345678902", type="number"
    )
    assert same(
        "1234567890123456789012345678901.10", "1234567890123456789012345678901.1", type="number"
    )
    with pytest.raises(ComparisonError, match="too many digits to round to 0 places"):
        comparison = StreamedComparison(
            Plan.build(["id"], ["n"], normalisation={"n": {"type": "number", "places": 0}})
        )
        comparison.add("source", [(1, "1E+1000001")])


def test_an_instant_beyond_the_calendar_is_refused_not_a_crash():
    plan = Plan.build(["id"], ["at"], normalisation={"at": {"type": "datetime"}})
    comparison = StreamedComparison(plan)
    with pytest.raises(ComparisonError, match="is not an ISO date-time"):
        comparison.add("source", [(1, "9999-12-31T23:00:00-01:00")])
