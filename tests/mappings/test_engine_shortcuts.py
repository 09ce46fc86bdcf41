"""The engine's shortcuts give exactly what the general paths give: numeric date formats read
and written without strptime/strftime, the rules' fast functions and inline shortcuts, the
loops over array elements, and arithmetic on plain numbers."""

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.mappings import dates, rules
from apps.mappings.expression import NUMBERS, number_from_data
from apps.mappings.paths import MISSING
from tests.mappings.conftest import compile_rows, row

NUMERIC_FORMATS = [
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y-%m-%d",
    "%Y%m%d",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d  %m\t%Y",
    "%Y.%m.%d (%H) [%M] %%",
]
OTHER_FORMATS = ["%d %b %Y", "%Y-%m-%d %I %p", "%y%m%d"]
DATE_PIECES = st.sampled_from(
    [*"0123456789 .:-/T%()[]\t", "12", "2024", "31", "29", "02", " 5", "t", "١٢", "²", "Mar"]
)
DATE_TEXTS = st.lists(DATE_PIECES, max_size=16).map("".join)


def _strptime_outcome(text, fmt):
    """What parse() gave before the numeric formats had their own reader."""
    value = text.strip()
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        return f"{text!r} does not match the format {fmt!r}"


def _outcome(function, *args):
    try:
        return function(*args)
    except ValueError as exc:
        return str(exc)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(NUMERIC_FORMATS + OTHER_FORMATS), DATE_TEXTS)
def test_a_date_format_reads_any_text_as_strptime_does(fmt, text):
    assert _outcome(dates.parse, text, fmt) == _strptime_outcome(text, fmt)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(NUMERIC_FORMATS + OTHER_FORMATS), st.datetimes())
def test_a_date_format_writes_and_reads_back_as_strftime_and_strptime_do(fmt, value):
    text = value.strftime(fmt)
    assert dates.write(value, fmt) == text  # years below 1000 included
    assert _outcome(dates.parse, text, fmt) == _strptime_outcome(text, fmt)
    assert _outcome(dates.parse, f" {text} ", fmt) == _strptime_outcome(f" {text} ", fmt)


TRICKY_DATES = [
    "03/ 5/2024 10:00",
    "3/5/2024 1:5",
    "12/31/2024 23:59",
    "2024-1-5",
    "2024-01-05T1:02:03",
    "2024-01-05t01:02:03",
    "20240105",
    "2024015",
    "5.3.2024",
    "05.03.2024 13:45",
    "05.03.2024  13:45",
    "05.03.2024\t13:45",
    "1.1.2024 00:00",
    "31.12.2024 24:00",
    "29.02.2023",
    "29.02.2024",
    "29  02\t2024",
    "2024.03.05 (7) [5] %",
    "2024.03.05 (07) [60] %",
]


@pytest.mark.parametrize("fmt", NUMERIC_FORMATS)
@pytest.mark.parametrize("text", TRICKY_DATES)
def test_tricky_dates_read_as_strptime_reads_them(fmt, text):
    assert _outcome(dates.parse, text, fmt) == _strptime_outcome(text, fmt)


def test_a_date_that_is_not_in_the_calendar_does_not_match():
    with pytest.raises(ValueError, match="does not match the format"):
        dates.parse("31.02.2024", "%d.%m.%Y")
    with pytest.raises(ValueError, match="too long"):
        dates.parse("1" * 101, "%d.%m.%Y")
    assert dates.parse(" 5.3.2024 7:05 ", "%d.%m.%Y %H:%M") == datetime(2024, 3, 5, 7, 5)


VALUES = [
    None,
    True,
    False,
    0,
    7,
    -3,
    10**40,
    12.5,
    0.1,
    -0.0,
    1e300,
    float("inf"),
    float("nan"),
    [],
    ["a", 2, None],
    {"a": 1},
    "",
    "7",
    "007",
    "-3",
    "+5",
    " 12 ",
    "1_000",
    "2.50",
    "1e5",
    "1e-5000",
    "1e5000",
    "NaN",
    "Infinity",
    "١٢",
    "²",
    "9" * 40,
    "1" * 90,
    "yes",
    " Yes ",
    "no",
    "TRUE",
    "off",
    "x",
    "pc",
    "kg",
    "  Mixed Case  ",
    "ß",
    "28.11.2024",
    "2024-11-28",
    "2024-11-28T10:00:00+01:00",
    "05.03.2024 13:45",
    "0999-01-02",
]
KINDS = [
    ("copy", {}),
    ("default", {"value": "d"}),
    ("default", {"value": None}),
    ("cast", {"to": "integer"}),
    ("cast", {"to": "number"}),
    ("cast", {"to": "boolean"}),
    ("cast", {"to": "string"}),
    ("cast", {"to": "decimal", "places": 2}),
    ("cast", {"to": "date", "format": "%d.%m.%Y"}),
    ("date_format", {"from": "%d.%m.%Y %H:%M", "to": "iso", "from_tz": "Europe/Berlin"}),
    ("date_format", {"from": "iso", "to": "%Y%m%d"}),
    ("substring", {"start": 1, "length": 3}),
    ("pad", {"width": 5, "fill": "0"}),
    ("pad", {"width": 5, "side": "right"}),
    ("trim", {}),
    ("trim", {"side": "left", "chars": " M"}),
    ("upper", {}),
    ("lower", {}),
    ("code_map", {"map": {"pc": "PCE", "7": None}}),
    ("code_map", {"map": {"pc": "PCE"}, "default": "other"}),
    ("lookup", {"table": "units"}),
    ("lookup", {"table": "units", "default": "none"}),
    ("arithmetic", {"op": "*", "operand": "0.19", "places": 2}),
    ("concat", {"separator": "-"}),
]
LOOKUPS = {"units": {"kg": "KGM", "x": "ex"}}


@pytest.mark.parametrize(("kind", "params"), KINDS)
def test_a_rules_fast_function_agrees_with_its_function(kind, params):
    built, problems = rules.build(kind, params, rules.BuildContext(["a"], LOOKUPS))
    assert not problems
    if built.fast is None:
        return
    for value in VALUES:
        if value.__class__ is not built.fast_type:
            continue
        found = built.fast(value)
        assert found is MISSING or found == built.function(value), value


@pytest.mark.parametrize(("kind", "params"), KINDS)
@pytest.mark.parametrize("required", [False, True])
def test_a_row_over_an_array_makes_what_it_makes_for_each_value_alone(kind, params, required):
    in_array = compile_rows(
        row(1, "items[*].v", ["lines[*].a"], kind, params, required), lookups=LOOKUPS
    )
    alone = compile_rows(row(1, "v", ["a"], kind, params, required), lookups=LOOKUPS)
    payload = {"lines": [{"a": value} for value in VALUES] + [{}, "not an object"]}
    output, problems = in_array.transform(payload)
    expected_items, expected_problems = [], []
    for index, element in enumerate(payload["lines"]):
        record = element if isinstance(element, dict) else None
        value, found = alone.transform(record)
        expected_items.append(value)
        expected_problems += [
            (problem.row, f"items[{index}].v", problem.message) for problem in found
        ]
    assert output == {"items": expected_items}
    # A required row's message names the source path read: lines[n].a in the array.
    assert [
        (p.row, p.target_path, p.message.replace(f"at lines[{p.target_path[6:-3]}].a", "at a"))
        for p in problems
    ] == expected_problems


NUMBER_VALUES = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from(["7", "0", "-0", "1_0", " 3 ", "1e5000", "1e-5000", "x", "NaN", "9" * 81]),
    st.sampled_from([None, True, [1, "2"], {}]),
)


def _reference_arithmetic(values, op, operand, places):
    """arithmetic as the rules module describes it, written out without shortcuts."""
    operation = {"+": NUMBERS.add, "-": NUMBERS.subtract, "*": NUMBERS.multiply}[op]
    result = None
    for value in [*values, operand] if operand is not None else values:
        if value is None or value is MISSING:
            return "missing"
        if isinstance(value, bool | dict):
            return "failure"
        for item in value if isinstance(value, list) else [value]:
            if isinstance(value, list) and item is None:
                continue
            try:
                number = number_from_data(item)
            except ValueError:
                return "failure"
            try:
                result = number if result is None else operation(result, number)
            except ArithmeticError:
                return "failure"
    if places is not None:
        try:
            result = result.quantize(Decimal(1).scaleb(-places), "ROUND_HALF_UP", NUMBERS)
        except ArithmeticError:
            return "failure"
    return int(result) if result == result.to_integral_value() else float(result)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(NUMBER_VALUES, min_size=1, max_size=3),
    st.sampled_from(["+", "-", "*"]),
    st.sampled_from([None, "0.19", 2]),
    st.sampled_from([None, 0, 2]),
)
def test_arithmetic_on_plain_numbers_is_exact(values, op, operand, places):
    params = {"op": op} | ({} if operand is None else {"operand": operand})
    params |= {} if places is None else {"places": places}
    built, problems = rules.build("arithmetic", params, rules.BuildContext(["a", "b", "c"]))
    assert not problems
    try:
        got = built.function(values)
    except rules.RuleFailure:
        got = "failure"
    if got is MISSING:
        got = "missing"
    expected = _reference_arithmetic(values, op, None if operand is None else operand, places)
    assert repr(got) == repr(expected)
