"""Every XML parse in the process is defused (apps.core enables defusedxml at start-up)."""

import xml.etree.ElementTree as ET  # noqa: S405 - the point is that it is defused

import pytest
from defusedxml import DTDForbidden, EntitiesForbidden


def test_billion_laughs_is_refused():
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
    )
    with pytest.raises(EntitiesForbidden):
        ET.fromstring(bomb)  # noqa: S314


def test_external_entity_is_refused():
    xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises((EntitiesForbidden, DTDForbidden)):
        ET.fromstring(xxe)  # noqa: S314


def test_plain_xml_still_parses():
    assert ET.fromstring("<order><id>1</id></order>").find("id").text == "1"  # noqa: S314
