"""Arrays and nesting: line items become items, nested arrays line up, objects are created
on write, rows without [*] in their sources fill every element."""

from tests.mappings.conftest import compile_problems, row, transform

ORDER = {
    "number": "SO-1",
    "currency": "EUR",
    "lines": [
        {"sku": "a1", "qty": 2, "price": 1.5, "tags": ["x", "y"], "parts": [{"id": 1}, {"id": 2}]},
        {"sku": "b2", "qty": 1, "price": 10, "tags": [], "parts": []},
        {"sku": "c3", "qty": 4, "price": 0.25, "parts": [{"id": 3}]},
    ],
}


def test_line_items_become_items_of_the_same_length():
    output, problems = transform(
        [
            row(1, "order.id", ["number"]),
            row(2, "order.items[*].code", ["lines[*].sku"], "upper"),
            row(3, "order.items[*].quantity", ["lines[*].qty"]),
            row(
                4,
                "order.items[*].amount",
                ["lines[*].qty", "lines[*].price"],
                "arithmetic",
                {"op": "*", "places": 2},
            ),
        ],
        ORDER,
    )
    assert problems == []
    assert output == {
        "order": {
            "id": "SO-1",
            "items": [
                {"code": "A1", "quantity": 2, "amount": 3},
                {"code": "B2", "quantity": 1, "amount": 10},
                {"code": "C3", "quantity": 4, "amount": 1},
            ],
        }
    }


def test_nested_arrays_line_up_left_to_right():
    output, problems = transform(
        [
            row(1, "items[*].code", ["lines[*].sku"]),
            row(
                2, "items[*].components[*].ref", ["lines[*].parts[*].id"], "cast", {"to": "string"}
            ),
        ],
        ORDER,
    )
    assert problems == []
    assert output == {
        "items": [
            {"code": "a1", "components": [{"ref": "1"}, {"ref": "2"}]},
            {"code": "b2", "components": []},
            {"code": "c3", "components": [{"ref": "3"}]},
        ]
    }


def test_a_target_ending_in_a_wildcard_gets_the_values_themselves():
    output, problems = transform([row(1, "skus[*]", ["lines[*].sku"])], ORDER)
    assert (output, problems) == ({"skus": ["a1", "b2", "c3"]}, [])


def test_more_wildcards_in_the_source_give_lists():
    output, problems = transform(
        [
            row(1, "all_tags", ["lines[*].tags[*]"], "concat", {"separator": "|"}),
            row(2, "total_qty", ["lines[*].qty"], "arithmetic", {"op": "+"}),
            row(3, "items[*].tags", ["lines[*].tags[*]"]),
            row(4, "skus", ["lines[*].sku"]),
        ],
        ORDER,
    )
    assert problems == []
    assert output == {
        "all_tags": "x|y",
        "total_qty": 7,
        "items": [{"tags": ["x", "y"]}, {"tags": []}, {}],
        "skus": ["a1", "b2", "c3"],
    }


def test_rows_without_wildcard_sources_fill_every_element():
    output, problems = transform(
        [
            row(1, "items[*].code", ["lines[*].sku"]),
            row(2, "items[*].currency", ["currency"]),
            row(3, "items[*].source", [], "constant", {"value": "webshop"}),
        ],
        ORDER,
    )
    assert problems == []
    assert output["items"][0] == {"code": "a1", "currency": "EUR", "source": "webshop"}
    assert [item["currency"] for item in output["items"]] == ["EUR", "EUR", "EUR"]


def test_expressions_read_the_current_element_and_the_payload():
    output, problems = transform(
        [
            row(
                1,
                "items[*].label",
                ["lines[*]"],
                "expression",
                {"expression": "upper(sku) & ' x' & qty & ' ' & source.currency"},
            ),
            row(2, "count", [], "expression", {"expression": "count(lines[*].sku)"}),
        ],
        ORDER,
    )
    assert problems == []
    assert output == {
        "items": [{"label": "A1 x2 EUR"}, {"label": "B2 x1 EUR"}, {"label": "C3 x4 EUR"}],
        "count": 3,
    }


def test_problems_in_arrays_name_the_element():
    order = {"lines": [{"qty": "1"}, {"qty": "two"}, {"qty": None}]}
    output, problems = transform(
        [row(5, "items[*].quantity", ["lines[*].qty"], "cast", {"to": "integer"}, required=True)],
        order,
    )
    assert output == {"items": [{"quantity": 1}, {}, {}]}
    assert problems == [
        "row 5, items[1].quantity: cannot cast 'two' to integer",
        "row 5, items[2].quantity: required, but the source has no value at lines[2].qty",
    ]


def test_missing_arrays_make_no_target_array_and_empty_ones_an_empty_one():
    rows = [row(1, "items[*].code", ["lines[*].sku"])]
    assert transform(rows, {}) == ({}, [])
    assert transform(rows, {"lines": []}) == ({"items": []}, [])


def test_a_single_object_where_an_array_was_expected_is_an_array_of_one():
    # XML: <Lines><Line>…</Line></Lines> with one Line has no list.
    output, _ = transform(
        [row(1, "items[*].code", ["Lines.Line[*].Sku"])], {"Lines": {"Line": {"Sku": "a"}}}
    )
    assert output == {"items": [{"code": "a"}]}


def test_nested_objects_are_created_on_write_in_row_order():
    output, problems = transform(
        [
            row(1, "header.party.name", ["number"]),
            row(2, "header.date", [], "constant", {"value": "2024-11-28"}),
            row(3, "header.party.address.lines[0]", ["currency"]),
            row(4, "header.party.address.lines[1]", [], "constant", {"value": "x"}),
        ],
        ORDER,
    )
    assert problems == []
    assert output == {
        "header": {
            "party": {"name": "SO-1", "address": {"lines": ["EUR", "x"]}},
            "date": "2024-11-28",
        }
    }
    assert list(output["header"]) == ["party", "date"]


def test_source_arrays_that_do_not_line_up_are_compile_problems():
    assert compile_problems(
        row(3, "items[*].code", ["lines[*].sku", "other[*].code"], "concat"),
        row(4, "items[*].parts[*].id", ["lines[*].id"]),
        row(5, "skus[*]", [], "constant", {"value": 1}),
    ) == [
        "row 3, items[*].code: the source paths lines[*].sku and other[*].code walk different arrays; a row walks one array (other sources need no [*])",
        "row 4, items[*].parts[*].id: the source path lines[*].id has 1 [*] and the target 2; a source path needs at least as many [*] as the target, or none",
        "row 5, skus[*]: a row writing the elements of skus[*] themselves needs a source path with [*] to walk",
    ]


def test_elements_take_nested_reads_and_nested_writes():
    order = {
        "lines": [
            {"product": {"id": "p1", "name": "Pen"}, "price": {"net": "1.5", "currency": "EUR"}},
            {"product": {"id": "p2"}, "price": {"net": "x"}},
        ]
    }
    output, problems = transform(
        [
            row(1, "items[*].product", ["lines[*].product.id"], "upper"),
            row(2, "items[*].amount.value", ["lines[*].price.net"], "cast", {"to": "number"}),
            row(3, "items[*].amount.currency", ["lines[*].price.currency"], required=True),
            row(4, "items[*].name", ["lines[*].product.name"], "default", {"value": "?"}),
        ],
        order,
    )
    assert output == {
        "items": [
            {"product": "P1", "amount": {"value": 1.5, "currency": "EUR"}, "name": "Pen"},
            {"product": "P2", "name": "?"},
        ]
    }
    assert problems == [
        "row 2, items[1].amount.value: cannot cast 'x' to number",
        "row 3, items[1].amount.currency: required, but the source has no value at lines[1].price.currency",
    ]


def test_a_row_filling_every_element_reports_its_problem_once():
    output, problems = transform(
        [
            row(1, "items[*].code", ["lines[*].sku"]),
            row(2, "items[*].currency", ["currency"], "lookup", {"table": "iso"}),
            row(3, "items[*].region", ["region"], required=True),
            row(4, "items[*].tags", [], "constant", {"value": ["new"]}),
        ],
        ORDER,
        lookups={"iso": {}},
    )
    assert problems == [
        "row 2, items[*].currency: 'EUR' is not in the lookup table 'iso', and the rule has no default",
        "row 3, items[*].region: required, but the rule made no value",
    ]
    assert [item["tags"] for item in output["items"]] == [["new"], ["new"], ["new"]]
    assert output["items"][0]["tags"] is not output["items"][1]["tags"]
