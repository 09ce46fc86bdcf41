"""XML and CSV to and from the engine's tree: round trips, the convention, and bad input."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.mappings import converters
from apps.mappings.converters import ConversionError
from tests.mappings.conftest import compile_rows, row

ORDER_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<Order xmlns="urn:example:shop" id="SO-1" channel="web">
  <!-- a comment -->
  <Customer><Name>Ada</Name><Email/></Customer>
  <Line no="1"><Sku>A1</Sku><Qty>2</Qty></Line>
  <Line no="2"><Sku>B2</Sku><Qty>1</Qty></Line>
  <Note lang="en">Leave at the door</Note>
</Order>"""

ORDER_TREE = {
    "Order": {
        "@id": "SO-1",
        "@channel": "web",
        "Customer": {"Name": "Ada", "Email": None},
        "Line": [
            {"@no": "1", "Sku": "A1", "Qty": "2"},
            {"@no": "2", "Sku": "B2", "Qty": "1"},
        ],
        "Note": {"@lang": "en", "#text": "Leave at the door"},
    }
}


def test_xml_becomes_a_tree_by_the_documented_convention():
    assert converters.xml_to_tree(ORDER_XML) == ORDER_TREE


def test_xml_round_trips_through_the_tree():
    text = converters.tree_to_xml(ORDER_TREE)
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Order id="SO-1" channel="web">'
    )
    assert converters.xml_to_tree(text) == ORDER_TREE


def test_writing_xml_turns_values_into_text():
    text = converters.tree_to_xml(
        {"Invoice": {"@paid": True, "Total": 12.5, "Count": 3, "Memo": None, "Tags": ["a", "b"]}}
    )
    assert text.endswith(
        '<Invoice paid="true"><Total>12.5</Total><Count>3</Count><Memo /><Tags>a</Tags><Tags>b</Tags></Invoice>'
    )


@pytest.mark.parametrize(
    "data, message",
    [
        (b"<a><b></a>", "the body is not well-formed XML (mismatched tag: line 1, column 8)"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
            "the XML uses a refused construct (EntitiesForbidden)",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            "the XML uses a refused construct (EntitiesForbidden)",
        ),
        (b"<a>" * 150 + b"x" + b"</a>" * 150, "the XML nests deeper than 100 levels"),
        (b"", "the body is not well-formed XML (no element found: line 1, column 0)"),
    ],
)
def test_bad_xml_is_refused_with_a_clear_message(data, message):
    with pytest.raises(ConversionError) as info:
        converters.xml_to_tree(data)
    assert str(info.value) == message


def test_xml_with_too_many_elements_is_refused(monkeypatch):
    monkeypatch.setattr(converters, "MAX_XML_ELEMENTS", 10)
    with pytest.raises(ConversionError, match="more than 10 elements"):
        converters.xml_to_tree(b"<a>" + b"<b/>" * 11 + b"</a>")


@pytest.mark.parametrize(
    "tree, message",
    [
        (
            {"a": 1, "b": 2},
            "an XML document needs exactly one root element; the tree has 2 top-level fields",
        ),
        ({"a": [1, 2]}, "the root element 'a' cannot repeat"),
        ({"a": {"bad name": 1}}, "a.bad name: 'bad name' is not a valid XML name"),
        ({"a": {"@x": {"y": 1}}}, "a.@x: an attribute must be a single value"),
        ({"a": {"b": [[1]]}}, "a.b[0]: an array inside an array cannot be XML"),
        ({"a": "bell\x07"}, "a: the text holds a control character XML cannot hold"),
    ],
)
def test_trees_xml_cannot_hold_are_refused(tree, message):
    with pytest.raises(ConversionError) as info:
        converters.tree_to_xml(tree)
    assert str(info.value) == message


def test_csv_records_round_trip():
    text = 'id,name,amount\r\n7,"Lovelace, Ada",12.50\r\n'
    record = converters.csv_to_record(text.encode())
    assert record == {"id": "7", "name": "Lovelace, Ada", "amount": "12.50"}
    assert converters.csv_to_record(converters.record_to_csv(record)) == record


def test_writing_csv_flattens_objects_with_dotted_names():
    assert converters.record_to_csv(
        {"id": 1, "customer": {"name": "Ada", "vip": True}, "note": None}
    ) == ("id,customer.name,customer.vip,note\r\n1,Ada,true,\r\n")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"id,name\n1,Ada,extra\n", "line 2: 3 cells, but the header has 2"),
        (b"id,id\n1,2\n", "the column 'id' appears twice (columns 1 and 2)"),
        (b"id,\n1,2\n", "column 2 of the header has no name"),
        (b"id,name\n", "the CSV has a header but no record"),
        (b"", "the CSV is empty; it needs a header row"),
        (
            b"id,name\n1,\xe9t\xe9\n",
            "the CSV is not UTF-8 text: byte 0xe9 on line 2 (save it as UTF-8)",
        ),
        (b'id,name\n1,"open\n', "line 2: unexpected end of data"),
        (b"id\n1\n2\n", "the CSV has more than 1 records"),
    ],
)
def test_bad_csv_is_refused_with_a_clear_message(data, message):
    with pytest.raises(ConversionError) as info:
        converters.csv_to_record(data)
    assert str(info.value) == message


def test_csv_size_is_bounded():
    with pytest.raises(ConversionError, match="larger than 10 MB"):
        converters.read_csv(b"a\n" + b"x\n" * (5 * 1024 * 1024 + 1))
    with pytest.raises(ConversionError, match="more than 3 records"):
        converters.read_csv(b"a\n1\n2\n3\n4\n", max_rows=3)


def test_xml_sources_and_targets_go_through_the_converters():
    compiled = compile_rows(
        row(1, "Invoice.@order", ["Order.@id"]),
        row(2, "Invoice.Buyer", ["Order.Customer.Name"], "upper"),
        row(3, "Invoice.Item[*].Code", ["Order.Line[*].Sku"]),
        row(4, "Invoice.Item[*].@qty", ["Order.Line[*].Qty"]),
        source_format="xml",
        target_format="xml",
    )
    result = compiled.run(ORDER_XML)
    assert result.problems == []
    assert result.output == {
        "Invoice": {
            "@order": "SO-1",
            "Buyer": "ADA",
            "Item": [{"Code": "A1", "@qty": "2"}, {"Code": "B2", "@qty": "1"}],
        }
    }
    assert result.rendered == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Invoice order="SO-1"><Buyer>ADA</Buyer><Item qty="2"><Code>A1</Code></Item>'
        '<Item qty="1"><Code>B2</Code></Item></Invoice>'
    )


def test_csv_records_go_through_the_converters():
    compiled = compile_rows(
        row(1, "id", ["order_id"], "cast", {"to": "integer"}),
        row(2, "customer.name", ["name"], "trim"),
        row(3, "customer.country", ["country"], "default", {"value": "DE"}),
        source_format="csv",
        target_format="csv",
    )
    result = compiled.run(b"order_id,name,country\n42, Ada ,\n")
    assert result.problems == []
    assert result.output == {"id": 42, "customer": {"name": "Ada", "country": "DE"}}
    assert result.rendered == "id,customer.name,customer.country\r\n42,Ada,DE\r\n"


def test_unreadable_sources_and_unrenderable_targets_are_problems_not_errors():
    compiled = compile_rows(
        row(1, "a", ["x"]), row(2, "b", ["y"]), source_format="xml", target_format="xml"
    )
    result = compiled.run(b"<x>")
    assert [str(p) for p in result.problems] == [
        "the body is not well-formed XML (no element found: line 1, column 3)"
    ]
    result = compile_rows(
        row(1, "a", ["r.x"]), row(2, "b", ["r.y"]), source_format="xml", target_format="xml"
    ).run(b"<r><x>1</x><y>2</y></r>")
    assert [p.as_dict() for p in result.problems] == [
        {
            "kind": "target",
            "row": None,
            "target_path": "",
            "message": "an XML document needs exactly one root element; the tree has 2 top-level fields",
        }
    ]


# --------------------------------------------------------------------------------------
# Round trips of random trees and records
# --------------------------------------------------------------------------------------


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=12,
)
NAMES = st.sampled_from(["a", "b", "Line", "x-y", "n.1", "_z"])


def _element(children):
    content = st.dictionaries(
        NAMES, st.one_of(children, st.lists(children, min_size=2, max_size=3)), max_size=3
    )
    attributes = st.dictionaries(NAMES.map(lambda name: "@" + name), TEXT, max_size=2)
    return st.builds(lambda c, a: {**a, **c} or None, content, attributes)


XML_VALUES = st.recursive(st.one_of(TEXT, st.none()), _element, max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(XML_VALUES)
def test_random_trees_round_trip_through_xml(value):
    tree = {"Root": value}
    assert converters.xml_to_tree(converters.tree_to_xml(tree)) == tree


CSV_RECORDS = st.dictionaries(
    st.text(
        alphabet=st.characters(whitelist_categories=("L", "N", "P", "S")), min_size=1, max_size=8
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=12,
    ),
    min_size=1,
    max_size=6,
).filter(lambda record: all("." not in key for key in record))


@settings(max_examples=200, deadline=None)
@given(CSV_RECORDS)
def test_random_records_round_trip_through_csv(record):
    assert converters.csv_to_record(converters.record_to_csv(record)) == record
