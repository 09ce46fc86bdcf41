"""Each rule kind on its own: the value it makes, and the clear problem it reports instead
of raising when the data does not fit."""

import pytest

from tests.mappings.conftest import compile_problems, row, transform

PAYLOAD = {
    "id": 42,
    "name": "  Ada Lovelace ",
    "first": "Ada",
    "last": "Lovelace",
    "middle": None,
    "code": "B2B",
    "country": "DE",
    "qty": "7",
    "price": 2.5,
    "zero": 0,
    "flag": "yes",
    "created": "28.11.2024 23:30",
    "stamp": "2024-11-28T23:30:00+01:00",
    "phone": "+49 30 1234",
    "customer": {"id": "C-1", "tags": ["a", "b"]},
    "empty": "",
}
LOOKUPS = {"countries": {"DE": "Germany", "FR": "France"}, "currencies": {"EUR": "Euro"}}


def one(rule, payload=PAYLOAD, **options):
    output, problems = transform([rule], payload, lookups=LOOKUPS, **options)
    return output, problems


@pytest.mark.parametrize(
    "rule, expected",
    [
        (row(1, "out", ["id"], "copy"), 42),
        (row(1, "out", ["middle"], "copy"), None),
        (row(1, "out", ["customer"], "copy"), {"id": "C-1", "tags": ["a", "b"]}),
        (row(1, "out", [], "constant", {"value": "ERP"}), "ERP"),
        (row(1, "out", [], "constant", {"value": {"a": [1]}}), {"a": [1]}),
        (row(1, "out", ["middle"], "default", {"value": "-"}), "-"),
        (row(1, "out", ["absent"], "default", {"value": "-"}), "-"),
        (row(1, "out", ["empty"], "default", {"value": "-"}), "-"),
        (row(1, "out", ["first"], "default", {"value": "-"}), "Ada"),
        (row(1, "out", ["id"], "cast", {"to": "string"}), "42"),
        (row(1, "out", ["qty"], "cast", {"to": "integer"}), 7),
        (row(1, "out", ["price"], "cast", {"to": "number"}), 2.5),
        (row(1, "out", ["price"], "cast", {"to": "decimal", "places": 2}), "2.50"),
        (row(1, "out", ["flag"], "cast", {"to": "boolean"}), True),
        (
            row(1, "out", ["created"], "cast", {"to": "date", "format": "%d.%m.%Y %H:%M"}),
            "2024-11-28",
        ),
        (
            row(1, "out", ["created"], "date_format", {"from": "%d.%m.%Y %H:%M", "to": "%Y-%m-%d"}),
            "2024-11-28",
        ),
        (
            row(
                1,
                "out",
                ["created"],
                "date_format",
                {"from": "%d.%m.%Y %H:%M", "to": "iso", "from_tz": "Europe/Berlin", "to_tz": "UTC"},
            ),
            "2024-11-28T22:30:00+00:00",
        ),
        (
            row(
                1,
                "out",
                ["stamp"],
                "date_format",
                {"to": "%Y-%m-%d %H:%M %z", "to_tz": "America/New_York"},
            ),
            "2024-11-28 17:30 -0500",
        ),
        (row(1, "out", ["first", "middle", "last"], "concat", {"separator": " "}), "Ada Lovelace"),
        (row(1, "out", ["customer.tags[*]"], "concat", {"separator": ","}), "a,b"),
        (row(1, "out", ["phone"], "split", {"separator": " ", "index": 1}), "30"),
        (row(1, "out", ["phone"], "split", {"separator": " ", "index": -1}), "1234"),
        (row(1, "out", ["phone"], "split", {"separator": " "}), ["+49", "30", "1234"]),
        (row(1, "out", ["last"], "substring", {"start": 1, "length": 3}), "ove"),
        (row(1, "out", ["id"], "pad", {"width": 6, "fill": "0"}), "000042"),
        (row(1, "out", ["first"], "pad", {"width": 5, "side": "right", "fill": "."}), "Ada.."),
        (row(1, "out", ["name"], "trim"), "Ada Lovelace"),
        (row(1, "out", ["name"], "trim", {"side": "left"}), "Ada Lovelace "),
        (row(1, "out", ["last"], "upper"), "LOVELACE"),
        (row(1, "out", ["last"], "lower"), "lovelace"),
        (
            row(1, "out", ["code"], "code_map", {"map": {"B2B": "business", "B2C": "consumer"}}),
            "business",
        ),
        (row(1, "out", ["code"], "code_map", {"map": {"X": 1}, "default": "other"}), "other"),
        (row(1, "out", ["country"], "lookup", {"table": "countries"}), "Germany"),
        (row(1, "out", ["id"], "lookup", {"table": "countries", "default": None}), None),
        (row(1, "out", ["qty", "price"], "arithmetic", {"op": "*"}), 17.5),
        (row(1, "out", ["qty"], "arithmetic", {"op": "/", "operand": 3, "places": 2}), 2.33),
        (
            row(
                1,
                "out",
                ["qty"],
                "arithmetic",
                {"op": "/", "operand": 3, "places": 2, "rounding": "up", "as": "string"},
            ),
            "2.34",
        ),
        (row(1, "out", ["price"], "arithmetic", {"op": "+", "operand": "0.1"}), 2.6),
        (
            row(
                1,
                "out",
                ["code", "first"],
                "conditional",
                {"cases": [{"equals": "B2B", "then_from": "first"}], "else": "?"},
            ),
            "Ada",
        ),
        (
            row(
                1,
                "out",
                ["code"],
                "conditional",
                {"cases": [{"in": ["B2C", "B2G"], "then": 1}], "else": 0},
            ),
            0,
        ),
        (
            row(
                1, "out", ["phone"], "conditional", {"cases": [{"matches": "^\\+49", "then": "DE"}]}
            ),
            "DE",
        ),
        (
            row(
                1, "out", ["middle"], "conditional", {"cases": [{"missing": True, "then": "none"}]}
            ),
            "none",
        ),
        (
            row(1, "out", ["qty"], "conditional", {"cases": [{"equals": 7, "then": "seven"}]}),
            "seven",
        ),
        (
            row(1, "out", [], "expression", {"expression": "upper(first) & ' ' & last"}),
            "ADA Lovelace",
        ),
        (row(1, "out", [], "expression", {"expression": "to_number(qty) * price"}), 17.5),
        (row(1, "out", [], "expression", {"expression": "customer.tags"}), ["a", "b"]),
    ],
)
def test_rule_kinds_make_their_values(rule, expected):
    output, problems = one(rule)
    assert problems == []
    assert output == {"out": expected}


@pytest.mark.parametrize(
    "rule",
    [
        row(1, "out", ["absent"], "upper"),
        row(1, "out", ["middle"], "cast", {"to": "integer"}),
        row(1, "out", ["middle"], "lookup", {"table": "countries"}),
        row(1, "out", ["phone"], "split", {"separator": " ", "index": 7}),
        row(1, "out", ["code"], "conditional", {"cases": [{"equals": "nope", "then": 1}]}),
        row(1, "out", [], "expression", {"expression": "absent"}),
        row(1, "out", ["qty", "absent"], "arithmetic", {"op": "+"}),
        row(1, "out", ["middle", "absent"], "concat"),
    ],
)
def test_missing_sources_leave_the_target_out(rule):
    assert one(rule) == ({}, [])


def test_a_required_target_without_a_value_is_a_problem():
    output, problems = one(row(3, "customer.number", ["customer.number"], "copy", required=True))
    assert output == {}
    assert problems == [
        "row 3, customer.number: required, but the source has no value at customer.number"
    ]


@pytest.mark.parametrize(
    "rule, message",
    [
        (row(4, "out", ["first"], "cast", {"to": "integer"}), "cannot cast 'Ada' to integer"),
        (
            row(4, "out", ["price"], "cast", {"to": "integer"}),
            "cannot cast 2.5 to integer: it is not a whole number",
        ),
        (row(4, "out", ["code"], "cast", {"to": "boolean"}), "cannot cast 'B2B' to boolean"),
        (row(4, "out", ["customer"], "cast", {"to": "string"}), "cannot cast an object to string"),
        (
            row(4, "out", ["created"], "date_format", {"from": "%Y-%m-%d", "to": "iso"}),
            "bad date: '28.11.2024 23:30' does not match the format '%Y-%m-%d'",
        ),
        (
            row(4, "out", ["first"], "date_format", {"to": "iso"}),
            "bad date: 'Ada' is not an ISO 8601 date",
        ),
        (
            row(4, "out", ["id"], "date_format", {"to": "iso"}),
            "bad date: expected a date as text, got int",
        ),
        (
            row(4, "out", ["country"], "lookup", {"table": "currencies"}),
            "'DE' is not in the lookup table 'currencies', and the rule has no default",
        ),
        (
            row(4, "out", ["code"], "code_map", {"map": {"B2C": 1}}),
            "'B2B' is not in the code map, and the rule has no default",
        ),
        (row(4, "out", ["qty", "zero"], "arithmetic", {"op": "/"}), "division by zero (7 / 0)"),
        (row(4, "out", ["first", "qty"], "arithmetic", {"op": "+"}), "'Ada' is not a number"),
        (
            row(4, "out", [], "expression", {"expression": "price / zero"}),
            "expression: division by zero (at character 7)",
        ),
        (row(4, "out", ["customer"], "upper"), "expected text, got an object"),
    ],
)
def test_runtime_problems_name_the_row_and_target(rule, message):
    output, problems = one(rule)
    assert output == {}
    assert problems == [f"row 4, out: {message}"]


def test_lookup_misses_without_tables_loaded():
    output, problems = transform(
        [row(2, "out", ["country"], "lookup", {"table": "countries"})], PAYLOAD
    )
    assert problems == [
        "row 2, out: 'DE' is not in the lookup table 'countries', and the rule has no default"
    ]


def test_one_failing_row_does_not_stop_the_others():
    output, problems = transform(
        [
            row(1, "a", ["first"], "cast", {"to": "integer"}),
            row(2, "b", ["last"], "upper"),
            row(3, "c", ["qty", "zero"], "arithmetic", {"op": "/"}),
        ],
        PAYLOAD,
    )
    assert output == {"b": "LOVELACE"}
    assert problems == [
        "row 1, a: cannot cast 'Ada' to integer",
        "row 3, c: division by zero (7 / 0)",
    ]


@pytest.mark.parametrize(
    "rule, message",
    [
        (
            row(2, "out", ["x"], "cast", {}),
            "the parameter 'to' is required (one of: string, integer, number, decimal, boolean, date)",
        ),
        (
            row(2, "out", ["x"], "cast", {"to": "money"}),
            "to must be one of: string, integer, number, decimal, boolean, date; not 'money'",
        ),
        (
            row(2, "out", ["x"], "cast", {"to": "integer", "places": 2}),
            "places is only for casts to decimal",
        ),
        (
            row(2, "out", ["x"], "date_format", {"to": "%Y-%m-%d", "from": "%d.%d.%Y"}),
            "from: the date format '%d.%d.%Y' cannot read back what it writes (a repeated directive?)",
        ),
        (
            row(2, "out", ["x"], "date_format", {"to": "dd.mm.yyyy"}),
            "to: the date format 'dd.mm.yyyy' has no directives such as %Y or %d; use \"iso\" for ISO 8601",
        ),
        (
            row(2, "out", ["x"], "date_format", {"to": "iso", "to_tz": "Mars/Olympus"}),
            "to_tz: unknown time zone 'Mars/Olympus'",
        ),
        (
            row(2, "out", ["x"], "date_format", {"to": "iso", "from_tz": "../../etc/passwd"}),
            "from_tz: unknown time zone '../../etc/passwd'",
        ),
        (
            row(2, "out", ["x"], "copy", {"value": 1}),
            "unknown parameter 'value' (this kind takes: none)",
        ),
        (row(2, "out", [], "constant", {}), "the parameter 'value' is required"),
        (row(2, "out", ["x"], "split", {"separator": ""}), "separator must be non-empty text"),
        (
            row(2, "out", ["x"], "pad", {"width": 5000}),
            "width must be a whole number from 1 to 1,000",
        ),
        (
            row(2, "out", ["x"], "pad", {"width": 5, "fill": "ab"}),
            "fill must be exactly one character",
        ),
        (
            row(2, "out", ["x"], "code_map", {"map": ["a"]}),
            "map must be an object of source codes to target values",
        ),
        (row(2, "out", ["x"], "lookup", {"table": "planets"}), "unknown lookup table 'planets'"),
        (row(2, "out", ["x"], "arithmetic", {"op": "^"}), "op must be one of: +, -, *, /; not '^'"),
        (
            row(2, "out", ["x"], "arithmetic", {"op": "+", "operand": "ten"}),
            "operand must be a number",
        ),
        (row(2, "out", ["x"], "conditional", {"cases": []}), "cases must be a non-empty list"),
        (
            row(2, "out", ["x"], "conditional", {"cases": [{"then": 1}]}),
            "case 1 needs exactly one of equals, in, matches or missing",
        ),
        (
            row(2, "out", ["x"], "conditional", {"cases": [{"matches": "(a+)+$", "then": 1}]}),
            "the regular expression '(a+)+$' repeats a repetition (like (a+)+), which can take exponential time; simplify it",
        ),
        (
            row(2, "out", ["x"], "conditional", {"cases": [{"matches": "([", "then": 1}]}),
            "the regular expression '([' is invalid: unterminated character set at position 1",
        ),
        (
            row(2, "out", ["x"], "conditional", {"cases": [{"equals": 1, "then_from": "y"}]}),
            "case 1: then_from must be one of the rule's source paths",
        ),
        (
            row(2, "out", [], "expression", {"expression": "upper("}),
            "expression: expected a value, found the end of the expression (at character 7)",
        ),
        (row(2, "out", ["x", "y"], "upper"), "upper takes exactly 1 source path, not 2"),
        (row(2, "out", ["x"], "constant", {"value": 1}), "constant takes no source path, not 1"),
    ],
)
def test_bad_params_are_compile_problems_naming_the_row(rule, message):
    assert compile_problems(rule, lookups=LOOKUPS) == [f"row 2, out: {message}"]
