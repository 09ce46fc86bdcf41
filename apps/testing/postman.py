"""Test cases imported from a Postman Collection v2.1, planned before they are applied.

Every request of the collection, in nested folders too, becomes one test case:

- name: the request's name; a name used twice in the file gets " (2)", " (3)"…; a case of
  the interface with the same name is changed, never duplicated. Cases of the interface that
  the collection does not name are left alone.
- tags: "postman" and the slugs of the folders the request sits in.
- path: relative to the endpoint's base URL. A leading ``{{baseUrl}}`` (any leading
  ``{{variable}}`` host) is dropped, a literal host too (with a warning); ``{{variables}}``
  stay (Pontis uses the same syntax) and Postman path variables (``:id``) become ``{{id}}``.
- query parameters and headers, disabled ones skipped.
- body: raw JSON becomes the JSON body when it parses (a ``{{variable}}`` outside a JSON
  string does not, so such a body is kept as text); raw XML becomes an XML body; other raw
  text a text body; urlencoded fields a form-encoded text body with its Content-Type;
  GraphQL a JSON body ``{"query", "variables"}``.
- variables: collection, then folder, then request variables (the inner one wins), plus
  the request's path variables — only those the request uses, so a collection's
  ``{{token}}`` is never copied into a case.
- auth (the request's own, else the nearest folder's, else the collection's): bearer, basic
  or API key auth that takes its secret from a ``{{variable}}`` means "the endpoint's
  credentials": the case sends them (Pontis attaches them itself). ``noauth`` means a case
  sent without credentials. Anything else — a literal secret, OAuth 2, digest… — is not
  imported: the case sends the endpoint's credentials and the plan says so in a warning. An
  explicit ``Authorization`` header is dropped for the same reason.
- scripts: ``prerequest`` and ``test`` scripts (the collection's and folders' too) are kept
  as text under headings, never executed. Status assertions in test scripts
  (``pm.response.to.have.status(201)``, ``pm.expect(pm.response.code).to.eql(201)``,
  ``….to.be.oneOf([200, 204])``) become the case's expected statuses.

Requests with a ``formdata`` or ``file`` body are skipped, each named in the plan with the
reason: Pontis sends JSON, XML and text bodies only, and a file upload needs a file the
collection does not carry. Every other problem of a request (no request, no URL, an unknown
method or body mode, a case that fails validation) is an error: a plan with errors cannot be
applied, so an import saves all of its cases or none.
"""

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote_plus

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from apps.accounts import policy
from apps.catalog.models import Interface
from apps.testing import checks, services
from apps.testing.models import BodyFormat, HttpMethod, TestCase

MAX_BYTES = 5 * 1024 * 1024
MAX_FOLDER_DEPTH = 32
POSTMAN_TAG = "postman"
NAME_MAX_LENGTH = TestCase._meta.get_field("name").max_length
TAG_MAX_LENGTH = 50  # a run selects cases by one tag of up to 50 characters
COMPARED_FIELDS = (
    "description",
    "method",
    "path",
    "query",
    "headers",
    "body",
    "body_format",
    "body_text",
    "variables",
    "send_credentials",
    "expected_statuses",
    "tags",
    "scripts",
)
CREDENTIAL_AUTH_SECRETS = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "apikey": ("value",),
}
SKIPPED_BODY_MODES = ("formdata", "file")

_LEADING_VARIABLE = re.compile(r"^\{\{[^{}]+\}\}")
_PATH_VARIABLE = re.compile(r"^:([A-Za-z_][A-Za-z0-9_.\-]*)$")
_WHOLE_VARIABLE = re.compile(r"\{\{\s*[A-Za-z_][A-Za-z0-9_.\-]*\s*\}\}")
_DYNAMIC_VARIABLE = re.compile(r"\{\{\s*\$[A-Za-z]+\s*\}\}")
_STATUS_PATTERNS = (
    re.compile(r"pm\.response\.to\.(?:have|be)\.status\(\s*(\d{3})\s*\)"),
    re.compile(
        r"pm\.expect\(\s*pm\.response\.code\s*\)\.to(?:\.\w+)*?\.(?:eql|equal|equals|eq)\(\s*(\d{3})\s*\)"
    ),
    re.compile(r"responseCode\.code\s*===?\s*(\d{3})"),
)
_STATUS_ONE_OF = re.compile(
    r"pm\.expect\(\s*pm\.response\.code\s*\)\.to(?:\.\w+)*?\.oneOf\(\s*\[([\d\s,]*)\]\s*\)"
)


class CollectionError(ValueError):
    """The file is not a Postman Collection v2.1 that can be read at all; nothing was planned."""


class ImportRefused(Exception):
    """The plan has errors; nothing was saved. ``errors`` name each request and its JSON path."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(error["message"] for error in errors))
        self.errors = errors


@dataclass
class PlannedCase:
    """One request of the collection as test-case field values, with what did not carry over."""

    source: str  # the JSON path of the request's item: $.item[0].item[2]
    fields: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.fields["name"]


@dataclass
class ImportPlan:
    """What a collection holds, independent of the interface it is imported into."""

    collection_name: str
    cases: list[PlannedCase] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Changes:
    """What importing a plan would do to one interface's test cases."""

    plan: ImportPlan
    add: list[dict] = field(default_factory=list)
    change: list[dict] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    # The unsaved cases to save, in collection order, for apply_plan.
    to_save: list[tuple[PlannedCase, TestCase]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "collection": self.plan.collection_name,
            "add": self.add,
            "change": self.change,
            "unchanged": self.unchanged,
            "skipped": self.plan.skipped,
            "warnings": self.plan.warnings,
            "errors": self.errors,
        }


# --------------------------------------------------------------------------------------
# Reading the collection
# --------------------------------------------------------------------------------------


def parse_collection(data: bytes) -> ImportPlan:
    """Reads a Postman Collection v2.1 export into a plan; changes nothing.

    Raises :class:`CollectionError` when the file cannot be read as a v2.1 collection at all;
    problems of single requests are collected in the plan's ``errors`` and ``skipped``.
    """
    if len(data) > MAX_BYTES:
        raise CollectionError(
            f"The file is {len(data) // 1024} KB; the limit is {MAX_BYTES // 1024} KB."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CollectionError("The file is not UTF-8 text: a collection is a JSON file.")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CollectionError(
            f"The file is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        )
    except RecursionError:
        raise CollectionError("The file is not usable JSON: it is nested too deeply.")
    prefix = "$"
    # The Postman API wraps an exported collection: {"collection": {...}}.
    wrapped = isinstance(document, dict) and "info" not in document
    if wrapped and isinstance(document.get("collection"), dict):
        document, prefix = document["collection"], "$.collection"
    _check_shape(document, prefix)
    plan = ImportPlan(collection_name=str(document["info"].get("name") or "Postman collection"))
    root = _Level(
        label="collection",
        path=prefix,
        variables=_variables(document.get("variable"), f"{prefix}.variable", plan),
        auth=_auth_of(document, prefix),
        events=_events_of(document, "collection"),
    )
    _walk(document["item"], f"{prefix}.item", [root], [], plan, taken_names={})
    return plan


def _check_shape(document, prefix: str) -> None:
    if not isinstance(document, dict):
        raise CollectionError(
            f"{prefix}: a Postman collection is a JSON object, not {_json_kind(document)}."
        )
    if "requests" in document and "info" not in document:
        raise CollectionError(
            f"{prefix}: this is a Postman Collection v1 file; export the collection again "
            "as Collection v2.1 (Postman: ••• → Export → Collection v2.1)."
        )
    info = document.get("info")
    if not isinstance(info, dict):
        raise CollectionError(f"{prefix}.info: missing; this is not a Postman collection.")
    schema = info.get("schema")
    if not isinstance(schema, str) or "/collection/" not in schema:
        raise CollectionError(
            f"{prefix}.info.schema: missing or not a Postman collection schema URL."
        )
    if "v2.1" not in schema:
        version = re.search(r"/(v[\d.]+)/", schema)
        found = version.group(1) if version else schema
        raise CollectionError(
            f"{prefix}.info.schema: this is a Postman Collection {found} file; export the "
            "collection again as Collection v2.1 (Postman: ••• → Export → Collection v2.1)."
        )
    if not isinstance(document.get("item"), list):
        raise CollectionError(f"{prefix}.item: missing or not a list of requests and folders.")


def _json_kind(value) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if not isinstance(value, bool) else "a boolean"


@dataclass
class _Level:
    """The collection or one folder: what its requests inherit."""

    label: str
    path: str
    variables: dict
    auth: tuple[dict, str] | None  # (auth object, its JSON path)
    events: list[tuple[str, str, str]]  # (listen, heading, script text)


def _walk(items, path, levels, folders, plan, taken_names) -> None:
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        if not isinstance(item, dict):
            plan.errors.append(
                _error("", item_path, f"an item is a JSON object, not {_json_kind(item)}.")
            )
            continue
        name = str(item.get("name") or "").strip()
        if "item" in item:
            if not isinstance(item["item"], list):
                plan.errors.append(_error(name, f"{item_path}.item", "not a list."))
                continue
            if len(levels) > MAX_FOLDER_DEPTH:
                plan.errors.append(
                    _error(name, item_path, f"folders nest deeper than {MAX_FOLDER_DEPTH}.")
                )
                continue
            folder = _Level(
                label=f'folder "{name}"',
                path=item_path,
                variables=_variables(item.get("variable"), f"{item_path}.variable", plan),
                auth=_auth_of(item, item_path),
                events=_events_of(item, f'folder "{name}"'),
            )
            _walk(
                item["item"],
                f"{item_path}.item",
                [*levels, folder],
                [*folders, name],
                plan,
                taken_names,
            )
        elif "request" in item:
            _plan_request(item, item_path, name, levels, folders, plan, taken_names)
        else:
            plan.errors.append(
                _error(name, item_path, "an item without a request (and not a folder with items).")
            )


def _error(name: str, source: str, message: str) -> dict:
    label = f'Request "{name}" ({source})' if name else source
    return {"name": name, "source": source, "message": f"{label}: {message}"}


def _plan_request(item, item_path, name, levels, folders, plan, taken_names) -> None:
    request = item["request"]
    request_path = f"{item_path}.request"
    if isinstance(request, str):
        request = {"url": request, "method": "GET"}
    if not isinstance(request, dict):
        plan.errors.append(
            _error(name, request_path, f"a request is an object, not {_json_kind(request)}.")
        )
        return
    warnings: list[str] = []
    method = str(request.get("method") or "GET").upper()
    if method not in HttpMethod.values:
        plan.errors.append(
            _error(name, f"{request_path}.method", f"method {method} is not supported.")
        )
        return
    url = request.get("url")
    if not url:
        plan.errors.append(_error(name, f"{request_path}.url", "missing."))
        return
    all_variables = {}
    for level in levels:
        all_variables.update(level.variables)
    all_variables.update(_variables(item.get("variable"), f"{item_path}.variable", plan))
    try:
        path, query, path_variables = _path_and_query(url, all_variables, warnings)
    except ValueError as exc:
        plan.errors.append(_error(name, f"{request_path}.url", str(exc)))
        return

    headers = {}
    raw_headers = request.get("header") or []
    if isinstance(raw_headers, str):
        raw_headers = [
            {"key": k.strip(), "value": v.strip()}
            for k, _, v in (line.partition(":") for line in raw_headers.splitlines())
            if k.strip()
        ]
    for entry in raw_headers if isinstance(raw_headers, list) else []:
        if isinstance(entry, dict) and entry.get("key") and not entry.get("disabled"):
            headers[str(entry["key"])] = _text(entry.get("value"))
    authorization = next((k for k in headers if k.lower() == "authorization"), None)
    if authorization:
        del headers[authorization]
        warnings.append(
            "The Authorization header was dropped: Pontis attaches the endpoint's credentials."
        )

    body_fields = {"body": None, "body_format": BodyFormat.JSON, "body_text": ""}
    body = request.get("body")
    if isinstance(body, dict) and body.get("mode") and not body.get("disabled"):
        mode = body["mode"]
        if mode in SKIPPED_BODY_MODES:
            plan.skipped.append(
                {
                    "name": name,
                    "source": item_path,
                    "reason": f"a {mode} body (multipart form or file upload) cannot be "
                    "imported: Pontis sends JSON, XML and text bodies only.",
                }
            )
            return
        try:
            body_fields = _body(body, headers, warnings)
        except ValueError as exc:
            plan.errors.append(_error(name, f"{request_path}.body.mode", str(exc)))
            return

    send_credentials = _send_credentials(request, request_path, levels, warnings, plan)
    scripts, count, statuses = _scripts(item, levels)
    if count:
        warnings.append(
            f"{count} scripts kept as text; they are not executed."
            if count > 1
            else "1 script kept as text; it is not executed."
        )

    all_variables.update(path_variables)
    used = set()
    for value in (path, query, headers, body_fields["body"], body_fields["body_text"]):
        used |= checks.variables_in(value)
    variables = {key: all_variables[key] for key in sorted(used) if key in all_variables}
    if any(
        _DYNAMIC_VARIABLE.search(json.dumps(value))
        for value in (path, query, headers, body_fields["body"], body_fields["body_text"])
    ):
        warnings.append(
            "Postman dynamic variables such as {{$guid}} are not filled in: they are sent as written."
        )

    tags = [POSTMAN_TAG]
    for folder in folders:
        tag = slugify(folder)[:TAG_MAX_LENGTH]
        if tag and tag not in tags:
            tags.append(tag)

    plan.cases.append(
        PlannedCase(
            source=item_path,
            fields={
                "name": _unique_name(name or f"{method} /{path}", taken_names),
                "description": _description(request.get("description") or item.get("description")),
                "method": method,
                "path": path,
                "query": query,
                "headers": headers,
                **body_fields,
                "variables": variables,
                "send_credentials": send_credentials,
                "expected_statuses": statuses,
                "tags": tags,
                "scripts": scripts,
            },
            warnings=warnings,
        )
    )


def _unique_name(name: str, taken: dict) -> str:
    """The name, or "name (2)", "name (3)"… when the file already used it; at most 200 characters."""
    base = name[:NAME_MAX_LENGTH]
    candidate, number = base, 1
    while candidate.casefold() in taken:
        number += 1
        suffix = f" ({number})"
        candidate = base[: NAME_MAX_LENGTH - len(suffix)] + suffix
    taken[candidate.casefold()] = True
    return candidate


def _text(value) -> str:
    return "" if value is None else str(value)


def _description(value) -> str:
    if isinstance(value, dict):
        value = value.get("content")
    return value.strip() if isinstance(value, str) else ""


def _variables(entries, path: str, plan: ImportPlan) -> dict:
    """``[{key, value, disabled}]`` as a dict, disabled entries left out."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        plan.errors.append(_error("", path, "not a list of variables."))
        return {}
    values = {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("key") and not entry.get("disabled"):
            value = entry.get("value")
            values[str(entry["key"])] = "" if value is None else value
    return values


def _path_and_query(url, variables: dict, warnings: list[str]) -> tuple[str, dict, dict]:
    """(path relative to the base URL, query, path-variable values) of a Postman URL.

    A URL with a literal host is taken relative to a variable holding its start (a
    ``baseUrl`` of ``https://api.example.com/v2`` makes ``https://api.example.com/v2/orders``
    ``orders``); otherwise only the host is dropped.
    """
    path_variables: dict = {}
    query_pairs: list[tuple[str, str]] = []
    if isinstance(url, str):
        raw = url
        host, path, query_string = _split_raw(raw)
        query_pairs = parse_qsl(query_string, keep_blank_values=True)
    elif isinstance(url, dict):
        raw = str(url.get("raw") or "")
        if "host" in url or "path" in url:
            host_parts = url.get("host") or []
            host = ".".join(map(str, host_parts)) if isinstance(host_parts, list) else host_parts
            parts = url.get("path") or []
            if isinstance(parts, list):
                path = "/".join(
                    str(part.get("value", "")) if isinstance(part, dict) else str(part)
                    for part in parts
                )
            else:
                path = str(parts)
        else:
            host, path, _ = _split_raw(raw)
        if isinstance(url.get("query"), list):
            query_pairs = [
                (str(entry["key"]), _text(entry.get("value")))
                for entry in url["query"]
                if isinstance(entry, dict) and entry.get("key") and not entry.get("disabled")
            ]
        else:
            query_pairs = parse_qsl(_split_raw(raw)[2], keep_blank_values=True)
        for entry in url.get("variable") or []:
            if isinstance(entry, dict) and entry.get("key") and not entry.get("disabled"):
                path_variables[str(entry["key"])] = entry.get("value")
    else:
        raise ValueError("a URL is a string or an object with raw, host and path.")
    if host and not _LEADING_VARIABLE.fullmatch(str(host).strip()):
        base = _base_url_variable(raw, variables)
        if base:
            name, value = base
            path = _split_raw(raw[len(value) :])[1]
            warnings.append(
                f"The URL {raw.split('?')[0]} was taken relative to {{{{{name}}}}} ({value}): "
                "Pontis sends the request to the endpoint's base URL."
            )
        else:
            warnings.append(
                f"The host {host} was dropped: Pontis sends the request to the endpoint's base URL."
            )

    segments, variables = [], {}
    for segment in path.split("/"):
        match = _PATH_VARIABLE.match(segment)
        if not match:
            segments.append(segment)
            continue
        key = match.group(1)
        value = path_variables.get(key)
        if isinstance(value, str) and _WHOLE_VARIABLE.fullmatch(value.strip()):
            segments.append(value.strip())  # ":id" given as "{{order_id}}": use that variable
        else:
            segments.append("{{" + key + "}}")
            if value not in (None, ""):
                variables[key] = value
    query: dict = {}
    for key, value in query_pairs:
        if key in query:
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[key] = value
    return "/".join(segments).lstrip("/"), query, variables


def _base_url_variable(raw: str, variables: dict) -> tuple[str, str] | None:
    """(name, value) of the variable whose URL value the raw URL starts with, longest first."""
    candidates = sorted(
        (
            (name, value.rstrip("/"))
            for name, value in variables.items()
            if isinstance(value, str) and re.match(r"^https?://[^/]", value)
        ),
        key=lambda pair: -len(pair[1]),
    )
    for name, value in candidates:
        rest = raw[len(value) :]
        if raw.startswith(value) and (not rest or rest[0] in "/?#"):
            return name, value
    return None


def _split_raw(raw: str) -> tuple[str, str, str]:
    """(host, path, query string) of a raw Postman URL such as ``{{baseUrl}}/orders?x=1``."""
    rest = raw.strip().split("#", 1)[0]
    rest, _, query_string = rest.partition("?")
    has_scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", rest)
    if has_scheme:
        rest = rest[has_scheme.end() :]
    variable = _LEADING_VARIABLE.match(rest)
    if variable:
        return variable.group(0), rest[variable.end() :], query_string
    first, slash, remainder = rest.partition("/")
    if has_scheme or "." in first or ":" in first or first == "localhost":
        return first, remainder, query_string
    return "", rest, query_string


def _header(headers: dict, name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def _body(body: dict, headers: dict, warnings: list[str]) -> dict:
    mode = body["mode"]
    if mode == "raw":
        raw = _text(body.get("raw"))
        language = str(((body.get("options") or {}).get("raw") or {}).get("language") or "")
        content_type = _header(headers, "Content-Type").lower()
        if not raw.strip():
            return {"body": None, "body_format": BodyFormat.JSON, "body_text": ""}
        if language == "xml" or "xml" in content_type:
            return {"body": None, "body_format": BodyFormat.XML, "body_text": raw}
        if language in ("", "json") or "json" in content_type:
            try:
                return {"body": json.loads(raw), "body_format": BodyFormat.JSON, "body_text": ""}
            except (json.JSONDecodeError, RecursionError):
                warnings.append(
                    "The raw body is not valid JSON (a {{variable}} outside a JSON string?): "
                    "it was kept as a text body."
                )
        return {"body": None, "body_format": BodyFormat.TEXT, "body_text": raw}
    if mode == "urlencoded":
        pairs = [
            entry
            for entry in body.get("urlencoded") or []
            if isinstance(entry, dict) and entry.get("key") and not entry.get("disabled")
        ]
        # Braces stay unencoded so that {{variables}} are still filled in.
        text = "&".join(
            f"{quote_plus(str(p['key']), safe='{}')}={quote_plus(_text(p.get('value')), safe='{}')}"
            for p in pairs
        )
        if not _header(headers, "Content-Type"):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return {"body": None, "body_format": BodyFormat.TEXT, "body_text": text}
    if mode == "graphql":
        graphql = body.get("graphql") or {}
        variables = graphql.get("variables") or {}
        if isinstance(variables, str):
            try:
                variables = json.loads(variables) if variables.strip() else {}
            except json.JSONDecodeError:
                raise ValueError("the GraphQL variables are not valid JSON.")
        return {
            "body": {"query": _text(graphql.get("query")), "variables": variables},
            "body_format": BodyFormat.JSON,
            "body_text": "",
        }
    raise ValueError(f"body mode {mode!r} is not a Postman body mode.")


def _auth_of(holder: dict, path: str) -> tuple[dict, str] | None:
    auth = holder.get("auth")
    if not isinstance(auth, dict) or auth.get("type") in (None, "", "inherit"):
        return None
    return auth, f"{path}.auth"


def _auth_value(auth: dict, key: str):
    entries = auth.get(auth["type"])
    if isinstance(entries, dict):  # the v2.0 shape, seen in hand-edited files
        return entries.get(key)
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return entry.get("value")
    return None


def _send_credentials(request, request_path, levels, warnings, plan) -> bool:
    """Whether the case sends the endpoint's credentials, from the auth the request inherits."""
    own = _auth_of(request, request_path)
    effective = own or next((lvl.auth for lvl in reversed(levels) if lvl.auth), None)
    if effective is None:
        return True
    auth, auth_path = effective
    kind = str(auth["type"])
    if kind == "noauth":
        return False
    problem = None
    if kind in CREDENTIAL_AUTH_SECRETS:
        secrets = [_auth_value(auth, key) for key in CREDENTIAL_AUTH_SECRETS[kind]]
        given = [s for s in secrets if s not in (None, "")]
        if not given or not all("{{" in str(s) for s in given):
            problem = (
                f"{auth_path}: {kind} auth with a literal secret was not imported; the case "
                "sends the endpoint's credentials instead."
            )
    else:
        problem = (
            f"{auth_path}: {kind} auth is not imported; the case sends the endpoint's "
            "credentials instead."
        )
    if problem:
        # Inherited auth is reported once for the whole collection, not on every request.
        if own:
            warnings.append(problem)
        elif problem not in plan.warnings:
            plan.warnings.append(problem)
    return True


def _events_of(holder: dict, heading: str) -> list[tuple[str, str, str]]:
    events = []
    for event in holder.get("event") or []:
        if not isinstance(event, dict) or event.get("disabled"):
            continue
        listen = event.get("listen")
        script = event.get("script") or {}
        lines = script.get("exec") if isinstance(script, dict) else None
        text = "\n".join(map(str, lines)) if isinstance(lines, list) else _text(lines)
        if listen in ("prerequest", "test") and text.strip():
            events.append((listen, heading, text.strip()))
    return events


def _scripts(item, levels) -> tuple[str, int, list[int]]:
    """The scripts as text (prerequest first, outermost first), how many, and the statuses
    their status assertions expect."""
    events = [event for level in levels for event in level.events]
    events += _events_of(item, "request")
    ordered = [e for e in events if e[0] == "prerequest"] + [e for e in events if e[0] == "test"]
    text = "\n\n".join(
        f"// {listen} script of the {heading}\n{body}" for listen, heading, body in ordered
    )
    statuses: list[int] = []
    for listen, _, body in ordered:
        if listen != "test":
            continue
        found = [(m.start(), int(m.group(1))) for p in _STATUS_PATTERNS for m in p.finditer(body)]
        for match in _STATUS_ONE_OF.finditer(body):
            found += [(match.start(), int(code)) for code in re.findall(r"\d{3}", match.group(1))]
        for _, code in sorted(found):
            if 100 <= code <= 599 and code not in statuses:
                statuses.append(code)
    return text, len(ordered), statuses


# --------------------------------------------------------------------------------------
# Planning against an interface, and applying
# --------------------------------------------------------------------------------------


def changes_for(interface: Interface, plan: ImportPlan) -> Changes:
    """Which cases importing the plan would add to or change in the interface; saves nothing.

    Every case to save is validated as ``services.save_case`` would; its problems become
    errors naming the request. The collection's tags are added to a changed case's own tags.
    """
    changes = Changes(plan=plan, errors=list(plan.errors))
    existing = {case.name.casefold(): case for case in TestCase.objects.filter(interface=interface)}
    for planned in plan.cases:
        current = existing.get(planned.name.casefold())
        if current is None:
            case = TestCase(interface=interface, **planned.fields)
            entry = {
                "name": planned.name,
                "source": planned.source,
                "method": case.method,
                "path": case.path,
                "warnings": planned.warnings,
            }
            target = changes.add
        else:
            proposed = dict(planned.fields)
            proposed["tags"] = [
                *current.tags,
                *(tag for tag in proposed["tags"] if tag not in current.tags),
            ]
            differences = {
                name: [getattr(current, name), proposed[name]]
                for name in COMPARED_FIELDS
                if getattr(current, name) != proposed[name]
            }
            if not differences:
                changes.unchanged.append(current.name)
                continue
            case = current
            for name in differences:
                setattr(case, name, proposed[name])
            entry = {
                "id": case.pk,
                "name": case.name,
                "source": planned.source,
                "changes": differences,
                "warnings": planned.warnings,
            }
            target = changes.change
        problems = _validation_problems(case)
        if problems:
            changes.errors.append(_error(planned.name, planned.source, problems))
        target.append(entry)
        changes.to_save.append((planned, case))
    return changes


def _validation_problems(case: TestCase) -> str:
    try:
        case.full_clean()
        services.validate_case(case)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            return " ".join(
                f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items()
            )
        return " ".join(exc.messages)
    return ""


def apply_plan(actor, interface: Interface, plan: ImportPlan) -> Changes:
    """Adds and changes the interface's cases as planned, in one transaction with audit entries.

    Raises :class:`ImportRefused` (nothing saved) when the plan or any case has an error.
    Idempotent: applying the same collection again changes nothing and writes no audit entry.
    """
    policy.require_change(actor, interface)
    with transaction.atomic():
        # Lock the interface row: two imports into one interface queue behind each other
        # instead of racing for the same case names.
        Interface.objects.select_for_update().filter(pk=interface.pk).first()
        changes = changes_for(interface, plan)
        if changes.errors:
            raise ImportRefused(changes.errors)
        for planned, case in changes.to_save:
            try:
                services.save_case(actor, case)
            except ValidationError as exc:
                raise ImportRefused([_error(planned.name, planned.source, " ".join(exc.messages))])
    return changes
