"""Coverage of a mapping spec: required target fields without a row, source fields no row
reads, unknown source paths, type mismatches, uncovered enum values, rows no test exercises."""

import pytest

from apps.mappings.coverage import spec_coverage
from apps.mappings.models import FieldRule, LookupEntry, LookupTable, MappingSpec, MappingTest

pytestmark = pytest.mark.django_db

SOURCE = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "qty": {"type": "integer"},
        "status": {"type": "string", "enum": ["N", "P", "X"]},
        "placed": {"type": "string", "format": "date"},
        "customer": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "price": {"type": "number"},
                    "qty": {"type": "integer"},
                },
            },
        },
        "note": {"type": "string"},
    },
}
TARGET = {
    "type": "object",
    "required": ["id", "state", "header"],
    "properties": {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": ["new", "paid", "cancelled"]},
        "header": {
            "type": "object",
            "required": ["currency"],
            "properties": {"currency": {"type": "string"}, "text": {"type": "string"}},
        },
        "billing": {
            "type": "object",
            "required": ["city", "street"],
            "properties": {"city": {"type": "string"}, "street": {"type": "string"}},
        },
        "shipping": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string"}},
        },
        "ordered_on": {"type": "string", "format": "date"},
        "count": {"type": "integer"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "amount"],
                "properties": {
                    "code": {"type": "string"},
                    "amount": {"type": "number"},
                    "total": {"type": "string"},
                },
            },
        },
        "meta": {"type": "object"},
    },
}


def make_spec(interface, rows=(), tests=(), *, source=SOURCE, target=TARGET, **fields):
    """A spec saved as it is (rows are not checked: a spec may not compile)."""
    spec = MappingSpec.objects.create(
        interface=interface,
        name=fields.pop("name", "Orders"),
        source_schema=source,
        target_schema=target,
        **fields,
    )
    for position, (target_path, sources, kind, params) in enumerate(rows, start=1):
        FieldRule.objects.create(
            spec=spec,
            position=position,
            target_path=target_path,
            source_paths=list(sources),
            kind=kind,
            params=params,
        )
    for number, test in enumerate(tests, start=1):
        if isinstance(test, str):
            MappingTest.objects.create(spec=spec, name=f"test {number}", source_text=test)
        else:
            MappingTest.objects.create(spec=spec, name=f"test {number}", source_payload=test)
    return spec


def copy(target, source):
    return (target, [source], "copy", {})


def report_of(spec) -> dict:
    return spec_coverage(MappingSpec.objects.get(pk=spec.pk)).as_dict()


# --------------------------------------------------------------------------------------
# The whole report
# --------------------------------------------------------------------------------------


def test_the_report_of_a_small_spec_as_a_whole(interface_a):
    spec = make_spec(
        interface_a,
        [
            copy("id", "number"),
            ("state", ["status"], "code_map", {"map": {"N": "new", "P": "paid"}}),
            ("count", ["qty"], "cast", {"to": "string"}),
            copy("items[*].code", "lines[*].sku"),
        ],
        [{"number": "A1", "status": "N", "qty": 2}],
    )
    assert report_of(spec) == {
        "spec_id": spec.pk,
        "revision": 1,
        "compiles": False,
        "compile_problems": [
            {
                "kind": "compile",
                "row": 3,
                "target_path": "count",
                "message": "impossible cast: a cast to string writes string, "
                "but the target schema wants integer",
            }
        ],
        "notes": [
            "The spec does not compile, so its tests cannot run: which rows they exercise "
            "is not known."
        ],
        "summary": {
            "rows": 4,
            "tests": 1,
            "required_target_fields": 5,
            "covered_required_fields": 3,
            "source_fields": 10,
            "used_source_fields": 4,
            "rows_exercised": None,
            "required_covered_percent": 60.0,
            "source_used_percent": 40.0,
            "rows_exercised_percent": None,
        },
        "required_without_rule": [
            {"path": "header.currency", "type": "string"},
            {"path": "items[*].amount", "type": "number"},
        ],
        "unused_source_fields": [
            {"path": "placed", "type": "date"},
            {"path": "customer.id", "type": "string"},
            {"path": "customer.name", "type": "string"},
            {"path": "lines[*].price", "type": "number"},
            {"path": "lines[*].qty", "type": "integer"},
            {"path": "note", "type": "string"},
        ],
        "unknown_source_paths": [],
        "type_mismatches": [
            {
                "row": 3,
                "target_path": "count",
                "kind": "cast",
                "produces": "string",
                "expected": "integer",
                "message": "a cast to string writes string, but the target wants integer",
            }
        ],
        "uncovered_enum_values": [
            {
                "row": 2,
                "target_path": "state",
                "kind": "code_map",
                "side": "target",
                "path": "state",
                "values": ["cancelled"],
                "count": 1,
                "message": "1 target value that the code map never writes: 'cancelled'",
            },
            {
                "row": 2,
                "target_path": "state",
                "kind": "code_map",
                "side": "source",
                "path": "status",
                "values": ["X"],
                "count": 1,
                "message": "1 source value that the code map has no entry for and the row "
                "has no default (these fail at run time): 'X'",
            },
        ],
        "rows_not_exercised": [],
    }


# --------------------------------------------------------------------------------------
# Required target fields
# --------------------------------------------------------------------------------------


def test_required_fields_count_inside_objects_and_array_items_once_they_are_made(interface_a):
    spec = make_spec(
        interface_a,
        [
            copy("id", "number"),
            copy("billing.street", "customer.name"),
            copy("items[*].code", "lines[*].sku"),
        ],
    )
    report = report_of(spec)
    # shipping.city is required only in shipping, which no row makes.
    assert report["required_without_rule"] == [
        {"path": "state", "type": "string"},
        {"path": "header.currency", "type": "string"},
        {"path": "billing.city", "type": "string"},
        {"path": "items[*].amount", "type": "number"},
    ]
    summary = report["summary"]
    assert (summary["required_target_fields"], summary["covered_required_fields"]) == (7, 3)
    assert summary["required_covered_percent"] == 42.9


def test_a_row_writing_a_whole_ancestor_or_inside_a_field_covers_it(interface_a):
    target = {
        "type": "object",
        "required": ["header", "meta", "tags", "state"],
        "properties": {
            "header": {
                "type": "object",
                "required": ["currency"],
                "properties": {"currency": {"type": "string"}},
            },
            "meta": {"type": "object"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "state": {"type": "object"},
        },
    }
    spec = make_spec(
        interface_a,
        [copy("header", "customer"), copy("meta.note", "note")],
        target=target,
    )
    report = report_of(spec)
    # A required object or array without required fields of its own is listed itself.
    assert report["required_without_rule"] == [
        {"path": "tags", "type": "array"},
        {"path": "state", "type": "object"},
    ]
    assert report["summary"]["required_target_fields"] == 4


# --------------------------------------------------------------------------------------
# Source fields
# --------------------------------------------------------------------------------------


def test_source_fields_read_by_ancestors_and_expressions_are_used(interface_a):
    spec = make_spec(
        interface_a,
        [
            copy("header", "customer"),
            ("items[*].amount", ["lines[*].qty"], "expression", {"expression": "qty * price"}),
            ("header.text", [], "expression", {"expression": "source.note & nothing"}),
            copy("id", "order.number"),
        ],
    )
    report = report_of(spec)
    assert report["unused_source_fields"] == [
        {"path": "number", "type": "string"},
        {"path": "qty", "type": "integer"},
        {"path": "status", "type": "string"},
        {"path": "placed", "type": "date"},
        {"path": "lines[*].sku", "type": "string"},
    ]
    assert report["unknown_source_paths"] == [
        {
            "row": 3,
            "target_path": "header.text",
            "source_path": "nothing",
            "in_expression": True,
            "message": "the expression field nothing is not in the source schema",
        },
        {
            "row": 4,
            "target_path": "id",
            "source_path": "order.number",
            "in_expression": False,
            "message": "the source path order.number is not in the source schema",
        },
    ]
    assert (report["summary"]["source_fields"], report["summary"]["used_source_fields"]) == (10, 5)


def test_an_expression_reading_the_whole_payload_uses_every_field(interface_a):
    spec = make_spec(interface_a, [("meta", [], "expression", {"expression": "source"})])
    report = report_of(spec)
    assert report["unused_source_fields"] == []
    assert report["summary"]["source_used_percent"] == 100.0


# --------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, message",
    [
        (
            ("ordered_on", ["qty"], "cast", {"to": "integer"}),
            "a cast to integer writes integer, but the target wants a date (string)",
        ),
        (
            ("ordered_on", ["placed"], "cast", {"to": "decimal"}),
            "a cast to decimal writes a number as text, but the target wants a date (string)",
        ),
        (("ordered_on", ["number"], "cast", {"to": "string"}), None),
        (("ordered_on", ["placed"], "cast", {"to": "date"}), None),
        (
            ("id", [], "constant", {"value": 5}),
            "writes the constant 5, integer, but the target wants string",
        ),
        (
            ("id", [], "constant", {"value": None}),
            "writes the constant null, null, but the target wants string",
        ),
        (("ordered_on", [], "constant", {"value": "2024-01-31"}), None),
        (
            ("ordered_on", [], "constant", {"value": "soon"}),
            "writes the constant 'soon', text that is no date or time, but the target wants "
            "a date (string)",
        ),
        (
            ("state", [], "constant", {"value": "open"}),
            "writes the constant 'open', which is not one of the target's values "
            "('new', 'paid', 'cancelled')",
        ),
        (
            ("ordered_on", ["number"], "date_format", {"to": "%d.%m.%Y"}),
            "the date format '%d.%m.%Y' writes ('28.11.2024') text that is no date or time, "
            "but the target wants a date (string)",
        ),
        (
            ("ordered_on", ["number"], "date_format", {"to": "iso"}),
            "the date format 'iso' writes ('2024-11-28T13:45:30') a date-time (string), "
            "but the target wants a date (string)",
        ),
        (("ordered_on", ["number"], "date_format", {"to": "iso_date"}), None),
        (("ordered_on", ["number"], "date_format", {"to": "%Y-%m-%d"}), None),
        (
            ("count", ["placed"], "date_format", {"to": "iso_date"}),
            "the date format 'iso_date' writes ('2024-11-28') a date (string), "
            "but the target wants integer",
        ),
        (
            ("id", ["qty"], "copy", {}),
            "copies qty, integer in the source schema, but the target wants string",
        ),
        (
            ("count", ["number"], "copy", {}),
            "copies number, string in the source schema, but the target wants integer",
        ),
        (
            ("id", ["lines[*].sku"], "copy", {}),
            "copies lines[*].sku, which has more [*] than the target: it writes a list, "
            "but the target wants string",
        ),
        (("id", ["placed"], "copy", {}), None),
        (("ordered_on", ["number"], "copy", {}), None),
        (("count", ["lines[*].price"], "arithmetic", {"op": "+"}), None),
        (
            ("count", ["qty"], "arithmetic", {"op": "+", "as": "string"}),
            "arithmetic writes a number as text, but the target wants integer",
        ),
        (
            ("count", ["number"], "concat", {}),
            "concat writes string, but the target wants integer",
        ),
        (
            ("count", ["status"], "lookup", {"table": "states"}),
            "a lookup writes the table's values: string, but the target wants integer",
        ),
        (("count", ["number"], "expression", {"expression": "number"}), None),
        (
            ("state", ["status"], "code_map", {"map": {"N": "new", "P": 1}, "default": "old"}),
            [
                "maps 'P' to 1, integer, but the target wants string",
                "writes the default 'old', which is not one of the target's values "
                "('new', 'paid', 'cancelled')",
            ],
        ),
        (
            (
                "count",
                ["status", "qty"],
                "conditional",
                {"cases": [{"equals": "N", "then": 1}, {"equals": "P", "then_from": "qty"}]},
            ),
            None,
        ),
        (
            (
                "count",
                ["status", "number"],
                "conditional",
                {"cases": [{"equals": "N", "then": "one"}], "else_from": "number"},
            ),
            [
                "case 1 writes 'one', text that is no date or time, but the target wants integer",
                "else copies number, string in the source schema, but the target wants integer",
            ],
        ),
    ],
)
def test_type_mismatches_are_only_what_is_certainly_wrong(interface_a, rule, message):
    LookupTable.objects.create(name="states")
    report = report_of(make_spec(interface_a, [rule]))
    expected = [] if message is None else [message] if isinstance(message, str) else message
    assert [item["message"] for item in report["type_mismatches"]] == expected
    assert all(item["row"] == 1 for item in report["type_mismatches"])


def test_no_type_is_checked_against_a_target_field_without_one(interface_a):
    target = {"type": "object", "properties": {"any": {}, "meta": {"type": "object"}}}
    rows = [copy("any", "qty"), copy("meta", "qty")]
    report = report_of(make_spec(interface_a, rows, target=target))
    assert [item["message"] for item in report["type_mismatches"]] == [
        "copies qty, integer in the source schema, but the target wants object"
    ]


# --------------------------------------------------------------------------------------
# Enum values
# --------------------------------------------------------------------------------------


def test_a_default_covers_every_source_value_and_can_write_a_target_value(interface_a):
    rule = ("state", ["status"], "code_map", {"map": {"N": "new"}, "default": "cancelled"})
    report = report_of(make_spec(interface_a, [rule]))
    assert [(gap["side"], gap["values"]) for gap in report["uncovered_enum_values"]] == [
        ("target", ["paid"])
    ]


def test_lookup_rows_are_checked_against_the_table(interface_a):
    table = LookupTable.objects.create(name="states")
    for key, value in (("N", "new"), ("P", "paid"), ("X", "cancelled")):
        LookupEntry.objects.create(table=table, key=key, value=value)
    report = report_of(
        make_spec(interface_a, [("state", ["status"], "lookup", {"table": "states"})])
    )
    assert report["uncovered_enum_values"] == []

    LookupEntry.objects.filter(key="X").delete()
    report = report_of(MappingSpec.objects.get())
    assert [
        (gap["side"], gap["path"], gap["values"], gap["message"])
        for gap in report["uncovered_enum_values"]
    ] == [
        (
            "target",
            "state",
            ["cancelled"],
            "1 target value that the lookup table 'states' never writes: 'cancelled'",
        ),
        (
            "source",
            "status",
            ["X"],
            "1 source value that the lookup table 'states' has no entry for and the row "
            "has no default (these fail at run time): 'X'",
        ),
    ]


def test_numbers_in_source_enums_are_looked_up_as_text(interface_a):
    source = {"type": "object", "properties": {"code": {"enum": [1, 2]}}}
    target = {"type": "object", "properties": {"flag": {"enum": [True, False]}}}
    rule = ("flag", ["code"], "code_map", {"map": {"1": True, "2": 1}})
    report = report_of(make_spec(interface_a, [rule], source=source, target=target))
    assert [(gap["side"], gap["values"]) for gap in report["uncovered_enum_values"]] == [
        ("target", [False])
    ]


# --------------------------------------------------------------------------------------
# Tests exercising rows
# --------------------------------------------------------------------------------------


def test_a_row_is_exercised_when_a_test_makes_it_write_a_value(interface_a):
    spec = make_spec(
        interface_a,
        [
            copy("id", "number"),
            ("count", ["qty"], "cast", {"to": "integer"}),
            copy("items[*].code", "lines[*].sku"),
            copy("items[*].total", "note"),  # fills every item another row made
            ("state", [], "constant", {"value": "new"}),
            copy("header.text", "customer.name"),
        ],
        [
            {"number": "A1", "lines": [{"sku": "X"}]},
            {"number": "A2", "lines": [], "note": "n", "customer": {"name": None}},
        ],
    )
    report = report_of(spec)
    assert report["compiles"] is True
    # count: no test has qty; items[*].total: the test with a note has no lines.
    assert report["rows_not_exercised"] == [
        {"row": 2, "target_path": "count"},
        {"row": 4, "target_path": "items[*].total"},
    ]
    assert report["summary"]["rows_exercised"] == 4
    assert report["summary"]["rows_exercised_percent"] == 66.7


def test_without_tests_no_row_is_exercised(interface_a):
    report = report_of(make_spec(interface_a, [copy("id", "number")]))
    assert report["rows_not_exercised"] == [{"row": 1, "target_path": "id"}]
    assert report["summary"]["rows_exercised_percent"] == 0.0
    assert report["notes"] == ["The spec has no mapping tests."]


def test_csv_sources_are_read_as_the_tests_of_the_spec_are(interface_a):
    spec = make_spec(
        interface_a,
        [copy("id", "number"), copy("state", "status")],
        ["number,other\nA1,x\n", "not,a,record\n1\n"],
        source=None,
        target=None,
        source_format="csv",
    )
    report = report_of(spec)
    assert report["rows_not_exercised"] == [{"row": 2, "target_path": "state"}]
    assert report["notes"][:2] == [
        "The spec has no source schema; what depends on it is not checked.",
        "The spec has no target schema; what depends on it is not checked.",
    ]
    assert report["notes"][2].startswith("The source of the test 'test 2' cannot be read: ")


# --------------------------------------------------------------------------------------
# Specs that cannot be fully read
# --------------------------------------------------------------------------------------


def test_without_schemas_only_what_can_be_known_is_reported(interface_a):
    spec = make_spec(interface_a, [copy("id", "number")], [{"number": 1}], source=None, target=None)
    report = report_of(spec)
    assert report["compiles"] is True
    assert report["summary"] == {
        "rows": 1,
        "tests": 1,
        "required_target_fields": None,
        "covered_required_fields": None,
        "source_fields": None,
        "used_source_fields": None,
        "rows_exercised": 1,
        "required_covered_percent": None,
        "source_used_percent": None,
        "rows_exercised_percent": 100.0,
    }
    assert report["notes"] == [
        "The spec has no source schema; what depends on it is not checked.",
        "The spec has no target schema; what depends on it is not checked.",
    ]


def test_a_spec_that_does_not_compile_is_reported_not_raised(interface_a):
    spec = make_spec(
        interface_a,
        [("a[", ["number"], "copy", {}), ("id", ["number"], "bogus", {}), copy("id2", "qty")],
        [{"number": "A1"}],
        source=["not", "a", "schema"],
    )
    report = report_of(spec)
    assert report["compiles"] is False
    assert [(p["row"], p["message"]) for p in report["compile_problems"]] == [
        (None, "the source schema cannot be used: the source schema must be a JSON object"),
        (1, "bad target path: at character 2: expected [*], [number] or [\"name\"] in 'a['"),
        (
            2,
            "unknown rule kind 'bogus'; the kinds are copy, constant, default, cast, "
            "date_format, concat, split, substring, pad, trim, upper, lower, code_map, "
            "lookup, arithmetic, conditional, expression",
        ),
        (3, "the target path id2 is not in the target schema"),
    ]
    assert report["notes"][0] == (
        "The source schema cannot be read (the source schema must be a JSON object); "
        "what depends on it is not checked."
    )
    assert report["summary"]["rows_exercised"] is None
    assert report["summary"]["source_fields"] is None
    assert report["rows_not_exercised"] == []


# --------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------


def test_the_query_count_does_not_grow_with_rows_and_tests(interface_a, django_assert_num_queries):
    table = LookupTable.objects.create(name="states")
    LookupEntry.objects.create(table=table, key="N", value="new")
    small = make_spec(
        interface_a,
        [copy("id", "number"), ("state", ["status"], "lookup", {"table": "states"})],
        [{"number": "A1", "status": "N"}],
    )
    rows = [("state", ["status"], "lookup", {"table": "states", "default": "new"})]
    rows += [copy(f"meta.f{n}", "number") for n in range(30)]
    large = make_spec(
        interface_a, rows, [{"number": f"A{n}", "status": "N"} for n in range(10)], name="Big"
    )
    for spec in (small, large):
        loaded = MappingSpec.objects.get(pk=spec.pk)
        # the rows, the tests, the lookup tables, their entries
        with django_assert_num_queries(4):
            report = spec_coverage(loaded)
        assert report.compiles
