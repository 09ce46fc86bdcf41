"""Shared setup of the mapping browser-view tests: a spec with schemas, rows and tests."""

import pytest

from apps.mappings import services
from apps.mappings.models import FieldRule, MappingSpec, MappingTest

SOURCE_SCHEMA = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "state": {"type": "string", "enum": ["N", "S"]},
        "total": {"type": "number"},
        "country": {"type": "string"},
    },
}
TARGET_SCHEMA = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["new", "shipped"]},
        "amount": {"type": "number"},
        "country": {"type": "string"},
    },
}
HTMX = {"HTTP_HX_REQUEST": "true"}


def fresh(spec) -> MappingSpec:
    return MappingSpec.objects.get(pk=spec.pk)


def add_row(actor, spec, position, target, sources, kind="copy", params=None, **fields):
    rule = FieldRule(
        spec=spec,
        position=position,
        target_path=target,
        source_paths=list(sources),
        kind=kind,
        params=params or {},
        **fields,
    )
    return services.save_rule(actor, rule, fresh(spec).revision)


def htmx(target="", trigger_name=""):
    headers = dict(HTMX)
    if target:
        headers["HTTP_HX_TARGET"] = target
    if trigger_name:
        headers["HTTP_HX_TRIGGER_NAME"] = trigger_name
    return headers


@pytest.fixture
def order_spec(interface_a, engineer):
    """A draft mapping of team A's interface: id <- number, status <- state (code map),
    and one mapping test that passes."""
    created = services.create_spec(
        engineer,
        MappingSpec(
            interface=interface_a,
            name="Orders to ERP",
            description="Order intake.",
            source_schema=SOURCE_SCHEMA,
            target_schema=TARGET_SCHEMA,
        ),
    )
    add_row(engineer, created, 1, "id", ["number"], required=True, target_type="string")
    add_row(
        engineer,
        created,
        2,
        "status",
        ["state"],
        "code_map",
        {"map": {"N": "new", "S": "shipped"}},
        required=True,
        notes="Order state",
    )
    services.save_mapping_test(
        engineer,
        MappingTest(
            spec=fresh(created),
            name="new order",
            source_payload={"number": "SO-1", "state": "N"},
            expected_payload={"id": "SO-1", "status": "new"},
        ),
    )
    return fresh(created)


def approve(spec, engineer, lead) -> MappingSpec:
    spec = fresh(spec)
    services.submit_for_review(engineer, spec, spec.revision)
    spec = fresh(spec)
    services.approve_spec(lead, spec, spec.revision)
    return fresh(spec)
