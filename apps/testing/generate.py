"""Contract test cases generated from an OpenAPI spec, planned before they are applied.

One case per operation: the first documented 2xx response is expected, path and
query parameters come from the spec's examples (else from their schema), and a
request body from the media type's example or a minimal object built from the
schema's required properties. Generated cases carry the tag "generated"; a plan
lists what a new spec version would add, change or drop so a user can look
before applying it.
"""

from dataclasses import dataclass, field

from django.db import transaction

from apps.core import audit
from apps.core.models import AuditAction
from apps.testing import checks
from apps.testing.models import TestCase, TestKind

GENERATED_TAG = "generated"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
COMPARED_FIELDS = ("method", "path", "query", "body", "variables", "expected_statuses")


@dataclass
class Plan:
    add: list[dict] = field(default_factory=list)
    change: list[dict] = field(default_factory=list)
    drop: list[dict] = field(default_factory=list)
    unchanged: int = 0


def _example(document: dict, holder: dict, schema: dict | None, depth: int = 0):
    """An example value from an object with ``example``/``examples``, else one made from its schema."""
    if "example" in holder:
        return holder["example"]
    examples = holder.get("examples")
    if isinstance(examples, dict) and examples:
        first = checks.deref(document, next(iter(examples.values())))
        if isinstance(first, dict) and "value" in first:
            return first["value"]
    return _from_schema(document, schema or {}, depth)


def _from_schema(document: dict, schema: dict, depth: int = 0):
    schema = checks.deref(document, schema)
    if not isinstance(schema, dict) or depth > 8:
        return None
    for key in ("example", "default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("allOf", "oneOf", "anyOf"):
        if schema.get(combinator):
            if combinator == "allOf":
                merged = {}
                for part in schema["allOf"]:
                    value = _from_schema(document, part, depth + 1)
                    if isinstance(value, dict):
                        merged.update(value)
                return merged
            return _from_schema(document, schema[combinator][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: _from_schema(document, properties.get(name, {}), depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [_from_schema(document, schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    formats = {
        "date-time": "2025-01-15T10:00:00Z",
        "date": "2025-01-15",
        "email": "someone@example.com",
        "uuid": "00000000-0000-4000-8000-000000000000",
        "uri": "https://example.com/",
    }
    return formats.get(schema.get("format"), "example")


def proposed_cases(document: dict) -> list[dict]:
    """Field values of the generated cases for every operation of an OpenAPI document."""
    proposals = []
    for template, item in sorted((document.get("paths") or {}).items()):
        item = checks.deref(document, item)
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = [str(code) for code in operation.get("responses", {})]
            success = next(
                (code for code in responses if code.startswith("2") and code.isdigit()), None
            )
            if success is None:
                continue
            variables, query = {}, {}
            parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
            for parameter in parameters:
                parameter = checks.deref(document, parameter)
                if parameter.get("in") == "path":
                    variables[parameter["name"]] = _example(
                        document, parameter, parameter.get("schema")
                    )
                elif parameter.get("in") == "query" and parameter.get("required"):
                    query[parameter["name"]] = _example(
                        document, parameter, parameter.get("schema")
                    )
            body = None
            request_body = checks.deref(document, operation.get("requestBody") or {})
            content = request_body.get("content", {}) if isinstance(request_body, dict) else {}
            media = next((m for m in content if "json" in m), None)
            if media:
                body = _example(document, content[media], content[media].get("schema"))
            path = template.lstrip("/")
            for name in variables:
                path = path.replace("{" + name + "}", "{{" + name + "}}")
            name = operation.get("operationId") or f"{method.upper()} {template}"
            proposals.append(
                {
                    "name": f"{name} returns {success}"[:200],
                    "kind": TestKind.CONTRACT,
                    "method": method.upper(),
                    "path": path,
                    "query": query,
                    "body": body,
                    "variables": variables,
                    "expected_statuses": [int(success)],
                    "tags": [GENERATED_TAG],
                }
            )
    return proposals


def plan_for(interface, spec) -> Plan:
    """What generating from ``spec`` would add, change and drop among the interface's generated cases."""
    plan = Plan()
    proposals = {p["name"]: p for p in proposed_cases(spec.document)}
    existing = {c.name: c for c in TestCase.objects.filter(interface=interface)}
    for name, proposal in proposals.items():
        case = existing.get(name)
        if case is None:
            plan.add.append(proposal)
        elif GENERATED_TAG in (case.tags or []):
            differences = {
                f: [getattr(case, f), proposal[f]]
                for f in COMPARED_FIELDS
                if getattr(case, f) != proposal[f]
            }
            if differences:
                plan.change.append({"id": case.pk, "name": name, "changes": differences})
            else:
                plan.unchanged += 1
    for name, case in existing.items():
        if GENERATED_TAG in (case.tags or []) and name not in proposals:
            plan.drop.append({"id": case.pk, "name": name})
    return plan


def apply_plan(actor, interface, spec) -> Plan:
    """Applies the plan in one transaction, with an audit entry per case."""
    plan = plan_for(interface, spec)
    proposals = {p["name"]: p for p in proposed_cases(spec.document)}
    with transaction.atomic():
        for proposal in plan.add:
            case = TestCase.objects.create(interface=interface, **proposal)
            audit.record(actor, case, AuditAction.CREATE)
        for change in plan.change:
            case = TestCase.objects.get(pk=change["id"])
            before = audit.snapshot(case)
            for name in COMPARED_FIELDS:
                setattr(case, name, proposals[change["name"]][name])
            case.save()
            audit.record(actor, case, AuditAction.UPDATE, before)
        for dropped in plan.drop:
            case = TestCase.objects.get(pk=dropped["id"])
            audit.delete_with_audit(actor, case)
    return plan
