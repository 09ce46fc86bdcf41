"""XML documents and CSV records to and from the tree the mapping engine works on.

The tree is what JSON gives: dicts, lists, text, numbers, booleans and None.

XML convention (close to the well-known "xmltodict" one):

* The document is ``{root tag: content}``: ``<Order id="7"><Line>…</Line></Order>`` is
  ``{"Order": {"@id": "7", "Line": {…}}}``.
* An element with neither attributes nor children is its text (``"42"``), or None when empty.
* Attributes are ``@name`` keys; child elements are keys by tag, in document order; a tag
  that repeats becomes a list. (A repeated element that happens to occur once is a single
  object; paths with ``[*]`` read it as a list of one, so ``Line[*].Sku`` works either way.)
* Text beside attributes or children is ``#text`` (stripped; the interleaving of mixed
  content is not kept).
* Namespaces are dropped on reading (local names only); comments and processing
  instructions are ignored. Every value read is text: cast rules make numbers of it.
* Writing is the reverse: numbers and booleans become text (``true``/``false``), None an
  empty element, a list repeated elements. The tree must have exactly one top-level key.

Parsing goes through defusedxml (apps.testing.xml_bodies.parse): no entity expansion, no
external entities, no DTD tricks, at most 10 MB; at most :data:`MAX_XML_DEPTH` levels and
:data:`MAX_XML_ELEMENTS` elements are converted.

CSV: a header row names the columns, and each further row is a record, a flat dict
``{column: text}`` (empty cells are ``""``). Text must be UTF-8 (a BOM is allowed); every
row must have as many cells as the header; sizes are bounded. Writing a record flattens
nested objects with dotted names (``{"customer": {"id": 1}}`` -> column ``customer.id``);
arrays cannot be written. Values are written as they are: a record is data, not a sheet a
person opens, so no formula escaping is applied here.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET  # noqa: S405 - only to build trees; parsing goes through defusedxml
from decimal import Decimal
from typing import Any

from apps.testing import xml_bodies

MAX_XML_DEPTH = 100
MAX_XML_ELEMENTS = 200_000
MAX_CSV_BYTES = 10 * 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 1_000

_XML_NAME = re.compile(r"[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?")
# Characters XML 1.0 cannot hold at all (not even escaped).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ConversionError(ValueError):
    """A document that cannot be converted; the message says what and where."""


# --------------------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------------------


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1] if name.startswith("{") else name


def xml_to_tree(data: bytes | str) -> dict:
    """The tree of an XML document (see the module doc for the convention)."""
    try:
        root = xml_bodies.parse(data)
    except xml_bodies.XmlProblem as exc:
        raise ConversionError(str(exc))
    counter = [0]
    return {_local(root.tag): _element_value(root, 1, counter)}


def _element_value(element: ET.Element, depth: int, counter: list[int]) -> Any:
    counter[0] += 1
    if counter[0] > MAX_XML_ELEMENTS:
        raise ConversionError(f"the XML has more than {MAX_XML_ELEMENTS:,} elements")
    if depth > MAX_XML_DEPTH:
        raise ConversionError(f"the XML nests deeper than {MAX_XML_DEPTH} levels")
    children = list(element)
    if not children and not element.attrib:
        return element.text if element.text else None
    value: dict[str, Any] = {}
    for name, attribute in element.attrib.items():
        value["@" + _local(name)] = attribute
    text = (element.text or "") + "".join(child.tail or "" for child in children)
    if text.strip():
        value["#text"] = text.strip()
    for child in children:
        tag = _local(child.tag)
        child_value = _element_value(child, depth + 1, counter)
        existing = value.get(tag)
        if tag not in value:
            value[tag] = child_value
        elif isinstance(existing, list):  # element values are never lists themselves
            existing.append(child_value)
        else:
            value[tag] = [existing, child_value]
    return value


def _xml_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float | Decimal):
        text = format(Decimal(repr(value)) if isinstance(value, float) else value, "f")
    elif isinstance(value, str):
        text = value
    else:
        raise ConversionError(f"{where}: {type(value).__name__} cannot be XML text")
    if _XML_FORBIDDEN.search(text):
        raise ConversionError(f"{where}: the text holds a control character XML cannot hold")
    return text


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _XML_NAME.fullmatch(name):
        raise ConversionError(f"{where}: {name!r} is not a valid XML name")
    return name


def _fill(element: ET.Element, value: Any, where: str, depth: int) -> None:
    if depth > MAX_XML_DEPTH:
        raise ConversionError(f"the tree nests deeper than {MAX_XML_DEPTH} levels")
    if value is None:
        return
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise ConversionError(f"{where}: an array inside an array cannot be XML")
        element.text = _xml_text(value, where)
        return
    for key, item in value.items():
        if not isinstance(key, str):
            raise ConversionError(f"{where}: {key!r} is not a valid XML name")
        if key == "#text":
            if item is not None:
                element.text = _xml_text(item, f"{where}.#text")
        elif key.startswith("@"):
            name = _check_name(key[1:], f"{where}.{key}")
            if item is None:
                continue
            if isinstance(item, dict | list):
                raise ConversionError(f"{where}.{key}: an attribute must be a single value")
            element.set(name, _xml_text(item, f"{where}.{key}"))
        else:
            name = _check_name(key, f"{where}.{key}")
            items = item if isinstance(item, list) else [item]
            for position, child_value in enumerate(items):
                child_where = f"{where}.{key}" + (f"[{position}]" if isinstance(item, list) else "")
                child = ET.SubElement(element, name)
                _fill(child, child_value, child_where, depth + 1)


def tree_to_xml(tree: Any) -> str:
    """An XML document (UTF-8 declaration included) of a tree with one top-level key."""
    if not isinstance(tree, dict) or len(tree) != 1:
        count = len(tree) if isinstance(tree, dict) else 0
        raise ConversionError(
            f"an XML document needs exactly one root element; the tree has {count} top-level fields"
        )
    name, value = next(iter(tree.items()))
    if isinstance(value, list):
        raise ConversionError(f"the root element {name!r} cannot repeat")
    root = ET.Element(_check_name(name, name))
    _fill(root, value, name, 1)
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------


def decode_text(data: bytes | str, what: str = "the file") -> str:
    """UTF-8 text of uploaded bytes (BOM dropped); ConversionError names the bad byte."""
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConversionError(
            f"{what} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} "
            "(save it as UTF-8)"
        )


def read_csv(
    data: bytes | str,
    *,
    delimiter: str = ",",
    max_rows: int = MAX_CSV_ROWS,
    max_bytes: int = MAX_CSV_BYTES,
) -> tuple[list[str], list[dict[str, str]]]:
    """(header, records) of CSV text; ConversionError names the line that is wrong."""
    if len(data) > max_bytes:
        raise ConversionError(f"the CSV is larger than {max_bytes // (1024 * 1024)} MB")
    text = decode_text(data, "the CSV")
    if "\x00" in text:
        raise ConversionError("the CSV holds NUL characters; it is not a text file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    records: list[dict[str, str]] = []
    try:
        for cells in reader:
            if not cells or (
                len(cells) == 1 and not cells[0].strip() and (header is None or len(header) > 1)
            ):
                continue  # a blank line (a one-column record may be empty: "")
            if header is None:
                header = _header(cells)
                continue
            if len(cells) != len(header):
                raise ConversionError(
                    f"line {reader.line_num}: {len(cells)} cells, but the header has {len(header)}"
                )
            if len(records) >= max_rows:
                raise ConversionError(f"the CSV has more than {max_rows:,} records")
            records.append(dict(zip(header, cells, strict=True)))
    except csv.Error as exc:
        raise ConversionError(f"line {reader.line_num}: {exc}")
    if header is None:
        raise ConversionError("the CSV is empty; it needs a header row")
    return header, records


def _header(cells: list[str]) -> list[str]:
    if len(cells) > MAX_CSV_COLUMNS:
        raise ConversionError(f"the header has more than {MAX_CSV_COLUMNS:,} columns")
    names = [cell.strip() for cell in cells]
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
            raise ConversionError(f"column {number} of the header has no name")
        if name in seen:
            raise ConversionError(
                f"the column {name!r} appears twice (columns {seen[name]} and {number})"
            )
        seen[name] = number
    return names


def csv_to_record(data: bytes | str, *, delimiter: str = ",") -> dict[str, str]:
    """The one record of a CSV text (a header row and one data row)."""
    _, records = read_csv(data, delimiter=delimiter, max_rows=1)
    if not records:
        raise ConversionError("the CSV has a header but no record")
    return records[0]


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = ""
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
        return
    if isinstance(value, list):
        raise ConversionError(f"a CSV record cannot hold the array at {prefix!r}")
    if value is None:
        out[prefix] = ""
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    elif isinstance(value, float):
        out[prefix] = format(Decimal(repr(value)), "f")
    else:
        out[prefix] = str(value)


def record_to_csv(tree: Any, *, delimiter: str = ",") -> str:
    """CSV text (a header row and one data row) of a record; nested objects get dotted names."""
    if not isinstance(tree, dict):
        raise ConversionError("a CSV record must be an object")
    flat: dict[str, str] = {}
    _flatten(tree, "", flat)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")  # RFC 4180
    writer.writerow(list(flat))
    writer.writerow(list(flat.values()))
    return buffer.getvalue()
