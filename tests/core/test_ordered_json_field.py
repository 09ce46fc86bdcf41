"""Schemas keep the order their properties were written in, on every database."""

import pytest

from apps.mappings.models import MappingSpec

pytestmark = pytest.mark.django_db


def test_a_schema_keeps_its_key_order(interface_a):
    schema = {
        "type": "object",
        "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer"}, "mid": {}},
    }
    spec = MappingSpec.objects.create(interface=interface_a, name="order", target_schema=schema)
    stored = MappingSpec.objects.get(pk=spec.pk).target_schema
    assert list(stored) == ["type", "properties"]
    assert list(stored["properties"]) == ["zeta", "alpha", "mid"]
    assert MappingSpec.objects.get(pk=spec.pk).source_schema is None
