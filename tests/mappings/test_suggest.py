"""Suggested field pairs: schemas flattened into fields, names compared across case styles
and synonyms, types ranked by how well a rule converts them, hostile schemas bounded."""

import random
import time

import pytest

from apps.mappings import schemas
from apps.mappings.suggest import (
    MAX_DEPTH,
    MAX_FIELDS,
    read_name,
    schema_fields,
    split_words,
    suggest,
)


def obj(**properties) -> dict:
    return {"type": "object", "properties": properties}


def array_of(schema: dict) -> dict:
    return {"type": "array", "items": schema}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}


def fields(schema) -> list[tuple[str, str, bool]]:
    return [(item.path, item.type, item.required) for item in schema_fields(schema)]


def best(suggestions, target_path: str) -> str | None:
    """The source path suggested as the best choice for a target."""
    chosen = [s.source_path for s in suggestions if s.target_path == target_path and s.best]
    return chosen[0] if chosen else None


def for_target(suggestions, target_path: str) -> list[str]:
    return [s.source_path for s in suggestions if s.target_path == target_path]


def only(suggestions, target_path: str, source_path: str):
    (found,) = [
        s for s in suggestions if s.target_path == target_path and s.source_path == source_path
    ]
    return found


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, words",
    [
        ("cust_id", ["cust", "id"]),
        ("customerId", ["customer", "id"]),
        ("CustomerID", ["customer", "id"]),
        ("customer-id", ["customer", "id"]),
        ("customer.id", ["customer", "id"]),
        ("HTTPServerURL2", ["http", "server", "url", "2"]),
        ("address_line2", ["address", "line", "2"]),
        ("Straße", ["straße"]),
    ],
)
def test_names_split_into_words_in_every_case_style(name, words):
    assert split_words(name) == words


@pytest.mark.parametrize(
    "name, meaning",
    [
        ("cust_no", ("customer", "number")),
        ("clientNumber", ("customer", "number")),
        ("e-mail", ("email",)),
        ("EmailAddress", ("email",)),
        ("DateOfBirth", ("birthdate",)),
        ("dob", ("birthdate",)),
        ("ZIP", ("postcode",)),
        ("postal_code", ("postcode",)),
        ("tel_no", ("phone",)),
        ("created_at", ("created",)),
        ("CreationDate", ("created",)),
        ("item_code", ("sku",)),
        ("lines", ("line",)),
        ("addresses", ("address",)),
        ("status", ("status",)),
    ],
)
def test_abbreviations_synonyms_and_plurals_are_read_as_the_usual_words(name, meaning):
    assert read_name(name).words == meaning


def test_case_styles_match_cust_id_ranks_first_for_customer_id():
    source = obj(custom=STRING, customer_name=STRING, cust_id=STRING, id=STRING)
    target = obj(customerId=STRING)
    suggestions = suggest(source, target)
    assert for_target(suggestions, "customerId") == ["cust_id", "id", "customer_name"]
    first = suggestions[0]
    assert (first.best, first.score, first.name_score, first.type_score) == (True, 1.0, 1.0, 1.0)
    assert first.reason == "names match after expanding 'cust' to 'customer'; both are string"


def test_synonyms_qty_is_suggested_for_quantity():
    source = obj(qty=NUMBER, quality=NUMBER, price=NUMBER)
    target = obj(quantity=NUMBER)
    suggestions = suggest(source, target)
    assert for_target(suggestions, "quantity")[0] == "qty"
    assert (
        suggestions[0].reason == "names match after expanding 'qty' to 'quantity'; both are number"
    )


def test_unlisted_abbreviations_and_related_words_score_lower_with_a_reason():
    source = obj(qnty=INTEGER, descr=STRING, account=STRING)
    target = obj(quantity=INTEGER, description=STRING, customer=STRING)
    suggestions = suggest(source, target)
    assert [(s.target_path, s.source_path, s.reason) for s in suggestions] == [
        (
            "quantity",
            "qnty",
            "names are similar ('qnty' may be short for 'quantity'); both are integer",
        ),
        (
            "description",
            "descr",
            "names match after expanding 'descr' to 'description'; both are string",
        ),
        (
            "customer",
            "account",
            "names are similar ('account' is related to 'customer'); both are string",
        ),
    ]
    assert [s.name_score for s in suggestions] == [0.66, 1.0, 0.575]


def test_a_whole_path_can_match_a_flat_name():
    source = obj(customer=obj(id=STRING, name=STRING), order=obj(id=STRING))
    target = obj(customerId=STRING)
    suggestions = suggest(source, target)
    assert for_target(suggestions, "customerId")[0] == "customer.id"
    assert suggestions[0].reason == "the path customer.id reads as customerId; both are string"


def test_names_that_share_nothing_are_not_suggested():
    assert suggest(obj(colour=STRING, weight=NUMBER), obj(invoiceDate=STRING)) == []


# --------------------------------------------------------------------------------------
# Arrays and types
# --------------------------------------------------------------------------------------


def test_array_fields_prefer_array_fields_and_related_parents():
    source = obj(sku=STRING, lines=array_of(obj(sku=STRING, qty=INTEGER)))
    target = obj(items=array_of(obj(sku=STRING, quantity=INTEGER)))
    suggestions = suggest(source, target)
    assert best(suggestions, "items[*].sku") == "lines[*].sku"
    assert best(suggestions, "items[*].quantity") == "lines[*].qty"
    assert for_target(suggestions, "items[*].sku") == ["lines[*].sku", "sku"]
    flat = only(suggestions, "items[*].sku", "sku")
    assert flat.reason == (
        "same name; the target is inside an array and the source is not; both are string"
    )
    assert only(suggestions, "items[*].sku", "lines[*].sku").reason == (
        "same name; their parents are related; both are string"
    )


def test_an_integer_id_prefers_an_integer_target_over_a_string_one_with_the_same_name():
    source = obj(id=INTEGER)
    target = obj(order=obj(id=STRING), customer=obj(id=INTEGER))
    suggestions = suggest(source, target)
    to_string = only(suggestions, "order.id", "id")
    to_integer = only(suggestions, "customer.id", "id")
    assert to_string.name_score == to_integer.name_score
    assert to_integer.score > to_string.score
    assert (to_integer.best, to_string.best) == (True, False)
    assert (to_string.rule_kind, to_string.rule_params) == ("cast", {"to": "string"})
    assert to_string.reason == "same name; integer → string needs a cast"


def test_a_target_prefers_the_source_of_its_own_type():
    source = obj(a=obj(id=STRING), b=obj(id=INTEGER))
    suggestions = suggest(source, obj(id=INTEGER))
    assert for_target(suggestions, "id") == ["b.id", "a.id"]


@pytest.mark.parametrize(
    "source_type, target_type, kind, params, note",
    [
        (INTEGER, NUMBER, "copy", {}, "an integer fits a number"),
        (
            NUMBER,
            INTEGER,
            "cast",
            {"to": "integer"},
            "number → integer needs a cast that fails on decimals",
        ),
        ({"type": "boolean"}, STRING, "cast", {"to": "string"}, "boolean → string needs a cast"),
        (
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
            "date_format",
            {"from": "iso", "to": "iso_date"},
            "date-time → date drops the time of day",
        ),
        (
            STRING,
            {"type": "string", "format": "date"},
            "date_format",
            {"from": "iso", "to": "iso_date"},
            "string → date needs a date rule; check the source format",
        ),
        ({"type": "string", "format": "date"}, STRING, "copy", {}, "a date is already text"),
    ],
)
def test_type_conversions_propose_the_rule_that_makes_them(
    source_type, target_type, kind, params, note
):
    (suggestion,) = suggest(obj(value=source_type), obj(value=target_type))
    assert (suggestion.rule_kind, suggestion.rule_params) == (kind, params)
    assert suggestion.reason == f"same name; {note}"


def test_type_scores_rank_same_over_widening_over_cast_over_date_rule():
    target = obj(value={"type": "string", "format": "date-time"})
    scores = {}
    for name, schema in [
        ("same", {"type": "string", "format": "date-time"}),
        ("text", STRING),
        ("date", {"type": "string", "format": "date"}),
    ]:
        (suggestion,) = suggest(obj(value=schema), target)
        scores[name] = suggestion.type_score
    assert scores == {"same": 1.0, "date": 0.6, "text": 0.5}


def test_incompatible_types_are_never_suggested():
    source = obj(total=obj(net=NUMBER), when={"type": "string", "format": "date"})
    target = obj(total=NUMBER, when=INTEGER)
    assert [(s.target_path, s.source_path) for s in suggest(source, target)] == [
        ("total", "total.net")
    ]


def test_codes_that_differ_propose_a_code_map_naming_the_missing_ones():
    source = obj(status={"enum": ["open", "closed", "void"]})
    target = obj(state={"type": "string", "enum": ["OPEN", "CLOSED"]})
    (suggestion,) = suggest(source, target)
    assert suggestion.rule_kind == "code_map"
    assert suggestion.rule_params == {"map": {"open": "OPEN", "closed": "CLOSED"}}
    assert suggestion.reason == (
        "names are similar ('status' is related to 'state'); both are string; "
        "the codes differ: a code map must say what to write for 'void'"
    )


# --------------------------------------------------------------------------------------
# Choosing: existing rows, one-to-one, limits, order
# --------------------------------------------------------------------------------------


def test_targets_already_mapped_are_skipped():
    source = obj(cust_id=STRING, lines=array_of(obj(sku=STRING)))
    target = obj(customerId=STRING, customer_id=STRING, items=array_of(obj(sku=STRING)))
    suggestions = suggest(source, target, existing_target_paths=["customerId", "$.items[0].sku"])
    assert {s.target_path for s in suggestions} == {"customer_id"}


def test_one_source_is_the_best_choice_of_one_target_only():
    source = obj(customer_name=STRING)
    target = obj(customerName=STRING, name=STRING)
    suggestions = suggest(source, target)
    assert [(s.target_path, s.best) for s in suggestions] == [
        ("customerName", True),
        ("name", False),
    ]
    every_best = suggest(source, target, one_to_one=False)
    assert [(s.target_path, s.best) for s in every_best] == [
        ("customerName", True),
        ("name", True),
    ]


def test_the_greedy_assignment_gives_a_taken_target_its_next_source():
    source = obj(order_no=STRING, order_number=STRING)
    target = obj(orderNumber=STRING, order_nr=STRING)
    suggestions = suggest(source, target)
    assert {s.target_path: s.source_path for s in suggestions if s.best} == {
        "orderNumber": "order_number",
        "order_nr": "order_no",
    }


def test_suggestions_per_target_are_limited_and_in_target_schema_order():
    source = obj(**{f"amount_{i}": NUMBER for i in range(10)})
    target = obj(amount_3=NUMBER, total=NUMBER, amount=NUMBER)
    suggestions = suggest(source, target, limit_per_target=2)
    assert [s.target_path for s in suggestions] == ["amount_3", "amount_3", "amount", "amount"]
    assert best(suggestions, "amount_3") == "amount_3"


def test_the_same_schemas_give_the_same_suggestions():
    source = obj(**{f"field_{i}": INTEGER for i in range(40)})
    target = obj(**{f"field{i}": INTEGER for i in range(40, 0, -1)})
    first = suggest(source, target)
    assert first == suggest(source, target)
    assert {s.target_path: s.source_path for s in first if s.best}["field7"] == "field_7"


# --------------------------------------------------------------------------------------
# Reading schemas
# --------------------------------------------------------------------------------------

ORDER_SCHEMA = {
    "$defs": {
        "Party": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": INTEGER, "name": {"type": ["string", "null"]}},
        },
        "Line": {
            "allOf": [
                {"type": "object", "required": ["sku"], "properties": {"sku": STRING}},
                {"properties": {"qty": NUMBER, "unit": {"enum": ["PCE", "KG"]}}},
            ]
        },
    },
    "type": "object",
    "required": ["customer", "lines"],
    "properties": {
        "customer": {"$ref": "#/$defs/Party"},
        "supplier": {"allOf": [{"$ref": "#/$defs/Party"}], "nullable": True},
        "ordered": {"type": "string", "format": "date-time"},
        "delivery": {"oneOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "lines": array_of({"$ref": "#/$defs/Line"}),
        "tags": array_of(STRING),
        "extra": {"type": "object", "additionalProperties": STRING},
        "anything": {},
        "never": False,
    },
}


def test_a_schema_flattens_into_leaf_fields_with_types_and_required_flags():
    assert fields(ORDER_SCHEMA) == [
        ("customer.id", "integer", True),
        ("customer.name", "string", False),
        ("supplier.id", "integer", True),
        ("supplier.name", "string", False),
        ("ordered", "date-time", False),
        ("delivery", "date", False),
        ("lines[*].sku", "string", True),
        ("lines[*].qty", "number", False),
        ("lines[*].unit", "string", False),
        ("tags[*]", "string", False),
        ("extra", "object", False),
        ("anything", "any", False),
    ]
    by_path = {item.path: item for item in schema_fields(ORDER_SCHEMA)}
    assert by_path["customer.name"].nullable and by_path["delivery"].nullable
    assert by_path["lines[*].unit"].enum == ("PCE", "KG")


def test_any_of_branches_contribute_their_properties_and_their_types():
    schema = {
        "type": "object",
        "properties": {
            "payment": {
                "oneOf": [
                    obj(iban=STRING, amount=NUMBER),
                    obj(card_no=STRING, amount=INTEGER),
                ]
            },
            "code": {"anyOf": [STRING, INTEGER]},
            "odd key": {"allOf": [STRING, INTEGER]},  # no value fits: left out
        },
    }
    assert fields(schema) == [
        ("payment.iban", "string", False),
        ("payment.amount", "number", False),
        ("payment.card_no", "string", False),
        ("code", "integer or string", False),
    ]


def test_a_side_schema_resolves_refs_in_its_whole_document():
    document = {
        "openapi": "3.0.3",
        "components": {
            "schemas": {
                "Order": obj(number=STRING, customer={"$ref": "#/components/schemas/Customer"}),
                "Customer": {**obj(id=INTEGER), "required": ["id"]},
            }
        },
    }
    side = schemas.SideSchema(
        document, {"$ref": "#/components/schemas/Order"}, "3.0.3", "the source schema"
    )
    assert fields(side) == [("number", "string", False), ("customer.id", "integer", True)]
    (suggestion,) = suggest(side, obj(customerId=INTEGER))
    assert suggestion.source_path == "customer.id"


def test_a_recursive_schema_stops_where_it_repeats_itself():
    schema = {
        "$ref": "#/$defs/Category",
        "$defs": {
            "Category": obj(
                name=STRING,
                parent={"$ref": "#/$defs/Category"},
                children=array_of({"$ref": "#/$defs/Category"}),
                owner={"$ref": "#/$defs/Person"},
            ),
            "Person": obj(name=STRING, manager={"$ref": "#/$defs/Person"}),
        },
    }
    assert fields(schema) == [
        ("name", "string", False),
        ("parent", "object", False),
        ("children[*]", "object", False),
        ("owner.name", "string", False),
        ("owner.manager", "object", False),
    ]
    assert fields({"properties": {"self": {"$ref": "#"}, "id": STRING}}) == [
        ("self", "object", False),
        ("id", "string", False),
    ]


def test_a_base_schema_shared_by_an_object_and_its_child_is_not_a_recursion():
    schema = {
        "$defs": {
            "Base": obj(id=INTEGER),
            "Customer": {"allOf": [{"$ref": "#/$defs/Base"}, obj(name=STRING)]},
        },
        "allOf": [
            {"$ref": "#/$defs/Base"},
            obj(customer={"$ref": "#/$defs/Customer"}),
        ],
    }
    assert fields(schema) == [
        ("id", "integer", False),
        ("customer.id", "integer", False),
        ("customer.name", "string", False),
    ]


def test_a_ref_chain_that_loops_or_leaves_the_document_reads_as_any_value():
    schema = {
        "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}},
        "properties": {
            "loop": {"$ref": "#/$defs/A"},
            "remote": {"$ref": "https://example.com/schema.json"},
            "file": {"$ref": "file:///etc/passwd"},
            "dangling": {"$ref": "#/$defs/Nothing"},
        },
    }
    assert fields(schema) == [
        ("loop", "any", False),
        ("remote", "any", False),
        ("file", "any", False),
        ("dangling", "any", False),
    ]


def test_a_very_deep_schema_is_cut_at_the_depth_bound():
    schema = obj(leaf=STRING)
    for _ in range(5_000):
        schema = obj(level=schema)
    (deepest,) = schema_fields(schema)
    assert deepest.path == ".".join(["level"] * MAX_DEPTH)
    assert deepest.type == "object"


def test_thousands_of_properties_are_cut_at_the_field_bound():
    schema = obj(**{f"field_{i}": STRING for i in range(50_000)})
    started = time.perf_counter()
    found = schema_fields(schema)
    assert time.perf_counter() - started < 2
    assert len(found) == MAX_FIELDS
    assert found[-1].path == f"field_{MAX_FIELDS - 1}"


def test_a_billion_laughs_of_refs_is_bounded():
    # Ten properties per level, each the whole level below: 10^9 paths.
    defs = {"L0": obj(**dict.fromkeys("abcdefghij", STRING))}
    for level in range(1, 10):
        ref = {"$ref": f"#/$defs/L{level - 1}"}
        defs[f"L{level}"] = {
            "allOf": [{"$ref": "#/$defs/L0"}, {"$ref": "#/$defs/L0"}],
            "anyOf": [{"$ref": "#/$defs/L0"}, {"$ref": "#/$defs/L0"}],
            "properties": {f"{name}{level}": ref for name in "abcdefghij"},
        }
    schema = {"$defs": defs, "$ref": "#/$defs/L9"}
    started = time.perf_counter()
    found = schema_fields(schema)
    assert time.perf_counter() - started < 2
    assert len(found) == MAX_FIELDS
    assert found[0].path == "a9.a8.a7.a6.a5.a4.a3.a2.a1.a"


def test_a_ladder_of_any_of_branches_is_read_once_per_rung():
    defs = {"D0": obj(x=STRING)}
    for level in range(1, 15):
        ref = {"$ref": f"#/$defs/D{level - 1}"}
        defs[f"D{level}"] = {"anyOf": [ref, {"allOf": [ref]}], "oneOf": [ref, ref, ref]}
    started = time.perf_counter()
    assert fields({"$defs": defs, "properties": {"deep": {"$ref": "#/$defs/D14"}}}) == [
        ("deep.x", "string", False)
    ]
    assert time.perf_counter() - started < 2


def test_huge_names_are_compared_quickly():
    source = obj(**{"a_" * 50_000: STRING, "x" * 100_000: STRING, "id": STRING})
    target = obj(**{"b_a_" * 25_000: STRING, "x" * 99_999: STRING, "ID": STRING})
    started = time.perf_counter()
    suggestions = suggest(source, target)
    assert time.perf_counter() - started < 2
    assert best(suggestions, "ID") == "id"


def test_junk_in_a_schema_is_read_without_an_error():
    assert schema_fields([1, 2]) == []
    assert schema_fields(STRING) == []
    schema = {"properties": {"a": 5, "b": [1], "c": True, "d": False, "e": {"type": 7}}}
    assert fields(schema) == [
        ("a", "any", False),
        ("b", "any", False),
        ("c", "any", False),
        ("e", "any", False),
    ]


# --------------------------------------------------------------------------------------
# Size
# --------------------------------------------------------------------------------------

WORDS = [
    "customer", "order", "line", "item", "sku", "quantity", "amount", "price", "date",
    "created", "id", "code", "name", "status", "address", "city", "country", "email",
    "phone", "number", "tax", "total", "currency", "description", "note", "type",
]  # fmt: skip


def generated_schema(size: int, seed: int, camel: bool) -> dict:
    rnd = random.Random(seed)
    properties = {}
    while len(properties) < size:
        words = [*rnd.sample(WORDS, rnd.randint(1, 3)), str(len(properties))]
        name = words[0] + "".join(w.title() for w in words[1:]) if camel else "_".join(words)
        properties[name] = {"type": rnd.choice(["string", "integer", "number", "boolean"])}
    return {"type": "object", "properties": properties}


def test_500_by_500_fields_finish_quickly():
    source, target = generated_schema(500, 1, camel=False), generated_schema(500, 2, camel=True)
    started = time.perf_counter()
    suggestions = suggest(source, target)
    assert time.perf_counter() - started < 2  # a sanity bound, not a benchmark
    assert len({s.target_path for s in suggestions}) > 400


def test_500_fields_that_all_share_a_word_pair_by_their_numbers_quickly():
    source = obj(**{f"column_{i}": STRING for i in range(500)})
    target = obj(**{f"col{i}": STRING for i in range(500)})
    started = time.perf_counter()
    suggestions = suggest(source, target)
    assert time.perf_counter() - started < 2  # a sanity bound, not a benchmark
    pairs = {s.target_path: s.source_path for s in suggestions if s.best}
    assert pairs == {f"col{i}": f"column_{i}" for i in range(500)}
    assert only(suggestions, "col7", "column_7").reason == (
        "names are similar (both have '7'; 'col' may be short for 'column'); both are string"
    )
