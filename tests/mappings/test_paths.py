"""The path syntax of mapping rows."""

import pytest

from apps.mappings.paths import (
    MISSING,
    WILDCARD,
    PathError,
    format_path,
    make_getter,
    make_setter,
    overlaps,
    parse_path,
)


@pytest.mark.parametrize(
    "text, steps, canonical",
    [
        ("customer.id", ("customer", "id"), "customer.id"),
        ("$.lines[*].sku", ("lines", WILDCARD, "sku"), "lines[*].sku"),
        ("lines[0].qty", ("lines", 0, "qty"), "lines[0].qty"),
        ("lines[-1]", ("lines", -1), "lines[-1]"),
        ('order["first name"]', ("order", "first name"), 'order["first name"]'),
        ("Order.@id", ("Order", "@id"), "Order.@id"),
        ("Note.#text", ("Note", "#text"), "Note.#text"),
        ("$['a.b']", ("a.b",), '["a.b"]'),
        ("ns:Tag.x-y", ("ns:Tag", "x-y"), "ns:Tag.x-y"),
    ],
)
def test_paths_parse_and_print_canonically(text, steps, canonical):
    assert parse_path(text) == steps
    assert format_path(steps) == canonical
    assert parse_path(canonical) == steps


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the path is empty"),
        ("$", "the path names the whole document; name a field"),
        ("a..b", "at character 3: '.' cannot start a name in 'a..b'"),
        ("a.", "the path 'a.' ends with a dot"),
        ("a[x]", "at character 2: expected [*], [number] or [\"name\"] in 'a[x]'"),
        ("a b", "at character 2: unexpected ' ' in 'a b'"),
        ("a" + ".a" * 40, "the path has more than 32 steps"),
        (42, "a path must be text"),
    ],
)
def test_bad_paths_say_where(text, message):
    with pytest.raises(PathError) as info:
        parse_path(text)
    assert str(info.value) == message


def test_getters_never_raise_and_setters_create_on_the_way():
    get = make_getter(parse_path("a.b[1].c"))
    assert get({"a": {"b": [{}, {"c": 3}]}}) == 3
    assert get({"a": {"b": "text"}}) is MISSING
    assert get({"a": None}) is MISSING
    assert get([1, 2]) is MISSING
    tree: dict = {}
    make_setter(parse_path("a.b[1].c"))(tree, 3)
    assert tree == {"a": {"b": [None, {"c": 3}]}}


def test_overlapping_paths():
    assert overlaps(parse_path("a.b"), parse_path("a"))
    assert overlaps(parse_path("items[0].x"), parse_path("items[*].x"))
    assert not overlaps(parse_path("items[0].x"), parse_path("items[1].x"))
    assert not overlaps(parse_path("a.b"), parse_path("a.c"))
