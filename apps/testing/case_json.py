"""The JSON shape of each JSON field of a test case: one rule for the browser form and the API."""

from apps.catalog.specs import json_type
from apps.testing.checks import with_article

OBJECT = "object"
ARRAY = "array"
STRING = "string"

# The fields a person edits, in the order the form and the API show them.
EDITABLE_FIELDS = [
    "name",
    "kind",
    "scenario",
    "description",
    "method",
    "path",
    "query",
    "headers",
    "body",
    "body_format",
    "body_text",
    "variables",
    "extract",
    "steps",
    "send_credentials",
    "expected_statuses",
    "validate_schema",
    "assertions",
    "max_latency_ms",
    "tags",
    "is_active",
    "manual_steps",
    "expected_result",
]

# field name -> (the JSON type of the field, the JSON type of each member or None for any)
JSON_SHAPES = {
    "query": (OBJECT, None),
    "headers": (OBJECT, None),
    "variables": (OBJECT, None),
    "extract": (OBJECT, STRING),  # {variable name: JSONPath}
    "steps": (ARRAY, OBJECT),  # one object per chained request
    "assertions": (ARRAY, None),  # each one is checked by services.validate_case
}


def shape_problem(name: str, value, label: str | None = None) -> str | None:
    """What is wrong with the shape of ``value`` for the field ``name``, or None."""
    shape, member = JSON_SHAPES[name]
    label = label or name
    if json_type(value) != shape:
        return f"{label} must be a JSON {shape}, not {with_article(json_type(value))}."
    if member is None:
        return None
    members = value.items() if shape == OBJECT else enumerate(value, start=1)
    for key, item in members:
        if json_type(item) != member:
            where = f"the value of {key!r}" if shape == OBJECT else f"item {key}"
            return f"{label}: {where} must be a JSON {member}, not {with_article(json_type(item))}."
    return None
