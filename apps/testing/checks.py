"""The checking logic of contract tests: pure functions, no database and no HTTP.

The runner sends a test case's request and hands the answer to these functions:

* :func:`find_operation` matches the concrete request path (``/demo-partner/customers/C-10001/``,
  with or without a query string) to the spec's path template and operation. The path parts of
  the spec's ``servers`` URLs (``/demo-partner``, or ``/v1`` of ``https://api.example.com/v1``)
  are accepted as base-path prefixes; a concrete template wins over a templated one.
* :func:`response_schema` picks the JSON schema of a response: the exact status code, then its
  ``2XX``-style range, then ``default``; ``application/json`` or a ``+json`` media type, media
  type parameters (``charset``) ignored; response-level ``$ref`` resolved.
* :func:`compile_response_validator` (or :func:`cached_validator`) turns that schema into a
  :class:`SchemaValidator` whose :meth:`~SchemaValidator.violations` read like
  "`$.customer.email`: 'abc' is not an e-mail address".
* :func:`validate_assertion` / :func:`evaluate_assertion` check the test case's own assertions
  (JSONPath through ``jsonpath-ng``, or ``header:Name``); :func:`render` fills ``{{variables}}``.
* The ``check_*`` helpers give the other named checks as :class:`CheckResult` values.

How a response schema is compiled
---------------------------------
The schema is rewritten into one self-contained JSON Schema 2020-12 document, compiled once:

* Every ``$ref`` is resolved against the whole spec (``#/components/schemas/...``, JSON pointers,
  ``#anchor``) and copied into ``$defs``; remote, file and relative references are refused with
  a :class:`ContractError` and never fetched (the compiled schema has no outside references, and
  the validators run with retrieval disabled).
* OpenAPI 3.0 semantics: ``nullable: true`` allows ``null`` (``type: [t, "null"]``, ``null``
  added to an ``enum``, or ``anyOf: [{type: null}, ...]`` when there is no type or when the
  schema composes others; also honoured beside a ``$ref``), boolean ``exclusiveMinimum`` /
  ``exclusiveMaximum`` become numeric, ``example``, ``xml``, ``externalDocs`` and ``x-`` keys are
  dropped, siblings of ``$ref`` are ignored, and ``required`` skips ``writeOnly`` properties
  (they are never in a response). ``discriminator`` stays as an annotation: ``oneOf`` validates,
  and the discriminator only picks which failed alternative to explain.
  OpenAPI 3.1 schemas are JSON Schema 2020-12 as they are.
* Strict mode: an object schema that declares ``properties`` (or ``patternProperties``) and says
  nothing about ``additionalProperties`` / ``unevaluatedProperties`` is closed. A plain object
  gets ``additionalProperties: false``; an object composed with ``allOf`` / ``anyOf`` / ``oneOf``
  / ``$ref`` / ``if``-``then``-``else`` gets ``unevaluatedProperties: false`` on the composing
  schema only, so a property declared in any branch is allowed. The branches themselves stay
  open (a referenced schema is compiled twice when it is used both ways), nested objects are
  closed, and nothing under ``not`` or ``if`` is changed (closing there would loosen the
  schema). ``oneOf`` is the one keyword where closing nested objects could turn "two
  alternatives match" into "one matches"; a strict validator whose schema has a ``oneOf``
  therefore also runs the non-strict one and reports the union, so strict mode never accepts
  what the spec refuses.
* Formats: ``date-time``, ``date``, ``time``, ``email``, ``uuid``, ``uri``, ``uri-reference``,
  ``hostname``, ``ipv4``, ``ipv6`` (and the rest of the 2020-12 set) are checked.

Backends: ``jsonschema-rs`` (offline, ~20x faster) when installed, pure-Python ``jsonschema``
(``Draft202012Validator``, a ``referencing.Registry`` that refuses retrieval) otherwise. Both give
the same verdicts and the same messages on the tests' corpus; the Python backend adds stricter
``email``, ``uri``, ``uri-reference`` and ``hostname`` checks than ``jsonschema`` ships, which
would otherwise accept ``"a@"`` as an e-mail address and ``"not a uri"`` as a URI. Remaining
differences: patterns are ECMA 262 in Rust (``\\d`` is ASCII) and Python ``re`` in the fallback,
and rarely used formats (``duration``, ``json-pointer``, ``idn-hostname``...) are only checked by
``jsonschema-rs``.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from typing import Any
from urllib.parse import unquote, urlsplit

from apps.catalog.specs import (
    SpecError,
    _ref_fragment,
    _resolve_fragment,
    _root_base,
    _scan,
    _Unresolvable,
    json_pointer,
    json_type,
)
from apps.testing import xml_bodies

try:  # pragma: no cover - exercised by whichever backend is installed
    import jsonschema_rs as _rs
except ImportError:  # pragma: no cover
    _rs = None

__all__ = [
    "CONTENT_TYPE",
    "INVALID_INPUT_REJECTED",
    "MAX_LATENCY",
    "NOT_SERVER_ERROR",
    "NO_CREDENTIALS_REJECTED",
    "RESPONSE_HEADERS",
    "RESPONSE_SCHEMA",
    "STATUS_CODE",
    "CheckResult",
    "ContractError",
    "SchemaValidator",
    "UndefinedVariable",
    "Violation",
    "assertion_name",
    "cached_validator",
    "check_content_type",
    "check_invalid_input_rejected",
    "check_max_latency",
    "check_no_credentials_rejected",
    "check_not_server_error",
    "check_response_headers",
    "check_response_schema",
    "check_status_code",
    "clear_validator_cache",
    "compile_response_validator",
    "evaluate_assertion",
    "find_operation",
    "render",
    "response_schema",
    "validate_assertion",
    "variables_in",
]

# Check names, as they appear in results.
STATUS_CODE = "status code conforms"
CONTENT_TYPE = "content type conforms"
RESPONSE_HEADERS = "response headers conform"
RESPONSE_SCHEMA = "response schema conforms"
NOT_SERVER_ERROR = "not a server error"
MAX_LATENCY = "within max latency"
INVALID_INPUT_REJECTED = "invalid input rejected"
NO_CREDENTIALS_REJECTED = "request without credentials rejected"

MAX_VIOLATIONS = 50  # violations reported for one body
MAX_RAW_ERRORS = 2_000  # validator errors read for one body (the rest are not even computed)
MAX_VALUE_CHARS = 60  # a value quoted in a message is cut to this length
MAX_PATTERN_CHARS = 500  # the longest regular expression an assertion may use
MAX_PATH_CHARS = 500  # the longest JSONPath an assertion may use
MAX_REF_HOPS = 64  # $ref -> $ref -> ... followed before giving up
VALIDATOR_CACHE_SIZE = 256

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
STRICT_MARK = "x-pontis-strict"  # set beside the additionalProperties/unevaluatedProperties we add
NULLABLE_MARK = "x-pontis-nullable"  # set on the anyOf [null, schema] that stands for nullable


class ContractError(Exception):
    """The spec itself is unusable here: an unresolvable or remote ``$ref``, an invalid schema."""


@dataclass
class CheckResult:
    """One named check of one response. ``passed`` None means not applicable (``message`` says
    why); ``details`` lists what failed (JSON-serialisable)."""

    name: str
    passed: bool | None
    message: str
    details: list = field(default_factory=list)
    # Set when the failure is in the interface's baseline of known findings: "#3: reason".
    known_finding: str = ""

    def as_dict(self) -> dict:
        """The check as stored in a result (``details`` hold JSON values already)."""
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "details": list(self.details),
            "known_finding": self.known_finding,
        }


@dataclass(frozen=True)
class Violation:
    """One way a body breaks its schema. ``path`` is JSONPath (``$.items[2].qty``), ``keyword``
    the JSON Schema keyword (``strict`` for a property refused by strict mode)."""

    path: str
    keyword: str
    message: str

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "keyword": self.keyword, "message": self.message}


# --------------------------------------------------------------------------------------
# Small helpers: JSON types, showing values, JSONPath text
# --------------------------------------------------------------------------------------


_ARTICLES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def _cut(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Control characters are shown escaped; backslashes (as in patterns) are shown as they are.
_CONTROL_ESCAPES = {i: repr(chr(i))[1:-1] for i in (*range(32), 127)}


def _show(value: Any) -> str:
    """A value as a message quotes it: strings in single quotes, the rest as JSON, cut short."""
    if isinstance(value, str):
        return "'" + _cut(value).translate(_CONTROL_ESCAPES) + "'"
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    return _cut(text)


def with_article(type_name: str) -> str:
    return _ARTICLES.get(type_name, f"a {type_name}")


def _or_list(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _jsonpath(tokens: Iterable[Any]) -> str:
    """``$.a.b[0]``; names that are not identifiers are quoted: ``$['a b']``."""
    parts = ["$"]
    for token in tokens:
        if isinstance(token, int) and not isinstance(token, bool):
            parts.append(f"[{token}]")
        elif _IDENTIFIER.fullmatch(str(token)):
            parts.append(f".{token}")
        else:
            escaped = str(token).replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
    return "".join(parts)


def _sort_key(tokens: tuple) -> tuple:
    return tuple((0, t, "") if isinstance(t, int) else (1, 0, str(t)) for t in tokens)


# --------------------------------------------------------------------------------------
# References within the spec
# --------------------------------------------------------------------------------------


def _anchors(document: dict) -> dict[str, dict]:
    try:
        return _scan(document).anchors
    except SpecError as exc:
        raise ContractError(f"the spec cannot be read: {exc}")


def _resolve(document: dict, ref: Any, where: str) -> tuple[Any, str]:
    """(target, fragment) of a local reference; ContractError if it is remote or dangling."""
    if not isinstance(ref, str):
        raise ContractError(f"$ref at {where} is not a string")
    try:
        fragment = _ref_fragment(ref, _root_base(document))
        anchors = None if fragment == "" or fragment.startswith("/") else _anchors(document)
        return _resolve_fragment(document, fragment, anchors), fragment
    except _Unresolvable as exc:
        raise ContractError(f"cannot resolve $ref {_cut(ref, 120)!r} at {where}: {exc.message}")


def _deref(document: dict, node: Any, where: str) -> Any:
    """Follow a chain of ``$ref`` objects (OpenAPI objects, not schemas) to the real object."""
    hops = 0
    while isinstance(node, dict) and "$ref" in node:
        if hops >= MAX_REF_HOPS:
            raise ContractError(f"$ref chain at {where} is longer than {MAX_REF_HOPS} hops")
        node, fragment = _resolve(document, node["$ref"], where)
        where = "#" + fragment
        hops += 1
    return node


# --------------------------------------------------------------------------------------
# Finding the operation of a request
# --------------------------------------------------------------------------------------

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE_VARIABLE = re.compile(r"\{[^{}/]*\}")


@lru_cache(maxsize=2048)
def _segment_pattern(segment: str) -> tuple[re.Pattern | None, bool]:
    """(regex or None for a literal segment, is_literal) for one template segment."""
    if not _TEMPLATE_VARIABLE.search(segment):
        return None, True
    parts = []
    last = 0
    for match in _TEMPLATE_VARIABLE.finditer(segment):
        parts.append(re.escape(segment[last : match.start()]))
        parts.append("[^/]+?" if match.end() < len(segment) else "[^/]+")
        last = match.end()
    parts.append(re.escape(segment[last:]))
    return re.compile("".join(parts)), False


def _split_path(path: str) -> list[str]:
    return path.split("/")[1:] if path.startswith("/") else path.split("/")


def _match_template(template: str, segments: list[str]) -> int | None:
    """Number of literal segments if the decoded ``segments`` fit ``template``, else None."""
    parts = _split_path(template)
    if len(parts) != len(segments):
        return None
    literal = 0
    for part, segment in zip(parts, segments, strict=True):
        pattern, is_literal = _segment_pattern(part)
        if is_literal:
            if unquote(part) != segment:
                return None
            literal += 1
        elif not segment or not pattern.fullmatch(segment):
            return None
    return literal


def _server_prefixes(document: dict) -> list[list[str]]:
    """Path parts of the servers' URLs (``/demo-partner``, ``/v1``), as template segments."""
    prefixes: list[list[str]] = []
    servers = document.get("servers")
    for server in servers if isinstance(servers, list) else ():
        url = server.get("url") if isinstance(server, dict) else None
        if not isinstance(url, str):
            continue
        if "://" in url or url.startswith("//"):
            path = urlsplit(url).path
        else:
            path = url.split("?", 1)[0].split("#", 1)[0]
        path = path.rstrip("/")
        if path and path.startswith("/"):
            parts = _split_path(path)
            if parts not in prefixes:
                prefixes.append(parts)
    return prefixes


def _strip_prefix(prefix: list[str], segments: list[str]) -> list[str] | None:
    if len(segments) < len(prefix):
        return None
    for part, segment in zip(prefix, segments, strict=False):
        pattern, is_literal = _segment_pattern(part)
        if is_literal and unquote(part) != segment:
            return None
        if not is_literal and not pattern.fullmatch(segment):
            return None
    rest = segments[len(prefix) :]
    return rest if rest else [""]


def find_operation(document: dict, method: str, path: str) -> tuple[str, dict] | None:
    """(path template, operation object) for a concrete request, or None if the spec has none.

    ``path`` may carry a query string or fragment (ignored), may be a full URL (its path is
    used), and may start with the base path of one of the spec's servers. Segments are compared
    percent-decoded; a template whose segments are all literal beats one with parameters.
    """
    paths = document.get("paths") if isinstance(document, dict) else None
    if not isinstance(paths, dict) or not isinstance(path, str) or not isinstance(method, str):
        return None
    method = method.strip().lower()
    if "://" in path or path.startswith("//"):
        path = urlsplit(path).path
    path = path.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    raw_segments = [unquote(s) for s in _split_path(path)]
    candidates = []
    for prefix in _server_prefixes(document):
        stripped = _strip_prefix(prefix, raw_segments)
        if stripped is not None:
            candidates.append(stripped)
    candidates.append(raw_segments)

    for segments in candidates:
        best: tuple[int, str, dict] | None = None
        for template, item in paths.items():
            if not isinstance(template, str) or not template.startswith("/"):
                continue
            literal = _match_template(template, segments)
            if literal is None:
                continue
            try:
                item = _deref(document, item, json_pointer(["paths", template]))
            except ContractError:
                continue
            operation = item.get(method) if isinstance(item, dict) else None
            if not isinstance(operation, dict):
                continue
            if best is None or literal > best[0]:
                best = (literal, template, operation)
        if best is not None:
            return best[1], best[2]
    return None


# --------------------------------------------------------------------------------------
# The response contract for a status and content type
# --------------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    if not isinstance(content_type, str):
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    if "/" not in media:
        return False
    kind, _, subtype = media.partition("/")
    return subtype == "json" or subtype.endswith("+json")


def _response_for(
    document: dict, operation: dict, status: int
) -> tuple[str, dict] | tuple[None, None]:
    """(key, response object) for a status: exact code, then ``2XX``, then ``default``."""
    responses = operation.get("responses") if isinstance(operation, dict) else None
    if not isinstance(responses, dict):
        return None, None
    code = str(status)
    keys = {str(key).strip().upper(): key for key in responses}
    for wanted in (code, f"{code[:1]}XX", "DEFAULT"):
        if wanted in keys:
            key = keys[wanted]
            where = f"the {key} response"
            response = _deref(document, responses[key], where)
            if not isinstance(response, dict):
                raise ContractError(f"{where} is not an object")
            return str(key), response
    return None, None


def response_schema(
    document: dict, operation: dict, status: int, content_type: str | None
) -> tuple[dict | None, str]:
    """(JSON schema of the response body, "") or (None, why there is none).

    The reason contains "no contract" when the spec documents nothing for the status (not even
    a range or ``default``); other reasons mean that there is nothing to validate (no body, no
    JSON body, no schema). Raises ContractError for a broken response ``$ref``.
    """
    key, response = _response_for(document, operation, status)
    if response is None:
        return None, f"no contract for status {status}"
    content = response.get("content")
    if not isinstance(content, dict) or not content:
        return None, f"the spec declares no JSON body for {status}"
    declared: dict[str, Any] = {}
    for media, value in content.items():
        declared.setdefault(_media_type(str(media)), value)
    actual = _media_type(content_type)
    if actual and not _is_json_media(actual) and any(_media_matches(m, actual) for m in declared):
        return (
            None,
            f"the response is {actual}, as the spec allows; there is no JSON schema to check",
        )
    if actual and actual in declared:
        chosen = actual
    elif "application/json" in declared:
        chosen = "application/json"
    else:
        chosen = next((m for m in declared if _is_json_media(m)), None)
        if chosen is None and actual:
            chosen = next((m for m in ("application/*", "*/*") if m in declared), None)
    if chosen is None:
        return None, f"the spec declares no JSON body for {status}"
    media_object = declared[chosen]
    schema = media_object.get("schema") if isinstance(media_object, dict) else None
    if schema is None:
        return None, f"the spec declares no schema for {chosen} in the {key} response"
    if not isinstance(schema, dict | bool):
        raise ContractError(f"the schema of {chosen} in the {key} response is not an object")
    if schema is True:
        return {}, ""
    if schema is False:
        return {"not": {}}, ""
    return schema, ""


# --------------------------------------------------------------------------------------
# Compiling a response schema
# --------------------------------------------------------------------------------------

LOOSE, OPEN, CLOSED = "loose", "open", "closed"
_INPLACE_LISTS = ("allOf", "anyOf", "oneOf")
_INPLACE_SINGLE = ("then", "else")
_CHILD_SINGLE = (
    "items",
    "additionalItems",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "contentSchema",
    "additionalProperties",
    "unevaluatedProperties",
)
_DROPPED = frozenset(
    {
        "$id",
        "$schema",
        "$anchor",
        "$dynamicAnchor",
        "$comment",
        "$defs",
        "definitions",
        "$vocabulary",
        "example",
        "examples",
        "xml",
        "externalDocs",
    }
)
# Keywords beside a 3.1 $ref that change nothing about validation.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "deprecated", "readOnly", "writeOnly", "discriminator"}
)
_NULL = {"type": "null"}


def _is_oas30(openapi_version: str) -> bool:
    text = str(openapi_version or "").strip().lower()
    return text.startswith(("3.0", "openapi-3.0")) or text in ("3", "openapi-3")


class _Compiler:
    """Rewrites a response schema into one self-contained 2020-12 schema (see module doc)."""

    def __init__(self, document: dict, *, oas30: bool, false_as_not: bool):
        self.document = document
        self.oas30 = oas30
        self.false_as_not = false_as_not
        self.defs: dict[str, Any] = {}
        self.names: dict[tuple[str, str], str] = {}
        self.origins: dict[str, str] = {}  # def name -> "#/components/schemas/X"
        self.has_one_of = False

    # references ------------------------------------------------------------------------
    def _final_target(self, ref: str, where: str) -> tuple[Any, str]:
        """Follows pure $ref chains (cycle-safe) to the schema that does something."""
        seen: list[str] = []
        target, fragment = _resolve(self.document, ref, where)
        while isinstance(target, dict) and isinstance(target.get("$ref"), str):
            pure = self.oas30 or set(target) - {"$ref"} <= _ANNOTATIONS
            if not pure or (self.oas30 and target.get("nullable") is True):
                break
            seen.append(fragment)
            if fragment in seen[:-1] or len(seen) > MAX_REF_HOPS:
                raise ContractError(f"$ref cycle at {where}: {' -> '.join('#' + s for s in seen)}")
            target, fragment = _resolve(self.document, target["$ref"], "#" + fragment)
        return target, fragment

    def ref(self, ref: str, mode: str, where: str) -> dict:
        target, fragment = self._final_target(ref, where)
        key = (fragment, mode)
        name = self.names.get(key)
        if name is None:
            last = fragment.rsplit("/", 1)[-1] or "root"
            stem = re.sub(r"[^A-Za-z0-9_.-]", "_", last)[:40]
            name = f"{stem}-{len(self.names) + 1}"
            self.names[key] = name
            self.origins[name] = "#" + fragment
            self.defs[name] = {}  # placeholder: recursion ends here
            self.defs[name] = self.schema(target, mode, "#" + fragment)
        return {"$ref": f"#/$defs/{name}"}

    # schemas ---------------------------------------------------------------------------
    def _child(self, mode: str, kind: str) -> str:
        if mode == LOOSE or kind == "loose":
            return LOOSE
        return CLOSED if kind == "new" else OPEN

    def _subschema(self, value: Any, mode: str, where: str) -> Any:
        if value is False and self.false_as_not:
            return {"not": {}}
        return self.schema(value, mode, where)

    def schema(self, node: Any, mode: str, where: str) -> Any:
        if isinstance(node, bool):
            return {"not": {}} if node is False and self.false_as_not else node
        if not isinstance(node, dict):
            raise ContractError(
                f"the schema at {where} is {with_article(json_type(node))}, not an object"
            )
        if isinstance(node.get("$ref"), str):
            siblings = set(node) - {"$ref"} - _ANNOTATIONS - _DROPPED
            siblings = {k for k in siblings if not k.startswith("x-")}
            if self.oas30 or not siblings:
                out = self.ref(node["$ref"], mode, where)
                if self.oas30 and node.get("nullable") is True:
                    out = {"anyOf": [dict(_NULL), out], NULLABLE_MARK: True}
                return out
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str) or key.startswith("x-") or key in _DROPPED:
                continue
            at = f"{where}/{key}"
            if key in ("properties", "patternProperties", "dependentSchemas"):
                if not isinstance(value, dict):
                    raise ContractError(f"{key} at {where} is not an object")
                kind = "inplace" if key == "dependentSchemas" else "new"
                out[key] = {
                    name: self._subschema(sub, self._child(mode, kind), f"{at}/{name}")
                    for name, sub in value.items()
                }
            elif key in _INPLACE_LISTS:
                if not isinstance(value, list) or not value:
                    raise ContractError(f"{key} at {where} is not a non-empty list")
                if key == "oneOf":
                    self.has_one_of = True
                out[key] = [
                    self._subschema(sub, self._child(mode, "inplace"), f"{at}/{i}")
                    for i, sub in enumerate(value)
                ]
            elif key in _INPLACE_SINGLE:
                out[key] = self._subschema(value, self._child(mode, "inplace"), at)
            elif key in ("not", "if"):
                out[key] = self._subschema(value, LOOSE, at)
            elif key == "prefixItems" or (key == "items" and isinstance(value, list)):
                if not isinstance(value, list):
                    raise ContractError(f"{key} at {where} is not a list")
                out["prefixItems"] = [
                    self._subschema(sub, self._child(mode, "new"), f"{at}/{i}")
                    for i, sub in enumerate(value)
                ]
            elif key in _CHILD_SINGLE:
                if isinstance(value, bool) and key in (
                    "additionalProperties",
                    "unevaluatedProperties",
                ):
                    out[key] = value
                else:
                    out[key] = self._subschema(value, self._child(mode, "new"), at)
            elif key in ("$ref", "$dynamicRef"):  # 3.1, beside other keywords: in place
                out["$ref"] = self.ref(value, self._child(mode, "inplace"), where)["$ref"]
            elif self.oas30 and key in ("nullable", "exclusiveMinimum", "exclusiveMaximum"):
                continue  # rewritten below
            else:
                out[key] = value
        if self.oas30:
            self._oas30_numbers(node, out)
            self._skip_write_only(node, out, where)
        if mode == CLOSED and not {"additionalProperties", "unevaluatedProperties"} & out.keys():
            self._close(node, out)
        if self.oas30 and node.get("nullable") is True:
            out = self._nullable(out)
        return out

    def _oas30_numbers(self, node: dict, out: dict) -> None:
        for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            flag = node.get(exclusive)
            if flag is True and bound in node:
                out[exclusive] = node[bound]
                out.pop(bound, None)
            elif isinstance(flag, int | float) and not isinstance(flag, bool):
                out[exclusive] = flag  # already the 3.1 form; tolerated

    def _skip_write_only(self, node: dict, out: dict, where: str) -> None:
        required = node.get("required")
        properties = node.get("properties")
        if not isinstance(required, list) or not isinstance(properties, dict):
            return
        kept = []
        for name in required:
            prop = properties.get(name) if isinstance(name, str) else None
            try:
                prop = _deref(self.document, prop, f"{where}/properties/{name}")
            except ContractError:
                prop = None
            if not (isinstance(prop, dict) and prop.get("writeOnly") is True):
                kept.append(name)
        if len(kept) != len(required):
            out["required"] = kept

    def _close(self, node: dict, out: dict) -> None:
        inplace = any(k in out for k in (*_INPLACE_LISTS, *_INPLACE_SINGLE, "$ref"))
        inplace = inplace or "dependentSchemas" in out
        own = "properties" in node or "patternProperties" in node
        if not inplace:
            if own:
                out["additionalProperties"] = False
                out[STRICT_MARK] = True
        elif own or self._declares(node, set()):
            out["unevaluatedProperties"] = False
            out[STRICT_MARK] = True

    def _declares(self, node: Any, seen: set[int]) -> bool:
        """Does this schema (or a branch evaluated in place) declare properties?"""
        if not isinstance(node, dict) or id(node) in seen or len(seen) > 10_000:
            return False
        seen.add(id(node))
        if "properties" in node or "patternProperties" in node:
            return True
        if isinstance(node.get("$ref"), str):
            try:
                target, _ = _resolve(self.document, node["$ref"], "a $ref")
            except ContractError:
                return False
            if self._declares(target, seen):
                return True
            if self.oas30:
                return False
        branches: list[Any] = []
        for key in _INPLACE_LISTS:
            if isinstance(node.get(key), list):
                branches.extend(node[key])
        branches.extend(node.get(key) for key in _INPLACE_SINGLE)
        if isinstance(node.get("dependentSchemas"), dict):
            branches.extend(node["dependentSchemas"].values())
        return any(self._declares(b, seen) for b in branches)

    def _nullable(self, out: dict) -> dict:
        composed = any(k in out for k in (*_INPLACE_LISTS, "not", "$ref", "const", "if"))
        kind = out.get("type")
        if isinstance(kind, str | list) and not composed:
            types = [kind] if isinstance(kind, str) else list(kind)
            if "null" not in types:
                types.append("null")
            out["type"] = types
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
            return out
        return {"anyOf": [dict(_NULL), out], NULLABLE_MARK: True}


def compile_schema(
    document: dict, schema: Any, *, openapi_version: str, strict: bool, false_as_not: bool = False
) -> tuple[dict, dict[str, str], bool]:
    """(self-contained 2020-12 schema, def name -> origin, has oneOf) for a response schema."""
    compiler = _Compiler(document, oas30=_is_oas30(openapi_version), false_as_not=false_as_not)
    body = compiler.schema(schema, CLOSED if strict else LOOSE, "the response schema")
    root: dict[str, Any] = {"$schema": DRAFT_2020_12}
    if isinstance(body, bool):
        root["allOf"] = [body]
    else:
        root.update(body)
    if compiler.defs:
        root["$defs"] = compiler.defs
    return root, compiler.origins, compiler.has_one_of


# --------------------------------------------------------------------------------------
# Backends: raw errors normalised to one shape
# --------------------------------------------------------------------------------------


@dataclass
class _Raw:
    tokens: tuple  # instance path
    keyword: str  # the failing keyword; "false" for a false schema
    instance: Any
    value: Any  # the keyword's value in the schema
    node: Any  # the schema object holding the keyword
    missing: list | None = None  # required / dependentRequired
    unexpected: list | None = None  # additionalProperties / unevaluatedProperties
    branches: list | None = None  # oneOf / anyOf: the errors of each alternative
    multiple: bool = False  # oneOf: more than one alternative matched


def _real_tokens(instance: Any, path: Iterable[Any]) -> tuple:
    """jsonschema-rs reports keys that look like numbers as ints; map them back to real keys."""
    tokens: list[Any] = []
    node = instance
    for seg in path:
        if isinstance(node, dict):
            key = seg if isinstance(seg, str) else str(seg)
            tokens.append(key)
            node = node.get(key)
        elif isinstance(node, list) and isinstance(seg, int):
            tokens.append(seg)
            node = node[seg] if 0 <= seg < len(node) else None
        else:
            tokens.append(seg)
            node = None
    return tuple(tokens)


def _walk(root: Any, path: Iterable[Any]) -> Any:
    node = root
    for seg in path:
        if isinstance(node, dict):
            node = node.get(seg if isinstance(seg, str) else str(seg))
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            node = node[seg]
        else:
            return None
    return node


def _missing_required(instance: Any, required: Any) -> list:
    if not isinstance(instance, dict) or not isinstance(required, list):
        return []
    return [name for name in required if name not in instance]


def _missing_dependent(instance: Any, value: Any) -> list:
    if not isinstance(instance, dict) or not isinstance(value, dict):
        return []
    missing = []
    for trigger, names in value.items():
        if trigger in instance and isinstance(names, list):
            missing += [n for n in names if n not in instance and n not in missing]
    return missing


class _RsBackend:
    name = "jsonschema-rs"

    def __init__(self, root: dict):
        self.root = root
        try:
            self.validator = _rs.Draft202012Validator(root, validate_formats=True, offline=True)
        except Exception as exc:  # jsonschema_rs.ValidationError or ReferencingError
            raise _SchemaProblem(str(exc), list(getattr(exc, "instance_path", []) or []))

    def is_valid(self, instance: Any) -> bool:
        return self.validator.is_valid(instance)

    def errors(self, instance: Any) -> Iterable[_Raw]:
        for error in self.validator.iter_errors(instance):
            yield self._raw(error, instance)

    def _raw(self, error: Any, instance: Any) -> _Raw:
        kind = error.kind
        kind_name = type(kind).__name__
        tokens = _real_tokens(instance, error.instance_path)
        schema_path = list(error.schema_path)
        if kind_name == "FalseSchema":
            raw = _Raw(tokens, "false", error.instance, False, None)
        else:
            keyword = str(schema_path[-1]) if schema_path else ""
            node = _walk(self.root, schema_path[:-1])
            value = node.get(keyword) if isinstance(node, dict) else None
            raw = _Raw(tokens, keyword, error.instance, value, node)
        if kind_name == "Required":
            raw.missing = [kind.property]
        elif kind_name in ("AdditionalProperties", "UnevaluatedProperties"):
            raw.unexpected = [str(name) for name in kind.unexpected]
        elif kind_name in ("OneOfNotValid", "AnyOf"):
            raw.branches = [[self._raw(e, instance) for e in branch] for branch in kind.context]
        elif kind_name == "OneOfMultipleValid":
            raw.multiple = True
        return raw


class _SchemaProblem(Exception):
    def __init__(self, message: str, path: list):
        super().__init__(message)
        self.message = message
        self.path = path


def _refuse_retrieval(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


_EMAIL_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_EMAIL_RE = re.compile(
    rf'(?:{_EMAIL_LOCAL}|"(?:[^"\\\r\n]|\\.)+")@'
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
)
_IDN_EMAIL_RE = re.compile(r"[^\s@\"]+@[^\s@\"]+")
_URI_CHARS = r"[^\s<>\"{}|\\^`]*"
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:" + _URI_CHARS)
_URI_REFERENCE_RE = re.compile(_URI_CHARS)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _is_email(value: Any) -> bool:
    return not isinstance(value, str) or bool(_EMAIL_RE.fullmatch(value))


def _is_idn_email(value: Any) -> bool:
    return not isinstance(value, str) or bool(_IDN_EMAIL_RE.fullmatch(value))


def _is_uri(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_URI_RE.fullmatch(value)) and not _BAD_ESCAPE.search(value)


def _is_uri_reference(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_URI_REFERENCE_RE.fullmatch(value)) and not _BAD_ESCAPE.search(value)


def _is_hostname(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    return all(_HOSTNAME_LABEL.fullmatch(label) for label in name.split("."))


@lru_cache(maxsize=1)
def _py_format_checker() -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
    for name, func in (
        ("email", _is_email),
        ("idn-email", _is_idn_email),
        ("uri", _is_uri),
        ("iri", _is_uri),
        ("uri-reference", _is_uri_reference),
        ("iri-reference", _is_uri_reference),
        ("hostname", _is_hostname),
    ):
        checker.checks(name)(func)
    return checker


_UNEXPECTED_RE = re.compile(r"\((.*) (?:was|were) unexpected\)$", re.DOTALL)


def _parse_unexpected(message: str) -> list[str]:
    match = _UNEXPECTED_RE.search(message)
    if not match:
        return []
    try:
        names = ast.literal_eval("[" + match.group(1) + "]")
    except (ValueError, SyntaxError):
        return []
    return [str(n) for n in names]


def _additional(instance: Any, node: Any) -> list[str]:
    if not isinstance(instance, dict) or not isinstance(node, dict):
        return []
    properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
    patterns = (
        node.get("patternProperties") if isinstance(node.get("patternProperties"), dict) else {}
    )
    extras = []
    for name in instance:
        if name in properties:
            continue
        if any(re.search(p, name) for p in patterns):
            continue
        extras.append(name)
    return extras


class _PyBackend:
    name = "jsonschema"

    def __init__(self, root: dict):
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError
        from referencing import Registry

        try:
            Draft202012Validator.check_schema(root)
        except SchemaError as exc:
            raise _SchemaProblem(exc.message, list(exc.absolute_path))
        self.validator = Draft202012Validator(
            root,
            registry=Registry(retrieve=_refuse_retrieval),
            format_checker=_py_format_checker(),
        )

    def is_valid(self, instance: Any) -> bool:
        return self.validator.is_valid(instance)

    def errors(self, instance: Any) -> Iterable[_Raw]:
        for error in self.validator.iter_errors(instance):
            yield self._raw(error)

    def _raw(self, error: Any) -> _Raw:
        keyword = error.validator
        value = error.validator_value
        node = error.schema if isinstance(error.schema, dict) else None
        if keyword is None or (keyword == "not" and value == {}):
            keyword, value = "false", False
        raw = _Raw(tuple(error.absolute_path), str(keyword), error.instance, value, node)
        if keyword == "required":
            raw.missing = _missing_required(error.instance, value)
        elif keyword == "dependentRequired":
            raw.missing = _missing_dependent(error.instance, value)
        elif keyword == "additionalProperties" and value is False:
            raw.unexpected = _additional(error.instance, node)
        elif keyword == "unevaluatedProperties" and value is False:
            raw.unexpected = _parse_unexpected(error.message)
        elif keyword in ("oneOf", "anyOf") and isinstance(value, list):
            if error.context:
                branches: list[list[_Raw]] = [[] for _ in value]
                for sub in error.context:
                    index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
                    if isinstance(index, int) and 0 <= index < len(branches):
                        branches[index].append(self._raw(sub))
                raw.branches = branches
            elif keyword == "oneOf":
                raw.multiple = True
        return raw


# --------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------

_FORMAT_NAMES = {
    "email": "an e-mail address",
    "idn-email": "an e-mail address",
    "date-time": "an RFC 3339 date-time",
    "date": "a date (YYYY-MM-DD)",
    "time": "an RFC 3339 time",
    "duration": "an ISO 8601 duration",
    "uuid": "a UUID",
    "uri": "a URI",
    "iri": "an IRI",
    "uri-reference": "a URI reference",
    "iri-reference": "an IRI reference",
    "uri-template": "a URI template",
    "hostname": "a hostname",
    "idn-hostname": "a hostname",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "regex": "a regular expression",
    "json-pointer": "a JSON pointer",
    "relative-json-pointer": "a relative JSON pointer",
}


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _expected_types(value: Any) -> str:
    types = [value] if isinstance(value, str) else [str(t) for t in value or []]
    types = sorted(types, key=lambda t: (t == "null", t))
    return _or_list([with_article(t) for t in types]) or "another type"


def _got(instance: Any) -> str:
    kind = json_type(instance)
    if kind in ("object", "array", "null"):
        return f"got {with_article(kind)}"
    return f"got {with_article(kind)} ({_show(instance)})"


def _options(values: Any) -> str:
    values = list(values) if isinstance(values, list | tuple) else [values]
    shown = ", ".join(_show(v) for v in values[:12])
    return shown + (", …" if len(values) > 12 else "")


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return _show(value)


def _length(instance: Any) -> int:
    try:
        return len(instance)
    except TypeError:
        return 0


class _Formatter:
    def __init__(self, root: dict):
        self.root = root

    def message(self, raw: _Raw) -> tuple[str, str]:
        """(keyword, message) for one raw error that is not required/unexpected."""
        at = f"`{_jsonpath(raw.tokens)}`"
        kw, value, inst = raw.keyword, raw.value, raw.instance
        if kw == "type":
            return kw, f"{at}: expected {_expected_types(value)}, {_got(inst)}"
        if kw == "enum":
            return kw, f"{at}: {_show(inst)} is not one of {_options(value)}"
        if kw == "const":
            return kw, f"{at}: expected {_show(value)}, got {_show(inst)}"
        if kw == "format":
            what = _FORMAT_NAMES.get(str(value), f"a valid {value!r}")
            return kw, f"{at}: {_show(inst)} is not {what}"
        if kw == "pattern":
            return kw, f"{at}: {_show(inst)} does not match the pattern {_show(value)}"
        if kw == "minLength":
            return kw, f"{at}: {_show(inst)} is shorter than {_plural(value, 'character')}"
        if kw == "maxLength":
            return kw, f"{at}: {_show(inst)} is longer than {_plural(value, 'character')}"
        if kw == "minimum":
            return kw, f"{at}: {_number(inst)} is less than the minimum {_number(value)}"
        if kw == "maximum":
            return kw, f"{at}: {_number(inst)} is greater than the maximum {_number(value)}"
        if kw == "exclusiveMinimum":
            return kw, f"{at}: {_number(inst)} is not greater than {_number(value)}"
        if kw == "exclusiveMaximum":
            return kw, f"{at}: {_number(inst)} is not less than {_number(value)}"
        if kw == "multipleOf":
            return kw, f"{at}: {_number(inst)} is not a multiple of {_number(value)}"
        if kw == "minItems":
            n = _plural(_length(inst), "item")
            return kw, f"{at}: has {n}, at least {value} expected"
        if kw == "maxItems":
            n = _plural(_length(inst), "item")
            return kw, f"{at}: has {n}, at most {value} allowed"
        if kw == "minProperties":
            n = _plural(_length(inst), "property").replace("propertys", "properties")
            return kw, f"{at}: has {n}, at least {value} expected"
        if kw == "maxProperties":
            n = _plural(_length(inst), "property").replace("propertys", "properties")
            return kw, f"{at}: has {n}, at most {value} allowed"
        if kw == "uniqueItems":
            return kw, f"{at}: items are not unique"
        if kw in ("contains", "minContains", "maxContains"):
            return kw, f"{at}: the items do not satisfy '{kw}'"
        if kw == "false":
            return kw, f"{at} is not allowed here (the schema allows no value)"
        if kw == "not":
            return kw, f"{at} matches a schema it must not match ('not')"
        if kw == "unevaluatedItems":
            return kw, f"{at}: has more items than the schema allows"
        if kw == "propertyNames":
            return kw, f"{at}: a property name is not allowed by 'propertyNames'"
        if kw in ("oneOf", "anyOf"):
            return kw, self._alternatives(raw, at)
        return kw, f"{at}: fails the '{kw}' rule of the schema"

    def _alternatives(self, raw: _Raw, at: str) -> str:
        kw = raw.keyword
        count = len(raw.value) if isinstance(raw.value, list) else 0
        if raw.multiple:
            return f"{at} matches more than one alternative ('oneOf' allows exactly one)"
        base = f"{at} matches none of the {count} alternatives ({kw})"
        branches = [b for b in (raw.branches or []) if b]
        if not branches:
            return base
        discriminator = raw.node.get("discriminator") if isinstance(raw.node, dict) else None
        prop = discriminator.get("propertyName") if isinstance(discriminator, dict) else None

        def rank(branch: list[_Raw]) -> tuple[int, int, int]:
            picked_other = 0
            if isinstance(prop, str):
                target = (*raw.tokens, prop)
                picked_other = int(any(r.tokens == target for r in branch))
            # an alternative of another type altogether is the least likely one
            other_type = int(all(r.keyword == "type" and r.tokens == raw.tokens for r in branch))
            return picked_other, other_type, len(self.explain(branch))

        best = min(branches, key=rank)
        messages = [v.message for _, v in self.explain(best)]
        detail = "; ".join(messages[:3])
        if len(messages) > 3:
            detail += f"; and {len(messages) - 3} more"
        return f"{base}; closest: {detail}"

    def explain(self, raws: list[_Raw]) -> list[tuple[tuple, Violation]]:
        """(sort key, violation) pairs for raw errors, filtered and deduplicated."""
        out: list[tuple[tuple, Violation]] = []
        seen: set[tuple[str, str, str]] = set()

        def add(tokens: tuple, keyword: str, message: str) -> None:
            path = _jsonpath(tokens)
            key = (path, keyword, message)
            if key not in seen:
                seen.add(key)
                out.append(((_sort_key(tokens), message), Violation(path, keyword, message)))

        for raw in raws:
            if raw.missing is not None:
                for name in raw.missing:
                    child = (*raw.tokens, name)
                    if raw.keyword == "dependentRequired":
                        triggers = [
                            t
                            for t, names in (raw.value or {}).items()
                            if isinstance(names, list)
                            and name in names
                            and t in (raw.instance or {})
                        ]
                        because = f" because {_show(triggers[0])} is present" if triggers else ""
                        add(
                            child,
                            raw.keyword,
                            f"`{_jsonpath(child)}` is missing (required{because})",
                        )
                    else:
                        add(child, "required", f"`{_jsonpath(child)}` is missing (required)")
            elif raw.unexpected is not None:
                names = raw.unexpected
                if raw.keyword == "unevaluatedProperties":
                    others = [r.tokens for r in raws if r is not raw]
                    names = self._really_unexpected(raw, others)
                strict = isinstance(raw.node, dict) and raw.node.get(STRICT_MARK) is True
                for name in names:
                    child = (*raw.tokens, name)
                    suffix = " (strict mode)" if strict else ""
                    keyword = "strict" if strict else raw.keyword
                    add(
                        child,
                        keyword,
                        f"`{_jsonpath(child)}` is not declared in the schema{suffix}",
                    )
            elif self._is_nullable_wrapper(raw):
                # "expected null" says nothing useful: explain the schema that was not null
                for order, violation in self.explain(raw.branches[1]):
                    key = (violation.path, violation.keyword, violation.message)
                    if key not in seen:
                        seen.add(key)
                        out.append((order, violation))
            else:
                keyword, message = self.message(raw)
                add(raw.tokens, keyword, message)
        return out

    @staticmethod
    def _is_nullable_wrapper(raw: _Raw) -> bool:
        return (
            raw.keyword == "anyOf"
            and isinstance(raw.node, dict)
            and raw.node.get(NULLABLE_MARK) is True
            and raw.instance is not None
            and bool(raw.branches)
            and len(raw.branches) == 2
            and bool(raw.branches[1])
        )

    def _really_unexpected(self, raw: _Raw, problem_paths: list[tuple]) -> list[str]:
        """unevaluatedProperties also names properties of an alternative that failed for
        another reason; when something else is wrong inside this object, keep only the
        properties that no branch declares."""
        depth = len(raw.tokens)
        troubled = [p for p in problem_paths if p[:depth] == raw.tokens]
        if not troubled:
            return raw.unexpected
        names, patterns, is_open = self._declared(raw.node, set())
        if is_open:
            return []
        kept = []
        for name in raw.unexpected:
            if name in names or any(_safe_search(p, name) for p in patterns):
                continue
            if any(p[: depth + 1] == (*raw.tokens, name) for p in troubled):
                continue
            kept.append(name)
        return kept

    def _declared(self, node: Any, seen: set[int]) -> tuple[set, list, bool]:
        names: set[str] = set()
        patterns: list[str] = []
        if not isinstance(node, dict) or id(node) in seen:
            return names, patterns, False
        seen.add(id(node))
        is_open = False
        if isinstance(node.get("properties"), dict):
            names.update(node["properties"])
        if isinstance(node.get("patternProperties"), dict):
            patterns.extend(node["patternProperties"])
        branches: list[Any] = []
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/"):
            branches.append(self.root.get("$defs", {}).get(node["$ref"][len("#/$defs/") :]))
        for key in _INPLACE_LISTS:
            if isinstance(node.get(key), list):
                branches.extend(node[key])
        branches.extend(node.get(key) for key in _INPLACE_SINGLE)
        if isinstance(node.get("dependentSchemas"), dict):
            branches.extend(node["dependentSchemas"].values())
        for branch in branches:
            if not isinstance(branch, dict):
                continue
            for key in ("additionalProperties", "unevaluatedProperties"):
                if key in branch and branch[key] is not False:
                    is_open = True
            sub_names, sub_patterns, sub_open = self._declared(branch, seen)
            names |= sub_names
            patterns += sub_patterns
            is_open = is_open or sub_open
        return names, patterns, is_open


def _safe_search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


# --------------------------------------------------------------------------------------
# The validator
# --------------------------------------------------------------------------------------


class SchemaValidator:
    """A compiled response schema. Thread-safe; compile once, use for many bodies."""

    def __init__(self, schema: dict, backend: Any, companion: SchemaValidator | None = None):
        self.schema = schema  # the compiled, self-contained 2020-12 schema
        self._backend = backend
        self._formatter = _Formatter(schema)
        self._companion = companion  # the non-strict validator, run too when oneOf is involved

    @property
    def backend(self) -> str:
        return self._backend.name

    def is_valid(self, instance: Any) -> bool:
        try:
            if not self._backend.is_valid(instance):
                return False
        except (RecursionError, ValueError):  # a body nested beyond the validator's limits
            return False
        return self._companion is None or self._companion.is_valid(instance)

    def _pairs(self, instance: Any) -> tuple[list[tuple[tuple, Violation]], bool]:
        raws = list(islice(self._backend.errors(instance), MAX_RAW_ERRORS + 1))
        more = len(raws) > MAX_RAW_ERRORS
        pairs = self._formatter.explain(raws[:MAX_RAW_ERRORS])
        if self._companion is not None:
            extra, extra_more = self._companion._pairs(instance)
            seen = {(v.path, v.keyword, v.message) for _, v in pairs}
            pairs += [(k, v) for k, v in extra if (v.path, v.keyword, v.message) not in seen]
            more = more or extra_more
        return pairs, more

    def violations(self, instance: Any, limit: int = MAX_VIOLATIONS) -> list[Violation]:
        """What is wrong with ``instance``, in document order, at most ``limit`` (plus one last
        entry saying how many more were left out)."""
        if self.is_valid(instance):
            return []
        try:
            pairs, more = self._pairs(instance)
        except (RecursionError, ValueError):
            message = "`$`: the body could not be validated (it nests too deeply)"
            return [Violation("$", "depth", message)]
        pairs.sort(key=lambda pair: pair[0])
        result = [v for _, v in pairs[:limit]]
        hidden = len(pairs) - limit
        if hidden > 0 or (more and len(pairs) >= limit):
            count = f"{hidden}" if hidden > 0 and not more else "more"
            result.append(
                Violation("$", "limit", f"… {count} more violation(s) not shown (first {limit})")
            )
        return result


def _schema_problem(exc: _SchemaProblem, origins: dict[str, str]) -> ContractError:
    path = list(exc.path)
    where = "the response schema"
    if len(path) >= 2 and path[0] == "$defs" and str(path[1]) in origins:
        where = origins[str(path[1])] + json_pointer(path[2:])
    elif path:
        where = f"the response schema at {json_pointer(path)}"
    first = exc.message.strip().splitlines()[0] if exc.message.strip() else "invalid"
    return ContractError(f"invalid schema at {where}: {_cut(first, 300)}")


def _backend_class(backend: str | None) -> Any:
    if backend in (None, "rs", "jsonschema-rs") and _rs is not None:
        return _RsBackend
    if backend in (None, "python", "jsonschema"):
        return _PyBackend
    raise ValueError(f"unknown validator backend {backend!r}")


def compile_response_validator(
    document: dict,
    schema: Any,
    *,
    openapi_version: str,
    strict: bool,
    backend: str | None = None,
) -> SchemaValidator:
    """Compile a response schema taken from ``document`` (see the module doc for the rules).

    ``openapi_version`` is the document's ``openapi`` value ("3.0.3", "3.1.0"). ``backend``
    forces "rs" or "python" (tests); by default jsonschema-rs when installed. Raises
    :class:`ContractError` for an unresolvable/remote ``$ref`` or an invalid schema.
    """
    cls = _backend_class(backend)
    false_as_not = cls is _PyBackend  # jsonschema loses the path of a false-schema error

    def build(strict_mode: bool) -> tuple[SchemaValidator, bool]:
        try:
            root, origins, has_one_of = compile_schema(
                document,
                schema,
                openapi_version=openapi_version,
                strict=strict_mode,
                false_as_not=false_as_not,
            )
            compiled = cls(root)
        except _SchemaProblem as exc:
            raise _schema_problem(exc, origins)
        except RecursionError:
            raise ContractError("the response schema nests too deeply to compile")
        return SchemaValidator(root, compiled), has_one_of

    validator, has_one_of = build(strict)
    if strict and has_one_of:
        loose, _ = build(False)
        validator._companion = loose
    return validator


_cache: OrderedDict[Hashable, SchemaValidator | ContractError] = OrderedDict()
_cache_lock = threading.Lock()


def cached_validator(
    cache_key: Hashable,
    document: dict,
    schema: Any,
    *,
    openapi_version: str,
    strict: bool,
) -> SchemaValidator:
    """:func:`compile_response_validator`, compiled once per key (least recently used of
    :data:`VALIDATOR_CACHE_SIZE` dropped). ``cache_key`` must identify the spec version and the
    schema, e.g. ``(spec.pk, template, method, status, media type)``; ``strict`` is added to it.
    A ContractError is remembered too, so a broken spec is not recompiled on every request."""
    key = (cache_key, bool(strict), str(openapi_version))
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
    if found is None:
        try:
            found = compile_response_validator(
                document, schema, openapi_version=openapi_version, strict=strict
            )
        except ContractError as exc:
            found = exc
        with _cache_lock:
            _cache[key] = found
            while len(_cache) > VALIDATOR_CACHE_SIZE:
                _cache.popitem(last=False)
    if isinstance(found, ContractError):
        raise ContractError(str(found))
    return found


def clear_validator_cache() -> None:
    with _cache_lock:
        _cache.clear()


# --------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------

ASSERTION_OPS = ("equals", "exists", "absent", "matches", "type", "length")
ASSERTION_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
_ASSERTION_KEYS = frozenset({"path", "op", "value"})
_HEADER_PREFIX = "header:"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
MAX_ASSERTION_DETAILS = 20


@lru_cache(maxsize=1024)
def _jsonpath_expression(path: str) -> Any:
    from jsonpath_ng.exceptions import JSONPathError
    from jsonpath_ng.ext import parse

    if "=~" in path:
        raise ValueError(
            f"regular-expression filters (=~) are not allowed in JSONPath {path!r}; "
            "use the 'matches' op"
        )
    try:
        return parse(path)
    except (JSONPathError, ValueError, TypeError, AttributeError, IndexError) as exc:
        detail = str(exc).strip() or type(exc).__name__
        raise ValueError(f"invalid JSONPath {path!r}: {detail}")


def _header_name(path: str) -> str | None:
    if path[: len(_HEADER_PREFIX)].lower() == _HEADER_PREFIX:
        return path[len(_HEADER_PREFIX) :].strip()
    return None


def _is_json_value(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v, depth + 1) for k, v in value.items())
    return False


def validate_assertion(spec: Any) -> None:
    """Raises ValueError saying what is wrong with an assertion (used when a case is saved)."""
    if not isinstance(spec, dict):
        raise ValueError("an assertion must be an object with path, op and (usually) value")
    unknown = sorted(str(k) for k in spec if k not in _ASSERTION_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}; use path, op and value")
    path = spec.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ValueError("path is missing: give a JSONPath such as $.results[0].id or header:Name")
    if len(path) > MAX_PATH_CHARS:
        raise ValueError(f"path is longer than {MAX_PATH_CHARS} characters")
    op = spec.get("op")
    if op not in ASSERTION_OPS:
        raise ValueError(f"unknown op {op!r}; use one of {', '.join(ASSERTION_OPS)}")
    header = _header_name(path.strip())
    xpath = xml_bodies.xpath_of(path.strip())
    if header is not None:
        if not _HEADER_NAME.fullmatch(header):
            raise ValueError(f"invalid header name {header!r} in {path!r}")
    elif xpath is not None:
        xml_bodies.validate_xpath(xpath)
    else:
        _jsonpath_expression(path.strip())
    has_value = "value" in spec
    value = spec.get("value")
    if op in ("exists", "absent"):
        if value is not None:
            raise ValueError(f"op {op!r} takes no value")
        return
    if not has_value:
        raise ValueError(f"op {op!r} needs a value")
    if op == "equals":
        if not _is_json_value(value):
            raise ValueError(
                "value must be a JSON value (string, number, boolean, null, list, object)"
            )
    elif op == "matches":
        if not isinstance(value, str) or not value:
            raise ValueError(
                "op 'matches' needs a regular expression (a non-empty string) as value"
            )
        if len(value) > MAX_PATTERN_CHARS:
            raise ValueError(
                f"the regular expression is longer than {MAX_PATTERN_CHARS} characters"
            )
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {_cut(value)!r}: {exc}")
    elif op == "type":
        if value not in ASSERTION_TYPES:
            raise ValueError(f"unknown type {value!r}; use one of {', '.join(ASSERTION_TYPES)}")
    elif op == "length" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ValueError("op 'length' needs a whole number of zero or more as value")


def assertion_name(spec: Any) -> str:
    """``assert $.results[0].id equals 'C-10001'`` (values shown short)."""
    if not isinstance(spec, dict):
        return "assert (invalid)"
    path = spec.get("path")
    path = path.strip() if isinstance(path, str) else repr(path)
    op = spec.get("op")
    name = f"assert {_cut(path, 200)} {op}"
    if op in ("exists", "absent"):
        return name
    value = spec.get("value")
    if op == "type" and isinstance(value, str):
        return f"{name} {value}"
    return f"{name} {_show(value)}"


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1; lists and objects compared deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _is_type(value: Any, expected: str) -> bool:
    actual = json_type(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == expected


def _datum_tokens(datum: Any) -> tuple | None:
    from jsonpath_ng.jsonpath import Fields, Index, Root, This

    tokens: list[Any] = []
    node = datum
    while node is not None:
        step = node.path
        if isinstance(step, Fields) and len(step.fields) == 1:
            tokens.append(step.fields[0])
        elif isinstance(step, Index) and len(step.indices) == 1:
            tokens.append(step.indices[0])
        elif not isinstance(step, Root | This):
            return None
        node = node.context
    return tuple(reversed(tokens))


def _header_values(headers: Any, name: str) -> list[str]:
    values: list[str] = []
    if not headers:
        return values
    items = headers.items() if hasattr(headers, "items") else headers
    wanted = name.lower()
    for key, value in items:
        if str(key).lower() != wanted:
            continue
        if isinstance(value, list | tuple):
            values.extend(str(v) for v in value)
        else:
            values.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return [", ".join(values)] if values else []


def _check_value(op: str, expected: Any, actual: Any) -> str | None:
    """None if ``actual`` satisfies the assertion, else what is wrong with it."""
    if op == "equals":
        if _json_equal(actual, expected):
            return None
        return f"{_show(actual)} does not equal {_show(expected)}"
    if op == "type":
        if _is_type(actual, expected):
            return None
        return f"{_show(actual)} is {with_article(json_type(actual))}, not {with_article(expected)}"
    if op == "matches":
        if isinstance(actual, int | float) and not isinstance(actual, bool):
            text = json.dumps(actual)
        elif isinstance(actual, str):
            text = actual
        else:
            return f"{_show(actual)} is {with_article(json_type(actual))}, not a string to match"
        if re.search(expected, text):
            return None
        return f"{_show(actual)} does not match {_show(expected)}"
    if op == "length":
        if not isinstance(actual, str | list | tuple | dict):
            return f"{_show(actual)} is {with_article(json_type(actual))}, which has no length"
        if len(actual) == expected:
            return None
        return f"{_show(actual)} has length {len(actual)}, not {expected}"
    return f"unknown op {op!r}"


def evaluate_assertion(spec: dict, body: Any, headers: Mapping | None) -> CheckResult:
    """Checks one assertion against a parsed JSON ``body`` (None: no JSON body) and the
    response ``headers``. Every value the path finds must satisfy it (``exists``: at least one
    found; ``absent``: none). Never raises: a bad assertion fails with the reason."""
    name = assertion_name(spec)
    try:
        validate_assertion(spec)
    except ValueError as exc:
        return CheckResult(name, False, f"invalid assertion: {exc}")
    path = spec["path"].strip()
    op = spec["op"]
    expected = spec.get("value")
    header = _header_name(path)
    xpath = xml_bodies.xpath_of(path)
    no_body = False
    if header is not None:
        found = [(f"header {header}", v) for v in _header_values(headers, header)]
        where = f"header {header}"
    elif xpath is not None:
        where = path
        if isinstance(body, xml_bodies.ET.Element):
            found = xml_bodies.find(body, xpath)
            if op == "equals" and not isinstance(expected, str):
                expected = _as_text(expected)  # XML holds text: 42 equals "42"
        else:
            found, no_body = [], True
    else:
        where = path
        if body is None:
            found, no_body = [], True
        else:
            try:
                matches = _jsonpath_expression(path).find(body)
            except Exception as exc:  # a filter comparing odd types, etc.
                return CheckResult(name, False, f"could not evaluate {path}: {_cut(str(exc), 200)}")
            found = []
            for match in matches:
                tokens = _datum_tokens(match)
                found.append((_jsonpath(tokens) if tokens is not None else path, match.value))
    missing_body = (
        " (the response has no XML body)" if xpath else " (the response has no JSON body)"
    )
    nothing = f"nothing at {where}" + (missing_body if no_body else "")
    if op == "exists":
        if found:
            return CheckResult(name, True, f"{where} exists: {_show(found[0][1])}")
        return CheckResult(name, False, nothing)
    if op == "absent":
        if not found:
            return CheckResult(name, True, nothing)
        return CheckResult(name, False, f"{found[0][0]} is present: {_show(found[0][1])}")
    if not found:
        return CheckResult(name, False, nothing)
    failures = []
    for location, actual in found:
        try:
            problem = _check_value(op, expected, actual)
        except (re.error, RecursionError) as exc:
            problem = f"could not be checked: {exc}"
        if problem is not None:
            failures.append(f"{location}: {problem}")
    if not failures:
        if len(found) == 1:
            return CheckResult(name, True, f"{found[0][0]} is {_show(found[0][1])}")
        return CheckResult(name, True, f"all {len(found)} values at {where} satisfy it")
    details = failures[:MAX_ASSERTION_DETAILS]
    if len(failures) > MAX_ASSERTION_DETAILS:
        details.append(f"… {len(failures) - MAX_ASSERTION_DETAILS} more")
    if len(found) == 1:
        return CheckResult(name, False, failures[0], details)
    return CheckResult(
        name, False, f"{len(failures)} of {len(found)} values fail: {failures[0]}", details
    )


def first_value(path: str, body: Any) -> Any:
    """The first value an assertion path finds in a parsed body (JSON, or XML for
    ``xpath:`` paths); None when it finds nothing."""
    path = path.strip()
    xpath = xml_bodies.xpath_of(path)
    if xpath is not None:
        if not isinstance(body, xml_bodies.ET.Element):
            return None
        found = xml_bodies.find(body, xpath)
        return found[0][1] if found else None
    if body is None:
        return None
    try:
        matches = _jsonpath_expression(path).find(body)
    except Exception:  # noqa: BLE001 - a filter comparing odd types finds nothing
        return None
    return matches[0].value if matches else None


# --------------------------------------------------------------------------------------
# Templating: {{name}} placeholders
# --------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")


class UndefinedVariable(ValueError):
    """A ``{{name}}`` placeholder names a variable that is not defined."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"undefined variable {{{{{name}}}}}")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, list | tuple | dict):
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _lookup(name: str, variables: Mapping) -> Any:
    if name not in variables:
        raise UndefinedVariable(name)
    return variables[name]


def _render_text(text: str, variables: Mapping) -> str:
    return PLACEHOLDER.sub(lambda m: _as_text(_lookup(m.group(1), variables)), text)


def render(value: Any, variables: Mapping) -> Any:
    """Fills ``{{name}}`` / ``{{ name }}`` placeholders in strings, recursively in dicts (keys
    too), lists and tuples. A string that is exactly one placeholder takes the variable's value
    with its type (``"{{count}}"`` with count=3 gives 3); inside text, strings and numbers are
    inserted as ``str()``, booleans, null, lists and objects as JSON (``true``, ``null``).
    Raises :class:`UndefinedVariable` for a name that is not in ``variables``."""
    variables = variables or {}
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            found = _lookup(whole.group(1), variables)
            return copy.deepcopy(found) if isinstance(found, dict | list) else found
        if "{{" not in value:
            return value
        return _render_text(value, variables)
    if isinstance(value, dict):
        rendered: dict = {}
        for key, item in value.items():
            new_key = _render_text(key, variables) if isinstance(key, str) else key
            if new_key in rendered:
                raise ValueError(f"two keys become {new_key!r} once variables are filled in")
            rendered[new_key] = render(item, variables)
        return rendered
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    if isinstance(value, tuple):
        return tuple(render(item, variables) for item in value)
    return value


def variables_in(value: Any) -> set[str]:
    """The names of the ``{{variables}}`` used anywhere in ``value`` (dict keys included)."""
    names: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "{{" in item:
                names.update(m.group(1) for m in PLACEHOLDER.finditer(item))
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return names


# --------------------------------------------------------------------------------------
# The other named checks
# --------------------------------------------------------------------------------------


def check_status_code(
    operation: dict | None, status: int, expected: Iterable[int] = (), *, strict: bool = False
) -> CheckResult:
    """The status is one the case expects, or else one the operation documents (exactly, by
    range, or — unless ``strict`` — through ``default``)."""
    expected = list(expected or ())
    if expected:
        ok = status in expected
        return CheckResult(STATUS_CODE, ok, f"{status}, expected {', '.join(map(str, expected))}")
    if operation is None:
        return CheckResult(
            STATUS_CODE, None, "no expected status and no spec operation to compare with"
        )
    responses = operation.get("responses") if isinstance(operation.get("responses"), dict) else {}
    documented = sorted(str(k) for k in responses)
    keys = {k.upper() for k in documented}
    listed = ", ".join(documented) or "none"
    if str(status) in keys:
        return CheckResult(STATUS_CODE, True, f"{status} is documented")
    if f"{str(status)[:1]}XX" in keys:
        return CheckResult(STATUS_CODE, True, f"{status} is documented by {str(status)[:1]}XX")
    if "DEFAULT" in keys and not strict:
        return CheckResult(STATUS_CODE, True, f"{status} is covered by the default response")
    return CheckResult(
        STATUS_CODE, False, f"{status} is not documented (the spec documents {listed})"
    )


def check_not_server_error(status: int) -> CheckResult:
    if status >= 500:
        return CheckResult(NOT_SERVER_ERROR, False, f"{status} is a server error")
    return CheckResult(NOT_SERVER_ERROR, True, f"{status}")


def check_max_latency(elapsed_ms: float, max_ms: float | None) -> CheckResult:
    if not max_ms:
        return CheckResult(MAX_LATENCY, None, "no maximum latency set")
    ok = elapsed_ms <= max_ms
    verdict = "within" if ok else "over"
    return CheckResult(
        MAX_LATENCY, ok, f"{elapsed_ms:.0f} ms, {verdict} the maximum of {max_ms:g} ms"
    )


def check_invalid_input_rejected(status: int) -> CheckResult:
    """A request with invalid input must get a 4xx other than 401/403 (those mean the
    credentials, not the input, were refused)."""
    ok = 400 <= status < 500 and status not in (401, 403)
    why = "rejected" if ok else "not rejected as invalid input"
    return CheckResult(INVALID_INPUT_REJECTED, ok, f"{status}: {why}")


def check_no_credentials_rejected(status: int) -> CheckResult:
    ok = status in (401, 403)
    why = "rejected" if ok else "expected 401 or 403"
    return CheckResult(NO_CREDENTIALS_REJECTED, ok, f"{status}: {why}")


def _media_matches(declared: str, actual: str) -> bool:
    if declared in (actual, "*/*"):
        return True
    if declared.endswith("/*"):
        return actual.startswith(declared[:-1])
    return False


def check_content_type(
    document: dict,
    operation: dict | None,
    status: int,
    content_type: str | None,
    *,
    has_body: bool = True,
) -> CheckResult:
    """The response's media type (parameters ignored) is one the spec declares for the status."""
    if operation is None:
        return CheckResult(CONTENT_TYPE, None, "no spec operation to compare with")
    try:
        key, response = _response_for(document, operation, status)
    except ContractError as exc:
        return CheckResult(CONTENT_TYPE, False, f"the spec is broken: {exc}")
    if response is None:
        return CheckResult(CONTENT_TYPE, None, f"no contract for status {status}")
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    declared = [_media_type(str(m)) for m in content]
    actual = _media_type(content_type)
    if not declared:
        if not has_body:
            return CheckResult(CONTENT_TYPE, True, f"no body, as the spec declares for {key}")
        return CheckResult(CONTENT_TYPE, None, f"the spec declares no body for {key}")
    if not actual:
        if not has_body:
            return CheckResult(CONTENT_TYPE, None, "no body and no content type")
        return CheckResult(CONTENT_TYPE, False, f"no Content-Type; expected {', '.join(declared)}")
    if any(_media_matches(m, actual) for m in declared):
        return CheckResult(CONTENT_TYPE, True, actual)
    return CheckResult(CONTENT_TYPE, False, f"{actual}; the spec declares {', '.join(declared)}")


def _header_value(raw: str, schema: dict) -> Any:
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    text = raw.strip()
    if "integer" in kinds and re.fullmatch(r"-?\d+", text):
        return int(text)
    if "number" in kinds:
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    return raw


def check_response_headers(
    document: dict,
    operation: dict | None,
    status: int,
    headers: Mapping | None,
    *,
    openapi_version: str | None = None,
) -> CheckResult:
    """Every header the spec marks ``required`` is present, and every declared header that is
    present fits its schema (numbers and booleans read from the text). Content-Type is left to
    :func:`check_content_type`, as OpenAPI says."""
    if operation is None:
        return CheckResult(RESPONSE_HEADERS, None, "no spec operation to compare with")
    try:
        key, response = _response_for(document, operation, status)
        if response is None:
            return CheckResult(RESPONSE_HEADERS, None, f"no contract for status {status}")
        declared = response.get("headers") if isinstance(response.get("headers"), dict) else {}
        if not declared:
            return CheckResult(RESPONSE_HEADERS, None, f"the spec declares no headers for {key}")
        problems: list[str] = []
        for name, header in declared.items():
            if str(name).lower() == "content-type":
                continue
            header = _deref(document, header, f"header {name} of the {key} response")
            if not isinstance(header, dict):
                continue
            values = _header_values(headers, str(name))
            if not values:
                if header.get("required") is True:
                    problems.append(f"{name} is missing (required)")
                continue
            schema = header.get("schema")
            if not isinstance(schema, dict):
                continue
            resolved = _deref(document, schema, f"the schema of header {name}")
            validator = compile_response_validator(
                document,
                schema,
                openapi_version=openapi_version or str(document.get("openapi", "3.0.3")),
                strict=False,
            )
            value = _header_value(values[0], resolved if isinstance(resolved, dict) else {})
            for violation in validator.violations(value, limit=3):
                text = violation.message.replace("`$`", f"header {name}", 1)
                problems.append(text)
    except ContractError as exc:
        return CheckResult(RESPONSE_HEADERS, False, f"the spec is broken: {exc}")
    if problems:
        return CheckResult(RESPONSE_HEADERS, False, problems[0], problems)
    return CheckResult(RESPONSE_HEADERS, True, f"the headers of {key} conform")


def check_response_schema(
    document: dict,
    operation: dict | None,
    status: int,
    content_type: str | None,
    body: Any,
    *,
    openapi_version: str,
    strict: bool,
    cache_key: Hashable | None = None,
) -> CheckResult:
    """The parsed JSON ``body`` fits the response schema; ``details`` are the violations as
    dicts (path, keyword, message). With a ``cache_key`` the validator is compiled once."""
    if operation is None:
        return CheckResult(RESPONSE_SCHEMA, None, "no spec operation to compare with")
    try:
        schema, reason = response_schema(document, operation, status, content_type)
        if schema is None:
            return CheckResult(RESPONSE_SCHEMA, False if "no contract" in reason else None, reason)
        if cache_key is None:
            validator = compile_response_validator(
                document, schema, openapi_version=openapi_version, strict=strict
            )
        else:
            validator = cached_validator(
                (cache_key, status, _media_type(content_type)),
                document,
                schema,
                openapi_version=openapi_version,
                strict=strict,
            )
        violations = validator.violations(body)
    except ContractError as exc:
        return CheckResult(RESPONSE_SCHEMA, False, f"the spec is broken: {exc}")
    mode = " (strict)" if strict else ""
    if not violations:
        return CheckResult(RESPONSE_SCHEMA, True, f"the body conforms{mode}")
    real = [v for v in violations if v.keyword != "limit"]
    first = real[0].message if real else violations[0].message
    count = f"{len(real)}+" if len(real) < len(violations) else f"{len(real)}"
    return CheckResult(
        RESPONSE_SCHEMA,
        False,
        f"{count} violation(s){mode}; first: {first}",
        [v.as_dict() for v in violations],
    )


def deref(document: dict, node: Any, where: str = "#") -> Any:
    """Public: follow local ``$ref`` objects to what they point at (ContractError when impossible)."""
    return _deref(document, node, where)
