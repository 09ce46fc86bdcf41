"""The JSON shape of each JSON field of a test case: one rule for the browser form and the API."""

OBJECT = "object"
ARRAY = "array"
STRING = "string"

# field name -> (the JSON type of the field, the JSON type of each member or None for any)
JSON_SHAPES = {
    "query": (OBJECT, None),
    "headers": (OBJECT, None),
    "variables": (OBJECT, None),
    "extract": (OBJECT, STRING),  # {variable name: JSONPath}
    "steps": (ARRAY, OBJECT),  # one object per chained request
    "assertions": (ARRAY, None),  # each one is checked by services.validate_case
}


def json_type(value) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return STRING
    if isinstance(value, dict):
        return OBJECT
    return ARRAY


def _with_article(type_name: str) -> str:
    return (
        type_name
        if type_name == "null"
        else f"{'an' if type_name[0] in 'aeiou' else 'a'} {type_name}"
    )


def shape_problem(name: str, value, label: str | None = None) -> str | None:
    """What is wrong with the shape of ``value`` for the field ``name``, or None."""
    shape, member = JSON_SHAPES[name]
    label = label or name
    if json_type(value) != shape:
        return f"{label} must be a JSON {shape}, not {_with_article(json_type(value))}."
    if member is None:
        return None
    members = value.items() if shape == OBJECT else enumerate(value, start=1)
    for key, item in members:
        if json_type(item) != member:
            where = f"the value of {key!r}" if shape == OBJECT else f"item {key}"
            return (
                f"{label}: {where} must be a JSON {member}, not {_with_article(json_type(item))}."
            )
    return None
