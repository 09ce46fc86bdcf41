"""Compiling collects every problem of every row (never only the first), each naming its row."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.mappings import engine
from apps.mappings.rules import KINDS
from tests.mappings.conftest import compile_problems, compile_rows, row

SOURCE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "created": {"type": "string", "format": "date"},
        "flag": {"type": "boolean"},
        "customer": {"$ref": "#/$defs/Customer"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
        "extra": {"type": "object"},
        "meta": {"allOf": [{"properties": {"a": {"type": "string"}}}, {"required": ["a"]}]},
    },
    "$defs": {
        "Customer": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "tags": {"type": "array"}},
            "additionalProperties": False,
        }
    },
}
TARGET = {
    "type": "object",
    "properties": {
        "number": {"type": "integer"},
        "label": {"type": "string"},
        "active": {"type": "boolean"},
        "text": {"type": "string"},
        "count": {"type": "integer"},
        "gl": {"type": "string"},
        "note": {"type": "string"},
        "title": {"type": "string"},
        "total": {"type": "string"},
        "kind": {"type": "string"},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"code": {"type": "string"}}},
        },
    },
    "additionalProperties": False,
}


def test_every_problem_of_every_row_is_reported_with_its_row():
    problems = compile_problems(
        row(1, "number", ["id"]),
        row(2, "number", ["id"], "cast", {"to": "integer"}),
        row(3, "label", ["nmae"], "upper"),
        row(4, "items[*].code", ["lines[*].sku"]),
        row(5, "items[*].cod", ["lines[*].sku"]),
        row(6, "label2", ["id"], "copy"),
        row(7, "active", ["customer"], "cast", {"to": "boolean"}),
        row(8, "text", ["created"], "date_format", {"to": "%d/%m/%Q"}),
        row(9, "count", ["flag"], "cast", {"to": "date"}),
        row(10, "gl", ["name"], "lookup", {"table": "gl_accounts"}),
        row(11, "items[", ["id"]),
        row(12, "note", ["customer.name"]),
        row(13, "title", ["id"], "cast", {"to": "boolean"}),
        row(14, "total", [], "expression", {"expression": "customer.nickname & lines[0].qty"}),
        row(15, "kind", ["id"], "tranform"),
        source=SOURCE,
        target=TARGET,
        lookups={},
    )
    assert problems == [
        "row 2, number: row 1 writes this target path too; a target path takes one row",
        "row 3, label: the source path nmae is not in the source schema",
        "row 5, items[*].cod: the target path items[*].cod is not in the target schema",
        "row 6, label2: the target path label2 is not in the target schema",
        "row 7, active: impossible cast: the source is object in the source schema, which cannot become boolean",
        "row 8, text: to: the date format '%d/%m/%Q' uses %Q, which is not a date directive",
        "row 9, count: impossible cast: the source is boolean in the source schema, which cannot become date",
        "row 9, count: impossible cast: a cast to date writes string, but the target schema wants integer",
        "row 10, gl: unknown lookup table 'gl_accounts'",
        "row 11, items[: bad target path: at character 6: expected [*], [number] or [\"name\"] in 'items['",
        "row 12, note: the source path customer.name is not in the source schema",
        "row 13, title: impossible cast: a cast to boolean writes boolean, but the target schema wants string",
        "row 14, total: the expression field customer.nickname is not in the source schema",
        "row 15, kind: unknown rule kind 'tranform'; the kinds are copy, constant, default, cast, date_format, concat, split, substring, pad, trim, upper, lower, code_map, lookup, arithmetic, conditional, expression",
    ]


def test_free_form_parts_of_a_schema_take_any_path():
    compiled = compile_rows(
        row(1, "label", ["extra.anything.deep"], "copy"),
        row(2, "number", ["meta.a"], "cast", {"to": "integer"}),
        row(3, "items[*].code", ["lines[0].sku"]),
        source=SOURCE,
        target={
            "type": "object",
            "properties": {"label": {}, "number": {}, "items": {"type": "array"}},
        },
    )
    assert isinstance(compiled, engine.CompiledMapping)


def test_rows_writing_inside_each_other_are_refused():
    assert compile_problems(
        row(1, "customer", ["a"]),
        row(2, "customer.id", ["b"]),
        row(3, "items[0].code", ["c"]),
        row(4, "items[*]", ["lines[*]"]),
        row(5, "list[1]", ["d"]),
        row(6, "list[2]", ["e"]),
    ) == [
        "row 2, customer.id: row 1 writes customer as a whole; this row writes inside it",
        "row 4, items[*]: row 3 writes items[0].code inside this path; a row cannot write a value and another row inside it",
    ]


def test_paths_in_a_different_spelling_are_the_same_path():
    assert compile_problems(row(1, "a.b", ["x"]), row(2, '$.a["b"]', ["y"])) == [
        "row 2, a.b: row 1 writes this target path too; a target path takes one row"
    ]


def test_rows_run_in_position_order_whatever_order_they_come_in():
    compiled = compile_rows(
        row(2, "second", [], "constant", {"value": 2}),
        row(1, "first", [], "constant", {"value": 1}),
    )
    output, _ = compiled.transform({})
    assert list(output) == ["first", "second"]


def test_a_broken_target_schema_is_a_compile_problem():
    problems = compile_problems(
        row(1, "a", [], "constant", {"value": 1}),
        target={"type": "object", "properties": {"a": {"$ref": "https://example.com/remote.json"}}},
    )
    assert len(problems) == 1
    assert problems[0].startswith("the target schema cannot be used: ")


# --------------------------------------------------------------------------------------
# Fuzzing: any rows compile or give CompileError; compiled rows never raise on any payload
# --------------------------------------------------------------------------------------


JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "c", "lines"]), children, max_size=4),
    ),
    max_leaves=20,
)
PATHS = st.sampled_from(
    [
        "a",
        "b",
        "c",
        "a.b",
        "lines[*]",
        "lines[*].a",
        "lines[*].b[*]",
        "lines[0].c",
        "x[",
        "out[*]",
        "out[*].a",
        "@a",
        "",
    ]
)
PARAMS = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [
                "value",
                "to",
                "from",
                "format",
                "places",
                "separator",
                "index",
                "start",
                "length",
                "width",
                "fill",
                "side",
                "map",
                "default",
                "table",
                "op",
                "operand",
                "cases",
                "else",
                "expression",
                "chars",
            ]
        ),
        st.one_of(
            JSON,
            st.sampled_from(
                ["integer", "date", "iso", "%d.%m.%Y", "+", "/", "t", "a & b", "upper(a)", "1/0"]
            ),
            st.lists(st.fixed_dictionaries({"equals": JSON, "then": JSON}), max_size=2),
        ),
        max_size=4,
    ),
    JSON,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(["", "1", "2.5", "x", "28.11.2024", "2024-11-28", "B2B"]),
)
RECORDS = st.fixed_dictionaries({}, optional={"a": SCALARS | JSON, "b": SCALARS, "c": SCALARS})
PAYLOADS = st.one_of(
    JSON,
    st.builds(
        lambda record, lines: {**record, "lines": lines},
        RECORDS,
        st.one_of(st.lists(RECORDS, max_size=3), SCALARS, RECORDS),
    ),
)
ROWS = st.lists(
    st.builds(
        row,
        st.integers(min_value=0, max_value=5),
        PATHS.map(lambda p: p.replace("lines", "out") if p else p),
        st.lists(PATHS, max_size=3),
        st.sampled_from([*KINDS, "nope"]),
        PARAMS,
        st.booleans(),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda rule: rule.target_path,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS, PAYLOADS)
def test_random_rows_compile_or_are_refused_and_never_raise_on_payloads(rows, payload):
    try:
        compiled = compile_rows(*rows, lookups={"t": {"1": "one"}})
    except engine.CompileError as exc:
        assert exc.problems
        return
    output, problems = compiled.transform(payload)
    assert isinstance(output, dict)
    assert all(isinstance(problem, engine.Problem) for problem in problems)


VALID_KINDS = [
    ("copy", {}, 1),
    ("constant", {"value": [1, {"a": 2}]}, 0),
    ("default", {"value": "d"}, 1),
    ("cast", {"to": "integer"}, 1),
    ("cast", {"to": "number"}, 1),
    ("cast", {"to": "decimal", "places": 2}, 1),
    ("cast", {"to": "boolean"}, 1),
    ("cast", {"to": "date", "format": "%d.%m.%Y"}, 1),
    ("cast", {"to": "string"}, 1),
    (
        "date_format",
        {"from": "iso", "to": "%d/%m/%Y %H:%M", "from_tz": "Europe/Berlin", "to_tz": "UTC"},
        1,
    ),
    ("concat", {"separator": "-"}, 2),
    ("split", {"separator": ".", "index": 1}, 1),
    ("substring", {"start": 1, "length": 2}, 1),
    ("pad", {"width": 4, "fill": "0"}, 1),
    ("trim", {}, 1),
    ("upper", {}, 1),
    ("code_map", {"map": {"1": "one", "x": "ex"}}, 1),
    ("lookup", {"table": "t", "default": None}, 1),
    ("arithmetic", {"op": "/", "operand": "3", "places": 2}, 2),
    ("conditional", {"cases": [{"matches": "^[0-9]+$", "then": "digits"}], "else_from": "b"}, 2),
    ("expression", {"expression": "if a > 1 then to_number(b) * 2 else upper(c) & a"}, 1),
]
SOURCE_PATHS = ["a", "b", "c", "lines[*].a", "lines[*].b", "lines[0].c", "lines[*]"]


@st.composite
def valid_rows(draw):
    rows = []
    targets = draw(
        st.lists(
            st.sampled_from(
                ["t1", "t2", "o.t3", "o.t4", "items[*].t5", "items[*].t6", "items[*].o.t7"]
            ),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    for position, target in enumerate(targets, start=1):
        kind, params, count = draw(st.sampled_from(VALID_KINDS))
        if "[*]" in target:
            sources = ["lines[*].a", "b"][:count] if count else []
        else:
            sources = [draw(st.sampled_from(SOURCE_PATHS[:3])) for _ in range(count)]
        if kind == "conditional":
            sources = [sources[0], "b"]
        rows.append(row(position, target, sources, kind, params, draw(st.booleans())))
    return rows


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_rows(), PAYLOADS)
def test_valid_rows_transform_any_payload_without_raising(rows, payload):
    compiled = compile_rows(*rows, lookups={"t": {"1": "one"}})
    output, problems = compiled.transform(payload)
    assert isinstance(output, dict)
    for problem in problems:
        assert problem.row in range(1, 6) and problem.kind == "rule"
