"""Helpers for the mapping tests: rows that need no database, specs that do."""

import pytest

from apps.mappings import engine, schemas
from apps.mappings.models import FieldRule, MappingSpec


def row(position, target, sources=(), kind="copy", params=None, required=False) -> FieldRule:
    """An unsaved mapping row."""
    return FieldRule(
        position=position,
        target_path=target,
        source_paths=list(sources),
        kind=kind,
        params=params or {},
        required=required,
    )


def inline(schema: dict, side: str = "source") -> schemas.SideSchema:
    return schemas.SideSchema(schema, schema, schemas.JSON_SCHEMA_VERSION, f"the {side} schema")


def compile_rows(*rows, source=None, target=None, lookups=None, **options):
    return engine.compile_rules(
        rows,
        source=inline(source) if source is not None else None,
        target=inline(target, "target") if target is not None else None,
        lookups=lookups,
        **options,
    )


def transform(rows, payload, **options):
    """(output, [str(problem)]) of rows applied to a payload."""
    output, problems = compile_rows(*rows, **options).transform(payload)
    return output, [str(problem) for problem in problems]


def compile_problems(*rows, **options) -> list[str]:
    with pytest.raises(engine.CompileError) as info:
        compile_rows(*rows, **options)
    return [str(problem) for problem in info.value.problems]


@pytest.fixture
def spec_a(interface_a, engineer):
    from apps.mappings import services

    return services.create_spec(engineer, MappingSpec(interface=interface_a, name="Orders to ERP"))
