"""Data for the mappings API tests: specs with rows made directly (not through the API),
and a way to count queries."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.mappings.models import FieldRule, MappingSpec, MappingTest

SOURCE_SCHEMA = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "amount": {"type": "number"},
        "divisor": {"type": "number"},
        "customer_name": {"type": "string"},
        "country": {"type": "string"},
    },
}
TARGET_SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "maxLength": 5},
        "total": {"type": "number"},
        "customerName": {"type": "string"},
        "countryCode": {"type": "string"},
    },
}


def make_spec(interface, name="Orders to ERP", rows=(), tests=(), **fields) -> MappingSpec:
    """A draft JSON spec with inline schemas and ``rows`` as (target, sources, kind, params)."""
    values = {"source_schema": SOURCE_SCHEMA, "target_schema": TARGET_SCHEMA, **fields}
    spec = MappingSpec.objects.create(interface=interface, name=name, **values)
    add_rows(spec, rows)
    for test_name, source, expected in tests:
        MappingTest.objects.create(
            spec=spec, name=test_name, source_payload=source, expected_payload=expected
        )
    return spec


def add_rows(spec, rows, start=1) -> None:
    FieldRule.objects.bulk_create(
        FieldRule(
            spec=spec,
            position=position,
            target_path=row[0],
            source_paths=list(row[1]),
            kind=row[2] if len(row) > 2 else "copy",
            params=row[3] if len(row) > 3 else {},
        )
        for position, row in enumerate(rows, start=start)
    )


def fresh(spec) -> MappingSpec:
    return MappingSpec.objects.get(pk=spec.pk)


def count_queries(call) -> tuple[int, object]:
    """(number of queries, result) of ``call()``."""
    with CaptureQueriesContext(connection) as context:
        result = call()
    return len(context.captured_queries), result
