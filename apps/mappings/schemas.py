"""The source and target schemas of a mapping spec, and what a field path finds in them.

A side (source or target) is described either by an inline JSON Schema or by an operation
of a registered API spec: an OpenAPI request body or response (``status`` blank: the first
documented 2XX, else ``default``), an AsyncAPI message payload, or a schema of a JSON Schema
document (``schema`` or ``schema #/$defs/Name``). :func:`side_schema` resolves either into a
:class:`SideSchema`; :func:`find_field` says whether a path is declared and which JSON types
it may hold; :func:`validator` compiles the schema with apps.testing.checks' validator (the
same verdicts and messages as contract tests; OpenAPI 3.0 ``nullable`` understood).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from apps.mappings.paths import WILDCARD, Path
from apps.testing import checks

if TYPE_CHECKING:
    from apps.catalog.models import ApiSpec
    from apps.mappings.models import MappingSpec

JSON_SCHEMA_VERSION = "3.1.0"  # OpenAPI 3.1 schemas are JSON Schema 2020-12
MAX_BRANCHES = 200  # schema nodes followed for one step of a path


class SchemaProblem(ValueError):
    """A side whose schema cannot be found or read; the message says why."""


@dataclass(frozen=True)
class SideSchema:
    """A payload schema and the document its ``$ref`` values resolve in."""

    document: dict
    schema: dict
    openapi_version: str
    label: str


@dataclass(frozen=True)
class FieldInfo:
    """What a path finds in a schema. ``declared`` False with ``found`` True: the path lies
    inside a free-form object or array. ``types`` empty: any type."""

    found: bool
    declared: bool
    types: frozenset[str]


# --------------------------------------------------------------------------------------
# Finding a side's schema
# --------------------------------------------------------------------------------------


def side_schema(spec: MappingSpec, side: str) -> SideSchema | None:
    """The schema of the spec's source or target; None when neither kind is given."""
    inline = getattr(spec, f"{side}_schema")
    api_spec = getattr(spec, f"{side}_spec") if getattr(spec, f"{side}_spec_id") else None
    if api_spec is not None:
        return operation_schema(
            api_spec,
            getattr(spec, f"{side}_operation"),
            getattr(spec, f"{side}_part"),
            getattr(spec, f"{side}_status"),
        )
    if inline is None:
        return None
    if not isinstance(inline, dict):
        raise SchemaProblem(f"the {side} schema must be a JSON object")
    return SideSchema(inline, inline, JSON_SCHEMA_VERSION, f"the {side} schema")


def side_definition_problems(spec: MappingSpec, side: str) -> dict[str, str]:
    """Field -> message for a side that is not described right (for ``clean``)."""
    problems: dict[str, str] = {}
    inline = getattr(spec, f"{side}_schema")
    has_spec = bool(getattr(spec, f"{side}_spec_id"))
    if inline is not None and has_spec:
        problems[f"{side}_schema"] = (
            "Give either a JSON Schema or an operation of a registered spec, not both."
        )
        return problems
    if inline is not None:
        message = check_json_schema(inline)
        if message:
            problems[f"{side}_schema"] = message
    if not has_spec:
        for name in ("operation", "part", "status"):
            if getattr(spec, f"{side}_{name}"):
                problems[f"{side}_{name}"] = "Choose a registered spec first."
        return problems
    if not getattr(spec, f"{side}_operation"):
        problems[f"{side}_operation"] = "Choose an operation of the spec."
        return problems
    try:
        side_schema(spec, side)
    except SchemaProblem as exc:
        field = f"{side}_status" if "status" in str(exc) else f"{side}_operation"
        problems[field] = str(exc)[:1].upper() + str(exc)[1:]
    return problems


def check_json_schema(schema: Any) -> str:
    """A message when ``schema`` is not a valid JSON Schema, else ""."""
    if not isinstance(schema, dict):
        return "A JSON Schema must be a JSON object."
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        return f"Not a valid JSON Schema at /{where}: {exc.message}"
    except Exception as exc:  # a schema so odd that the meta-schema check itself fails
        return f"Not a valid JSON Schema: {exc}"
    return ""


def _deref(document: dict, node: Any, where: str) -> Any:
    try:
        return checks.deref(document, node, where)
    except checks.ContractError as exc:
        raise SchemaProblem(str(exc))


def _json_media(content: Any) -> tuple[str, Any] | None:
    if not isinstance(content, dict):
        return None
    media_types = {
        str(media).split(";", 1)[0].strip().lower(): value for media, value in content.items()
    }
    if "application/json" in media_types:
        return "application/json", media_types["application/json"]
    for media, value in media_types.items():
        if media.endswith("/json") or media.endswith("+json"):
            return media, value
    return None


def _schema_of(document: dict, media: tuple[str, Any] | None, what: str) -> dict:
    if media is None:
        raise SchemaProblem(f"{what} has no JSON body")
    media_type, media_object = media
    schema = media_object.get("schema") if isinstance(media_object, dict) else None
    if schema is True or schema == {}:
        return {}
    if not isinstance(schema, dict):
        raise SchemaProblem(f"{what} declares no schema for {media_type}")
    return schema


def _find_operation(api_spec: ApiSpec, key: str) -> dict:
    for entry in api_spec.operations or []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return entry
    raise SchemaProblem(f"{api_spec} has no operation {key!r}")


def operation_schema(api_spec: ApiSpec, key: str, part: str = "", status: str = "") -> SideSchema:
    """The payload schema of an operation of a registered spec (see the module doc)."""
    document = api_spec.document if isinstance(api_spec.document, dict) else {}
    entry = _find_operation(api_spec, key)
    kind = api_spec.kind
    if kind.startswith("openapi"):
        return _openapi_schema(api_spec, document, entry, part, status)
    if kind.startswith("asyncapi"):
        return _asyncapi_schema(api_spec, document, entry, kind)
    pointer = entry.get("path") or ""
    schema = _deref(document, {"$ref": "#" + pointer}, key) if pointer else document
    if not isinstance(schema, dict):
        raise SchemaProblem(f"{key} of {api_spec} is not a schema object")
    return SideSchema(document, schema, JSON_SCHEMA_VERSION, f"{key} of {api_spec}")


def _openapi_schema(api_spec, document: dict, entry: dict, part: str, status: str) -> SideSchema:
    method = str(entry.get("method", "")).lower()
    where = f"{entry['key']} of {api_spec}"
    paths = document.get("paths") if isinstance(document.get("paths"), dict) else {}
    item = _deref(document, paths.get(entry.get("path")), where)
    operation = item.get(method) if isinstance(item, dict) else None
    if not isinstance(operation, dict):
        raise SchemaProblem(f"{where} is not in the document")
    version = str(document.get("openapi", "3.0.3"))
    if part == "request":
        body = _deref(document, operation.get("requestBody"), f"the request body of {where}")
        if not isinstance(body, dict):
            raise SchemaProblem(f"{where} has no request body")
        what = f"the request body of {where}"
        schema = _schema_of(document, _json_media(body.get("content")), what)
        return SideSchema(document, schema, version, what)
    if part != "response":
        raise SchemaProblem("choose the request or the response of the operation")
    responses = operation.get("responses") if isinstance(operation.get("responses"), dict) else {}
    keys = {str(code).strip().upper(): code for code in responses}
    if status:
        wanted = status.strip().upper()
        if wanted not in keys:
            documented = ", ".join(str(code) for code in responses) or "none"
            raise SchemaProblem(
                f"{where} documents no response status {status} (documented: {documented})"
            )
    else:
        wanted = next((code for code in sorted(keys) if code.startswith("2")), "DEFAULT")
        if wanted not in keys:
            raise SchemaProblem(f"{where} documents no 2XX or default response status")
    label = f"the {keys[wanted]} response of {where}"
    response = _deref(document, responses[keys[wanted]], label)
    if not isinstance(response, dict):
        raise SchemaProblem(f"{label} is not an object")
    schema = _schema_of(document, _json_media(response.get("content")), label)
    return SideSchema(document, schema, version, label)


def _asyncapi_schema(api_spec, document: dict, entry: dict, kind: str) -> SideSchema:
    where = f"{entry['key']} of {api_spec}"
    if kind == "asyncapi-2":
        channels = document.get("channels") if isinstance(document.get("channels"), dict) else {}
        channel = _deref(document, channels.get(entry.get("channel")), where)
        operation = channel.get(entry.get("action")) if isinstance(channel, dict) else None
        message = _deref(document, (operation or {}).get("message"), where)
    else:
        operations = (
            document.get("operations") if isinstance(document.get("operations"), dict) else {}
        )
        operation = _deref(document, operations.get(entry.get("operation_id")), where)
        messages = (operation or {}).get("messages") if isinstance(operation, dict) else None
        if not isinstance(messages, list) or len(messages) != 1:
            raise SchemaProblem(f"{where} must send exactly one kind of message to be mapped")
        message = _deref(document, messages[0], where)
    if not isinstance(message, dict) or "oneOf" in message:
        raise SchemaProblem(f"{where} must carry exactly one kind of message to be mapped")
    payload = message.get("payload")
    if isinstance(payload, dict) and "schema" in payload and "schemaFormat" in payload:
        payload = payload["schema"]  # AsyncAPI 3 multi-format schema object
    if not isinstance(payload, dict):
        raise SchemaProblem(f"the message of {where} has no payload schema")
    return SideSchema(document, payload, JSON_SCHEMA_VERSION, f"the message payload of {where}")


# --------------------------------------------------------------------------------------
# What a path finds
# --------------------------------------------------------------------------------------


def _expand(document: dict, nodes: list[Any]) -> list[dict]:
    """The nodes with their $refs followed and allOf/anyOf/oneOf branches added."""
    result: list[dict] = []
    pending = list(nodes)
    seen: set[int] = set()
    while pending and len(result) < MAX_BRANCHES:
        node = pending.pop(0)
        try:
            node = checks.deref(document, node, "the schema")
        except checks.ContractError:
            continue
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        result.append(node)
        for keyword in ("allOf", "anyOf", "oneOf"):
            branches = node.get(keyword)
            if isinstance(branches, list):
                pending.extend(branches)
        for keyword in ("then", "else"):
            if isinstance(node.get(keyword), dict):
                pending.append(node[keyword])
    return result


def _types(nodes: list[dict]) -> frozenset[str]:
    found: set[str] = set()
    for node in nodes:
        kind = node.get("type")
        if isinstance(kind, str):
            found.add(kind)
        elif isinstance(kind, list):
            found.update(k for k in kind if isinstance(k, str))
        if node.get("nullable") is True:
            found.add("null")
    typed = any("type" in node for node in nodes)
    return frozenset(found) if typed else frozenset()


def _step_nodes(nodes: list[dict], step: Any) -> tuple[list[Any], bool]:
    """(the schema nodes one step down, whether the step enters a free-form value)."""
    following: list[Any] = []
    if isinstance(step, str):
        declares = False
        open_object = True
        for node in nodes:
            properties = node.get("properties")
            if isinstance(properties, dict) or isinstance(node.get("patternProperties"), dict):
                declares = True
            if isinstance(properties, dict) and step in properties:
                following.append(properties[step])
            additional = node.get("additionalProperties")
            if additional is False:
                open_object = False
            elif isinstance(additional, dict) and additional:
                following.append(additional)
        if following:
            return following, False
        types = _types(nodes)
        may_be_object = not types or "object" in types
        return [], bool(nodes) and not declares and open_object and may_be_object
    declares_items = False
    for node in nodes:
        items = node.get("items")
        prefix = node.get("prefixItems")
        if (
            isinstance(step, int)
            and isinstance(prefix, list)
            and -len(prefix) <= step < len(prefix)
        ):
            following.append(prefix[step])
            declares_items = True
        elif isinstance(items, dict):
            following.append(items)
            declares_items = True
    if following:
        return following, False
    types = _types(nodes)
    if types and "array" not in types:
        # XML has no arrays: lines[*] over a single object reads that object.
        return list(nodes), False
    return [], bool(nodes) and not declares_items


def find_field(side: SideSchema, steps: Path) -> FieldInfo:
    """Whether the schema declares the path (``[n]`` and ``[*]`` alike), and its types."""
    nodes = _expand(side.document, [side.schema])
    for step in steps:
        following, free = _step_nodes(nodes, WILDCARD if step is WILDCARD else step)
        if free:
            return FieldInfo(True, False, frozenset())
        if not following:
            return FieldInfo(False, False, frozenset())
        nodes = _expand(side.document, following)
    return FieldInfo(True, True, _types(nodes))


def validator(side: SideSchema) -> checks.SchemaValidator:
    """The compiled validator of a side's schema (SchemaProblem when it cannot compile)."""
    try:
        return checks.compile_response_validator(
            side.document, side.schema, openapi_version=side.openapi_version, strict=False
        )
    except checks.ContractError as exc:
        raise SchemaProblem(f"{side.label} cannot be used: {exc}")
