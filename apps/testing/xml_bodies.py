"""XML request and response bodies: safe parsing and the small XPath subset assertions use.

Parsing goes through defusedxml, so entity expansion, external entities and DTD
tricks are refused. Assertions address XML with ``xpath:`` paths in
ElementTree's XPath subset — ``xpath:/Invoice/Status``, ``xpath://Line/Sku``,
``xpath:/Invoice/@currency`` — and compare the text of what they find.
"""

import xml.etree.ElementTree as ET  # noqa: S405 - only to build and search trees defusedxml parsed

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

XPATH_PREFIX = "xpath:"
MAX_XML_BYTES = 10 * 1024 * 1024


class XmlProblem(ValueError):
    pass


def is_xml_media(content_type: str) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media.endswith("/xml") or media.endswith("+xml")


def parse(data: bytes | str) -> ET.Element:
    """The root element of an XML document; XmlProblem says what is wrong with it."""
    if len(data) > MAX_XML_BYTES:
        raise XmlProblem(f"the XML body is larger than {MAX_XML_BYTES // (1024 * 1024)} MB")
    try:
        return SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise XmlProblem(f"the XML uses a refused construct ({type(exc).__name__})")
    except ET.ParseError as exc:
        raise XmlProblem(f"the body is not well-formed XML ({exc})")


def xpath_of(path: str) -> str | None:
    """The expression of an ``xpath:`` assertion path; None for any other path."""
    if path.startswith(XPATH_PREFIX):
        return path[len(XPATH_PREFIX) :].strip()
    return None


def _split_attribute(expression: str) -> tuple[str, str | None]:
    head, _, last = expression.rpartition("/")
    if last.startswith("@") and head:
        return head, last[1:]
    return expression, None


def _relative(expression: str) -> str:
    """ElementTree searches below an element, so absolute paths are made relative to a
    wrapper around the root: ``/Invoice/Status`` is ``./Invoice/Status`` of the wrapper."""
    if expression.startswith("//"):
        return "." + expression
    if expression.startswith("/"):
        return "." + expression
    return expression


def validate_xpath(expression: str) -> None:
    """Raises ValueError when ElementTree cannot compile the expression."""
    if not expression:
        raise ValueError("the xpath: path is empty; write e.g. xpath:/Invoice/Status")
    element_path, attribute = _split_attribute(expression)
    if attribute is not None and not attribute.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"invalid attribute name {attribute!r}")
    try:
        ET.Element("root").findall(_relative(element_path))
    except (SyntaxError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid XPath {expression!r}: {exc or 'not supported'}")


def find(root: ET.Element, expression: str) -> list[tuple[str, str]]:
    """(location, text) of every element or attribute the expression finds."""
    element_path, attribute = _split_attribute(expression)
    wrapper = ET.Element("document")
    wrapper.append(root)
    found = []
    for index, element in enumerate(wrapper.findall(_relative(element_path))):
        location = f"{element_path}[{index + 1}]"
        if attribute is not None:
            if attribute in element.attrib:
                found.append((f"{location}/@{attribute}", element.attrib[attribute]))
        else:
            found.append((location, (element.text or "").strip()))
    return found
