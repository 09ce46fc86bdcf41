"""API specs registered per interface: load, recognise, validate, list and compare them.

Pure domain logic, no models. Views, API endpoints and tasks call these functions and turn
:class:`SpecError` into a 400/422 answer whose problems each name a JSON Pointer (RFC 6901,
the empty string being the document itself).

Supported kinds: OpenAPI 3.0 and 3.1, AsyncAPI 2.x and 3.0, and JSON Schema (draft-04, -06,
-07, 2019-09, 2020-12). Swagger 2.0 and anything else is refused with a message that says so.

Safety rules (RELIABILITY.md, "Uploads and parsers"):

* Size, nesting depth, node count (after YAML alias expansion), YAML alias count and number
  length are bounded; every limit gives a clear error instead of a crash or a stall.
  Settings (all optional): ``PONTIS_SPEC_MAX_BYTES`` (5 MB), ``PONTIS_SPEC_MAX_DEPTH`` (64),
  ``PONTIS_SPEC_MAX_NODES`` (500,000), ``PONTIS_SPEC_MAX_YAML_ALIASES`` (10,000), and two
  time budgets that are safety nets beside them: ``PONTIS_SPEC_PARSE_SECONDS`` (1.5; reading
  YAML, whose parser manages ~1 µs per item, so a 5 MB file of tiny items would not finish
  in 2 s; JSON is parsed in C and needs none) and ``PONTIS_SPEC_DIFF_SECONDS`` (1.0; comparing
  schemas, after which the diff is returned with ``truncated=True``).
* YAML is read from the event stream of the safe (C, when available) parser, iteratively:
  no Python object tags, no sets or binary, timestamps kept as the text that was written,
  duplicate keys refused, aliases copied under an expansion budget (a "billion laughs"
  document fails after the budget, not after a billion nodes).
* Only local references (``#/...`` or ``#anchor``) are allowed. Nothing in this module
  fetches a URL or opens a file: remote, ``file://`` and relative-file references are
  problems at the path of the offending ``$ref``, never followed.
* Meta-schema validation treats the user's document purely as an *instance* of a trusted,
  bundled meta-schema (the official OpenAPI 3.0/3.1 schemas shipped by
  ``openapi-spec-validator``, the JSON Schema meta-schemas shipped by ``jsonschema``), with
  format checking off, so no ``pattern`` of the user's is ever compiled or run here.
  ``jsonschema-rs`` (Rust, offline) does the work when installed, as it is ~200x faster on
  large specs; pure-Python ``jsonschema`` with a registry that refuses retrieval is the
  fallback.
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

try:  # pragma: no cover - exercised by whichever backend is installed
    import jsonschema_rs as _jsonschema_rs
except ImportError:  # pragma: no cover
    _jsonschema_rs = None

__all__ = [
    "KINDS",
    "Change",
    "Operation",
    "SpecDiff",
    "SpecError",
    "SpecProblem",
    "SpecSummary",
    "detect_kind",
    "diff_specs",
    "json_pointer",
    "list_operations",
    "load_document",
    "validate_spec",
]

KINDS = ("openapi-3.0", "openapi-3.1", "asyncapi-2", "asyncapi-3", "json-schema")
SUPPORTED_TEXT = (
    "supported: OpenAPI 3.0 and 3.1, AsyncAPI 2.x and 3.0, "
    "JSON Schema (draft-04, draft-06, draft-07, 2019-09, 2020-12)"
)

# --------------------------------------------------------------------------------------
# Limits (settings override the defaults; read at call time so tests can change them)
# --------------------------------------------------------------------------------------

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_NODES = 500_000
DEFAULT_MAX_ALIASES = 10_000
DEFAULT_PARSE_SECONDS = 1.5
MAX_NUMBER_CHARS = 64  # digits of an integer, characters of a number literal
MAX_PROBLEMS = 50  # problems reported by one SpecError
MAX_CHANGES = 2_000  # changes reported by one diff
MAX_DIFF_WORK = 200_000  # schema pairs compared by one diff
MAX_DIFF_DEPTH = 48  # nested schema levels compared by one diff
MAX_REF_HOPS = 64  # $ref -> $ref -> ... followed when comparing


def _limit(name: str, default: int) -> int:
    try:
        from django.conf import settings

        return int(getattr(settings, name, default))
    except Exception:  # no Django, settings not configured (yet), or a bad value
        return default


def _setting_float(name: str, default: float) -> float:
    try:
        from django.conf import settings

        return float(getattr(settings, name, default))
    except Exception:  # no Django, settings not configured (yet), or a bad value
        return default


def _parse_seconds() -> float:
    """Time budget for reading one YAML document (a safety net beside the size limits)."""
    return _setting_float("PONTIS_SPEC_PARSE_SECONDS", DEFAULT_PARSE_SECONDS)


def _limits() -> tuple[int, int, int, int]:
    return (
        _limit("PONTIS_SPEC_MAX_BYTES", DEFAULT_MAX_BYTES),
        _limit("PONTIS_SPEC_MAX_DEPTH", DEFAULT_MAX_DEPTH),
        _limit("PONTIS_SPEC_MAX_NODES", DEFAULT_MAX_NODES),
        _limit("PONTIS_SPEC_MAX_YAML_ALIASES", DEFAULT_MAX_ALIASES),
    )


# --------------------------------------------------------------------------------------
# Problems and errors
# --------------------------------------------------------------------------------------


def _escape_token(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def json_pointer(tokens: Any) -> str:
    """RFC 6901 JSON Pointer for a sequence of keys/indexes ("" is the whole document)."""
    return "".join("/" + _escape_token(t) for t in tokens)


def _unescape_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a document. ``path`` is a JSON Pointer ("" = the document)."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path or '(document)'}: {self.message}"


class SpecError(Exception):
    """A document was refused. ``problems`` lists what is wrong and where."""

    def __init__(self, problems: list[SpecProblem] | str, path: str = ""):
        if isinstance(problems, str):
            problems = [SpecProblem(path, problems)]
        self.problems: list[SpecProblem] = list(problems) or [SpecProblem(path, "invalid")]
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines += [f"- {p}" for p in self.problems]
        return "\n".join(lines)


def _fail(path: str, message: str) -> SpecError:
    return SpecError([SpecProblem(path, message)])


def json_type(value: Any) -> str:
    """The JSON Schema type name of a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _decode(raw: bytes | str, max_bytes: int) -> str:
    mb = f"{max_bytes / (1024 * 1024):g} MB"
    if isinstance(raw, str):
        if len(raw) > max_bytes:
            raise _fail("", f"the document is larger than the {mb} limit")
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError:
            raise _fail("", "the text contains characters that are not valid Unicode")
        if size > max_bytes:
            raise _fail("", f"the document is {size:,} bytes; the limit is {max_bytes:,} ({mb})")
        text = raw
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        if len(data) > max_bytes:
            raise _fail(
                "", f"the document is {len(data):,} bytes; the limit is {max_bytes:,} ({mb})"
            )
        for bom, name in (
            (codecs.BOM_UTF32_LE, "UTF-32"),
            (codecs.BOM_UTF32_BE, "UTF-32"),
            (codecs.BOM_UTF16_LE, "UTF-16"),
            (codecs.BOM_UTF16_BE, "UTF-16"),
        ):
            if data.startswith(bom):
                raise _fail("", f"the file is {name} text; save it as UTF-8")
        if b"\x00" in data:
            raise _fail("", "the file is binary (it contains NUL bytes), not JSON or YAML text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = data[exc.start]
            raise _fail("", f"the file is not UTF-8 text (byte 0x{bad:02x} at offset {exc.start})")
    else:
        raise _fail("", f"expected the document as bytes or text, not {type(raw).__name__}")
    if "\x00" in text:
        raise _fail("", "the text contains NUL characters; it is not JSON or YAML")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


class _Refused(Exception):
    """Raised inside parser hooks; turned into a SpecError with a position."""

    def __init__(self, message: str, literal: str | None = None):
        super().__init__(message)
        self.message = message
        self.literal = literal


def _position(text: str, literal: str | None) -> str:
    if not literal:
        return ""
    index = text.find(literal)
    if index < 0:
        return ""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f" (line {line}, column {column})"


def _check_number_literal(literal: str) -> None:
    digits = len(literal.lstrip("+-"))
    if digits > MAX_NUMBER_CHARS:
        raise _Refused(
            f"number with {digits:,} characters is too long (at most {MAX_NUMBER_CHARS})",
            literal[:80],
        )


def _json_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number", name)


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"duplicate key {key!r} in an object", json.dumps(key))
            seen.add(key)
    return obj


class _JsonSyntaxError(SpecError):
    def __init__(self, problems: list[SpecProblem], offset: int):
        super().__init__(problems)
        self.offset = offset


def _load_json(text: str, max_depth: int) -> Any:
    try:
        # Numbers are parsed natively (fast); _scan then refuses long and non-finite ones
        # with their path. Python itself refuses integers of more than 4,300 digits.
        return json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant)
    except _Refused as exc:
        raise _fail("", exc.message + _position(text, exc.literal))
    except RecursionError:
        raise _fail("", f"the document nests deeper than {max_depth} levels")
    except json.JSONDecodeError as exc:
        raise _JsonSyntaxError(
            [SpecProblem("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")],
            exc.pos - (len(text) - len(text.lstrip())),
        )
    except ValueError as exc:  # Python's limit on integer digits
        match = re.search("[0-9]{" + str(MAX_NUMBER_CHARS + 1) + ",}", text)
        if match:
            digits = len(match.group(0))
            raise _fail(
                "",
                f"number with {digits:,} digits is too long (at most {MAX_NUMBER_CHARS})"
                + _position(text, match.group(0)[:80]),
            )
        raise _fail("", f"invalid JSON: {_short(str(exc), 200)}")


_YAML_TAG = "tag:yaml.org,2002:"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_RESOLVER = yaml.resolver.Resolver()
_YAML_CONSTRUCTOR = yaml.constructor.SafeConstructor()
# First characters for which a plain YAML scalar may be something other than a string.
_YAML_SPECIAL_FIRST = frozenset(k for k in yaml.resolver.Resolver.yaml_implicit_resolvers if k)
# Frequent plain words, resolved once (YAML 1.1 as PyYAML reads it: yes/no/on/off are booleans).
_YAML_PLAIN_WORDS: dict[str, Any] = {}
_PLAIN_WORDS = "true True TRUE false False FALSE yes Yes YES no No NO on On ON off Off OFF"
for _word in [*_PLAIN_WORDS.split(), "null", "Null", "NULL", "~"]:  # noqa: SIM905
    _tag = _YAML_RESOLVER.resolve(yaml.ScalarNode, _word, (True, False))
    _YAML_PLAIN_WORDS[_word] = (
        None
        if _tag.endswith(":null")
        else _YAML_CONSTRUCTOR.bool_values[_word.lower()]
        if _tag.endswith(":bool")
        else _word
    )


class _Frame:
    __slots__ = ("container", "is_map", "anchor", "size", "height", "key", "merges", "token")

    def __init__(self, container: Any, anchor: str | None, token: Any):
        self.container = container
        self.is_map = isinstance(container, dict)
        self.anchor = anchor
        self.size = 1
        self.height = 1  # container levels, itself included
        self.key: Any = _NO_KEY
        self.merges: list[dict] = []
        self.token = token


_NO_KEY = object()
_MERGE = object()


def _copy_tree(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.loads(json.dumps(value))
    return value


class _YamlBuilder:
    """Builds plain JSON values from YAML parser events, iteratively and within limits."""

    def __init__(self, max_depth: int, max_nodes: int, max_aliases: int):
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.max_aliases = max_aliases
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.open_anchors: set[str] = set()
        self.nodes = 0
        self.aliases = 0
        self.documents = 0
        self.root: Any = _NO_KEY

    # helpers -------------------------------------------------------------------------
    def _where(self, event: Any) -> str:
        mark = getattr(event, "start_mark", None)
        if mark is None:
            return ""
        return f" (line {mark.line + 1}, column {mark.column + 1})"

    def _path(self, extra: Any = _NO_KEY) -> str:
        tokens = [f.token for f in self.stack[1:]]
        if self.stack:
            top = self.stack[-1]
            if isinstance(top.container, dict) and top.key not in (_NO_KEY, _MERGE):
                tokens.append(top.key)
        if extra is not _NO_KEY:
            tokens.append(extra)
        return json_pointer(tokens)

    def _error(self, message: str, event: Any = None) -> SpecError:
        return _fail(self._path(), message + (self._where(event) if event is not None else ""))

    def _count(self, n: int, event: Any) -> None:
        self.nodes += n
        if self.nodes > self.max_nodes:
            raise self._error(
                f"the document has more than {self.max_nodes:,} values once YAML aliases are "
                "expanded (is it an alias bomb?)",
                event,
            )

    # scalars -------------------------------------------------------------------------
    def _scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _YAML_RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
        value = event.value
        if tag == _YAML_TAG + "str" or tag == _YAML_TAG + "merge":
            return value
        if tag == _YAML_TAG + "null":
            return None
        if tag == _YAML_TAG + "bool":
            return _YAML_CONSTRUCTOR.bool_values.get(value.lower(), bool(value))
        if tag == _YAML_TAG + "timestamp":
            return value  # dates stay the text that was written: JSON has no date type
        node = yaml.ScalarNode(tag, value)
        if tag == _YAML_TAG + "int":
            try:
                _check_number_literal(value.replace("_", ""))
            except _Refused as exc:
                raise self._error(exc.message, event)
            try:
                return _YAML_CONSTRUCTOR.construct_yaml_int(node)
            except Exception:  # PyYAML raises ValueError or IndexError on odd explicit tags
                raise self._error(f"{_short(value)!r} is not a valid integer", event)
        if tag == _YAML_TAG + "float":
            try:
                _check_number_literal(value.replace("_", ""))
            except _Refused as exc:
                raise self._error(exc.message, event)
            try:
                number = _YAML_CONSTRUCTOR.construct_yaml_float(node)
            except Exception:
                raise self._error(f"{_short(value)!r} is not a valid number", event)
            if not math.isfinite(number):
                raise self._error(
                    f"{_short(value)!r} is not a finite number (JSON has no NaN or infinity)",
                    event,
                )
            return number
        raise self._error(
            f"the YAML tag {tag!r} is not supported: only JSON-compatible values are", event
        )

    # containers ----------------------------------------------------------------------
    def _add(self, value: Any, size: int, height: int, event: Any, is_key_scalar: Any = None):
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        container = top.container
        if isinstance(container, list):
            container.append(value)
        elif top.key is _NO_KEY:
            if is_key_scalar is _MERGE:
                top.key = _MERGE
            elif isinstance(value, str):
                if value in container:
                    raise _fail(
                        self._path(value), f"duplicate key {_short(value)!r}{self._where(event)}"
                    )
                top.key = value
            else:
                raise self._error(
                    "mapping keys must be strings (numbers and words may be written plainly; "
                    "lists and mappings may not be keys)",
                    event,
                )
            return  # a key adds no value to the size
        elif top.key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            if not sources or not all(isinstance(s, dict) for s in sources):
                raise self._error("a '<<' merge key needs a mapping or a list of mappings", event)
            top.merges.extend(sources)
            top.key = _NO_KEY
        else:
            container[top.key] = value
            top.key = _NO_KEY
        top.size += size
        top.height = max(top.height, height + 1)  # a scalar child has height 0

    def _open(self, container: Any, event: Any) -> None:
        if self.stack:
            top = self.stack[-1]
            if isinstance(top.container, dict) and top.key is _NO_KEY:
                raise self._error("mapping keys must be strings, not lists or mappings", event)
        if len(self.stack) + 1 > self.max_depth:
            raise self._error(f"the document nests deeper than {self.max_depth} levels", event)
        self._count(1, event)
        token: Any = None
        if self.stack:
            top = self.stack[-1]
            token = len(top.container) if isinstance(top.container, list) else top.key
            if token is _MERGE:
                token = "<<"  # noqa: S105 - the YAML merge key, not a secret
        anchor = event.anchor
        if anchor is not None:
            self.open_anchors.add(anchor)
        self.stack.append(_Frame(container, anchor, token))

    def _close(self, event: Any) -> None:
        frame = self.stack.pop()
        value = frame.container
        if isinstance(value, dict) and frame.merges:
            merged: dict[str, Any] = {}
            for source in frame.merges:
                for k, v in source.items():
                    merged.setdefault(k, v)
            merged.update(value)
            value = merged
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, frame.size, frame.height)
        self._add(value, frame.size, frame.height, event)

    def build(self, text: str, deadline: float) -> Any:
        scalar_event = yaml.ScalarEvent
        special = _YAML_SPECIAL_FIRST
        words = _YAML_PLAIN_WORDS
        stack = self.stack
        max_nodes = self.max_nodes
        events = 0
        try:
            for event in yaml.parse(text, Loader=_YAML_LOADER):
                events += 1
                if not events & 0xFFF and time.monotonic() > deadline:
                    raise self._error(
                        f"the YAML document is too large to read in time ({events:,} items "
                        "read); simplify it or upload it as JSON",
                        event,
                    )
                # Fast path: an untagged, unanchored scalar inside a container.
                if (
                    type(event) is not scalar_event
                    or not stack
                    or event.tag is not None
                    or event.anchor is not None
                ):
                    self._event(event)
                    continue
                top = stack[-1]
                value = event.value
                if top.is_map and top.key is _NO_KEY:
                    if value != "<<" and value not in top.container:
                        top.key = value
                    else:
                        self._event(event)
                    continue
                if top.key is _MERGE:
                    self._event(event)
                    continue
                if event.implicit[0] and (not value or value[0] in special):
                    if value in words:
                        value = words[value]
                    elif (
                        value.isdigit()
                        and value.isascii()
                        and (value[0] != "0" or len(value) == 1)
                        and len(value) <= MAX_NUMBER_CHARS
                    ):
                        value = int(value)
                    else:
                        self._event(event)
                        continue
                self.nodes += 1
                if self.nodes > max_nodes:
                    self._count(0, event)
                if top.is_map:
                    top.container[top.key] = value
                    top.key = _NO_KEY
                else:
                    top.container.append(value)
                top.size += 1
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = exc.problem or exc.context or "syntax error"
            raise _fail(self._path(), f"invalid YAML{where}: {problem}")
        except yaml.YAMLError as exc:
            raise _fail(self._path(), f"invalid YAML: {_short(str(exc), 200)}")
        if self.root is _NO_KEY:
            raise _fail("", "the document is empty")
        return self.root

    def _event(self, event: Any) -> None:
        if isinstance(event, yaml.ScalarEvent):
            top = self.stack[-1] if self.stack else None
            is_key = top is not None and isinstance(top.container, dict) and top.key is _NO_KEY
            if is_key:
                if event.tag not in (None, "!", _YAML_TAG + "str") and event.tag not in (
                    _YAML_TAG + "int",
                    _YAML_TAG + "float",
                    _YAML_TAG + "bool",
                ):
                    raise self._error(f"the YAML tag {event.tag!r} is not supported on keys", event)
                if event.value == "<<" and event.implicit[0] and event.tag is None:
                    self._add(None, 0, 0, event, _MERGE)
                else:
                    # a plain 200: or true: key keeps the text that was written
                    if event.anchor is not None:
                        self.anchors[event.anchor] = (event.value, 1, 0)
                    self._add(event.value, 0, 0, event)
                return
            self._count(1, event)
            value = self._scalar(event)
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, 1, 0)
            self._add(value, 1, 0, event)
        elif isinstance(event, yaml.MappingStartEvent):
            if event.tag not in (None, "!", _YAML_TAG + "map"):
                raise self._error(
                    f"the YAML tag {event.tag!r} is not supported: only plain mappings are", event
                )
            self._open({}, event)
        elif isinstance(event, yaml.SequenceStartEvent):
            if event.tag not in (None, "!", _YAML_TAG + "seq"):
                raise self._error(
                    f"the YAML tag {event.tag!r} is not supported: only plain lists are", event
                )
            self._open([], event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self._close(event)
        elif isinstance(event, yaml.AliasEvent):
            name = event.anchor
            self.aliases += 1
            if self.aliases > self.max_aliases:
                raise self._error(
                    f"the document uses more than {self.max_aliases:,} YAML aliases", event
                )
            if name in self.open_anchors:
                raise self._error(f"the YAML alias *{name} refers to itself", event)
            if name not in self.anchors:
                raise self._error(f"the YAML alias *{name} has no anchor &{name} before it", event)
            value, size, height = self.anchors[name]
            if len(self.stack) + height > self.max_depth:
                raise self._error(
                    f"the document nests deeper than {self.max_depth} levels once the alias "
                    f"*{name} is expanded",
                    event,
                )
            self._count(size, event)
            top = self.stack[-1] if self.stack else None
            if top is not None and isinstance(top.container, dict) and top.key is _NO_KEY:
                if not isinstance(value, str):
                    raise self._error("mapping keys must be strings", event)
                self._add(value, 0, 0, event)
                return
            self._add(_copy_tree(value), size, height, event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _fail("", "the file holds several YAML documents; upload one per spec")


def _load_yaml(text: str, max_depth: int, max_nodes: int, max_aliases: int, deadline: float) -> Any:
    return _YamlBuilder(max_depth, max_nodes, max_aliases).build(text, deadline)


def load_document(raw: bytes | str, filename: str | None = None) -> dict:
    """Parse an uploaded spec (JSON or YAML, detected) into a plain JSON object.

    Raises :class:`SpecError` for anything that is not a bounded, UTF-8, JSON-compatible
    object: too large, binary, invalid syntax, an alias bomb, too deep, a number too long,
    duplicate keys, non-JSON YAML types, or a top level that is not an object.
    """
    deadline = time.monotonic() + _parse_seconds()
    max_bytes, max_depth, max_nodes, max_aliases = _limits()
    text = _decode(raw, max_bytes)
    stripped = text.lstrip()
    if not stripped:
        raise _fail("", "the document is empty")
    name = (filename or "").lower()
    is_json_name = name.endswith(".json")
    is_yaml_name = name.endswith((".yaml", ".yml"))
    doc: Any
    from_json = False
    if stripped[0] in "{[" or is_json_name:
        try:
            doc = _load_json(text, max_depth)
            from_json = True
        except _JsonSyntaxError as json_error:
            # YAML flow style ({openapi: 3.0.0, ...}) fails as JSON at once; a document that
            # fails further on is broken JSON, and is not parsed a second time.
            if is_json_name or json_error.offset > 64:
                raise
            try:
                doc = _load_yaml(text, max_depth, max_nodes, max_aliases, deadline)
            except SpecError as yaml_error:
                raise yaml_error if is_yaml_name else json_error
    else:
        doc = _load_yaml(text, max_depth, max_nodes, max_aliases, deadline)
    if not isinstance(doc, dict):
        raise _fail(
            "", f"the top level must be an object (a mapping of keys), not {json_type(doc)}"
        )
    if from_json:
        _scan(doc)  # depth and size; the YAML builder enforces them as it goes
    return doc


# --------------------------------------------------------------------------------------
# Scanning a document: JSON types, bounds, and where its references are
# --------------------------------------------------------------------------------------

# Keys whose values are maps of *names* (a property called "enum" is not the enum keyword).
_NAME_MAPS = frozenset(
    {
        "properties",
        "patternProperties",
        "$defs",
        "definitions",
        "dependentSchemas",
        "schemas",
        "paths",
        "webhooks",
        "responses",
        "parameters",
        "headers",
        "requestBodies",
        "securitySchemes",
        "links",
        "callbacks",
        "pathItems",
        "content",
        "encoding",
        "mapping",
        "channels",
        "messages",
        "operations",
        "servers",
        "serverVariables",
        "variables",
        "messageTraits",
        "operationTraits",
        "correlationIds",
        "replies",
        "replyAddresses",
        "examples",
    }
)
# Keys whose values are user data, not spec structure: a "$ref" inside is just data.
_DATA_KEYS = frozenset({"example", "enum", "const", "default"})
_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")


class _Scan:
    __slots__ = ("root", "parents", "refs", "ids", "dialects", "anchors")

    def __init__(self, root: dict):
        self.root = root
        self.parents: dict[int, tuple[int, Any]] = {}
        self.refs: list[tuple[dict, str, str]] = []  # (holder, keyword, value)
        self.ids: list[tuple[dict, str]] = []
        self.dialects: list[tuple[dict, str]] = []
        self.anchors: dict[str, dict] = {}

    def tokens(self, obj: Any) -> list[Any]:
        tokens: list[Any] = []
        key = id(obj)
        seen = 0
        while key in self.parents and seen < 10_000:
            key, token = self.parents[key]
            tokens.append(token)
            seen += 1
        tokens.reverse()
        return tokens

    def pointer(self, obj: Any, *extra: Any) -> str:
        return json_pointer([*self.tokens(obj), *extra])


_SPECIAL_KEYS = frozenset({*_REF_KEYS, "$id", "$schema", "$anchor", "$dynamicAnchor"})


def _collect_keywords(scan: _Scan, node: dict) -> None:
    for keyword in _REF_KEYS:
        value = node.get(keyword)
        if type(value) is str:
            scan.refs.append((node, keyword, value))
    value = node.get("$id")
    if type(value) is str:
        scan.ids.append((node, value))
    value = node.get("$schema")
    if type(value) is str:
        scan.dialects.append((node, value))
    for keyword in ("$anchor", "$dynamicAnchor"):
        value = node.get(keyword)
        if type(value) is str:
            scan.anchors.setdefault(value, node)


def _scan(doc: Any) -> _Scan:
    """Check that ``doc`` is a bounded tree of JSON values and find its references."""
    _, max_depth, max_nodes, _ = _limits()
    if not isinstance(doc, dict):
        raise _fail("", f"the top level must be an object, not {json_type(doc)}")
    scan = _Scan(doc)
    parents = scan.parents
    count = 0
    max_int_bits = int(MAX_NUMBER_CHARS * 3.33)
    special_keys = _SPECIAL_KEYS
    data_keys = _DATA_KEYS
    name_maps = _NAME_MAPS
    # (node, depth, in_data, is_name_map); children are pushed in reverse so that they are
    # visited, and their references listed, in document order.
    stack: list[tuple[Any, int, bool, bool]] = [(doc, 1, False, False)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth, in_data, name_map = pop()
        count += len(node)
        if count > max_nodes:
            raise _fail("", f"the document has more than {max_nodes:,} values")
        nid = id(node)
        if type(node) is dict:
            # A string-valued "$ref" is a reference even in a map of names: a property that
            # is really called "$ref" would have a schema (an object) as its value.
            if not in_data and not node.keys().isdisjoint(special_keys):
                _collect_keywords(scan, node)
            items: Any = reversed(node.items())
            is_dict = True
        else:
            items = zip(range(len(node) - 1, -1, -1), reversed(node), strict=True)
            is_dict = False
        for key, value in items:
            kind = type(value)
            if kind is str or kind is bool or value is None:
                pass
            elif kind is dict or kind is list:
                if not value:
                    if depth >= max_depth:
                        raise _fail(
                            scan.pointer(node, key),
                            f"the document nests deeper than {max_depth} levels",
                        )
                    continue
                parents[id(value)] = (nid, key)
                if is_dict and not in_data and not name_map:
                    child_data = key in data_keys or (key == "examples" and kind is list)
                    child_map = not child_data and key in name_maps
                else:
                    child_data = in_data
                    child_map = False
                if depth >= max_depth:
                    raise _fail(
                        scan.pointer(value), f"the document nests deeper than {max_depth} levels"
                    )
                push((value, depth + 1, child_data, child_map))
            elif kind is int:
                if value.bit_length() > max_int_bits and len(str(abs(value))) > MAX_NUMBER_CHARS:
                    raise _fail(
                        scan.pointer(node, key),
                        f"number with {len(str(abs(value))):,} digits is too long "
                        f"(at most {MAX_NUMBER_CHARS})",
                    )
            elif kind is float:
                if not math.isfinite(value):
                    raise _fail(
                        scan.pointer(node, key),
                        "number is out of range (JSON numbers must be finite)",
                    )
            else:
                raise _fail(
                    scan.pointer(node, key),
                    f"a value of type {type(value).__name__} is not JSON",
                )
            if is_dict and type(key) is not str:
                raise _fail(
                    scan.pointer(node), f"key {_short(key)!r} is not a string (JSON keys are)"
                )
    return scan


# --------------------------------------------------------------------------------------
# References: only local ones, resolvable, and no pure cycles
# --------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


class _Unresolvable(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _root_base(doc: dict) -> str:
    value = doc.get("$id")
    if isinstance(value, str):
        return value.split("#", 1)[0]
    return ""


def _ref_fragment(ref: str, root_base: str) -> str:
    """The fragment of a local reference, or raise _Unresolvable saying why it is refused."""
    if ref.startswith("#"):
        return ref[1:]
    base, hash_, fragment = ref.partition("#")
    if root_base and base == root_base:
        return fragment
    if ref == "":
        raise _Unresolvable("an empty reference is not allowed; use '#/...'")
    match = _SCHEME.match(ref)
    scheme = match.group(1).lower() if match else ""
    tail = "only local references ('#/...') are allowed and Pontis never fetches them"
    if scheme in ("http", "https") or ref.startswith("//"):
        raise _Unresolvable(f"remote reference {_short(ref)!r} is not allowed: {tail}")
    if scheme == "file":
        raise _Unresolvable(
            f"file reference {_short(ref)!r} is not allowed: only local references "
            "('#/...') are allowed and Pontis never reads files"
        )
    if scheme:
        raise _Unresolvable(f"external reference {_short(ref)!r} is not allowed: {tail}")
    raise _Unresolvable(
        f"reference {_short(ref)!r} points to another file: {tail}; bundle the spec into one "
        "document"
    )


def _resolve_fragment(doc: dict, fragment: str, anchors: dict[str, dict] | None) -> Any:
    fragment = unquote(fragment)
    if fragment == "":
        return doc
    if not fragment.startswith("/"):
        if anchors is not None and fragment in anchors:
            return anchors[fragment]
        raise _Unresolvable(f"no $anchor named {_short(fragment)!r} in this document")
    node: Any = doc
    walked: list[str] = []
    for raw in fragment[1:].split("/"):
        token = _unescape_token(raw)
        if isinstance(node, dict):
            if token not in node:
                raise _Unresolvable(
                    f"nothing named {_short(token)!r} at {json_pointer(walked) or '(document)'}"
                )
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                raise _Unresolvable(
                    f"no item {_short(token)!r} in the list at {json_pointer(walked)}"
                )
            node = node[int(token)]
        else:
            raise _Unresolvable(f"{json_pointer(walked)} is a {json_type(node)}, not a container")
        walked.append(token)
    return node


def _resolve_ref(doc: dict, ref: str, anchors: dict[str, dict] | None = None) -> Any:
    return _resolve_fragment(doc, _ref_fragment(ref, _root_base(doc)), anchors)


_DIALECTS = {
    "http://json-schema.org/draft-04/schema": "draft-04",
    "http://json-schema.org/draft-06/schema": "draft-06",
    "http://json-schema.org/draft-07/schema": "draft-07",
    "https://json-schema.org/draft/2019-09/schema": "2019-09",
    "https://json-schema.org/draft/2020-12/schema": "2020-12",
}
_OAS_DIALECT_PREFIX = "https://spec.openapis.org/oas/3.1/dialect/"


def _dialect(uri: str) -> str | None:
    """Name of a known JSON Schema dialect URI (never fetched), or None."""
    base = uri.strip().rstrip("#")
    for known, name in _DIALECTS.items():
        if base in (
            known,
            known.replace("https://", "http://"),
            known.replace("http://", "https://"),
        ):
            return name
    if base.startswith(_OAS_DIALECT_PREFIX):
        return "2020-12"
    return None


def _reference_problems(scan: _Scan) -> list[SpecProblem]:
    doc = scan.root
    base = _root_base(doc)
    problems: list[SpecProblem] = []
    for holder, keyword, value in scan.refs:
        try:
            fragment = _ref_fragment(value, base)
        except _Unresolvable as exc:
            problems.append(SpecProblem(scan.pointer(holder, keyword), exc.message))
            continue
        try:
            _resolve_fragment(doc, fragment, scan.anchors)
        except _Unresolvable as exc:
            problems.append(
                SpecProblem(
                    scan.pointer(holder, keyword),
                    f"{keyword} {_short(value)!r} does not resolve: {exc.message}",
                )
            )
    for holder, value in scan.ids:
        if holder is not doc:
            problems.append(
                SpecProblem(
                    scan.pointer(holder, "$id"),
                    f"$id {_short(value)!r} below the top level is not supported: references "
                    "are always resolved within this one document",
                )
            )
    for holder, value in scan.dialects:
        if _dialect(value) is None:
            problems.append(
                SpecProblem(
                    scan.pointer(holder, "$schema"),
                    f"unknown JSON Schema dialect {_short(value)!r} (never fetched); "
                    "use draft-04, draft-06, draft-07, 2019-09 or 2020-12",
                )
            )
    problems += _cycle_problems(scan)
    return problems


_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_SINGLE = ("not", "if", "then", "else")


def _cycle_problems(scan: _Scan) -> list[SpecProblem]:
    """Find $ref cycles that never pass through a property or an item.

    A schema may refer to itself through ``properties``/``items`` (a tree of nodes), but not
    only through ``$ref`` and in-place applicators (``allOf``, ``anyOf``, ``oneOf``, ``not``,
    ``if``/``then``/``else``): such a schema is defined in terms of itself alone.
    """
    doc = scan.root
    base = _root_base(doc)

    def successors(node: dict) -> list[Any]:
        out: list[Any] = []
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                target = _resolve_fragment(doc, _ref_fragment(ref, base), scan.anchors)
            except _Unresolvable:
                target = None
            if isinstance(target, dict):
                out.append(target)
        for keyword in _IN_PLACE_LISTS:
            value = node.get(keyword)
            if isinstance(value, list):
                out.extend(v for v in value if isinstance(v, dict))
        for keyword in _IN_PLACE_SINGLE:
            value = node.get(keyword)
            if isinstance(value, dict):
                out.append(value)
        return out

    white, grey, black = 0, 1, 2
    color: dict[int, int] = {}
    problems: list[SpecProblem] = []
    reported: set[frozenset[int]] = set()
    for holder, keyword, _ in scan.refs:
        if keyword != "$ref" or color.get(id(holder), white) != white:
            continue
        path: list[dict] = [holder]
        color[id(holder)] = grey
        iters = [iter(successors(holder))]
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                iters.pop()
                done = path.pop()
                color[id(done)] = black
                continue
            state = color.get(id(nxt), white)
            if state == white:
                color[id(nxt)] = grey
                path.append(nxt)
                iters.append(iter(successors(nxt)))
            elif state == grey:
                start = next(i for i, n in enumerate(path) if n is nxt)
                cycle = path[start:]
                signature = frozenset(id(n) for n in cycle)
                if signature in reported:
                    continue
                reported.add(signature)
                steps = [scan.pointer(n) for n in cycle] + [scan.pointer(nxt)]
                first_ref = next((n for n in cycle if isinstance(n.get("$ref"), str)), cycle[0])
                problems.append(
                    SpecProblem(
                        scan.pointer(first_ref, "$ref"),
                        "circular $ref: "
                        + " -> ".join("#" + s for s in steps)
                        + " never passes through a property or an item, so the schema is "
                        "defined only in terms of itself",
                    )
                )
    return problems


# --------------------------------------------------------------------------------------
# Kinds and summaries
# --------------------------------------------------------------------------------------

_JSON_SCHEMA_HINTS = (
    "type",
    "properties",
    "$defs",
    "definitions",
    "allOf",
    "anyOf",
    "oneOf",
    "items",
    "$ref",
    "enum",
    "const",
    "required",
)


def detect_kind(doc: Any) -> str:
    """Which kind of spec ``doc`` is: one of :data:`KINDS`, or SpecError."""
    if not isinstance(doc, dict):
        raise _fail("", f"a spec must be an object, not {json_type(doc)}; {SUPPORTED_TEXT}")
    if "swagger" in doc:
        raise _fail(
            "/swagger",
            "Swagger 2.0 is not supported; convert it to OpenAPI 3 "
            f"(for example with swagger2openapi); {SUPPORTED_TEXT}",
        )
    if "openapi" in doc:
        version = doc["openapi"]
        if not isinstance(version, str):
            raise _fail(
                "/openapi",
                f"openapi must be a version string such as '3.0.3' (quote it in YAML), not "
                f"{json_type(version)} {_short(version)}",
            )
        if re.fullmatch(r"3\.0\.\d+(-[\w.]+)?", version):
            return "openapi-3.0"
        if re.fullmatch(r"3\.1\.\d+(-[\w.]+)?", version):
            return "openapi-3.1"
        raise _fail("/openapi", f"OpenAPI {_short(version)} is not supported; {SUPPORTED_TEXT}")
    if "asyncapi" in doc:
        version = doc["asyncapi"]
        if not isinstance(version, str):
            raise _fail(
                "/asyncapi",
                f"asyncapi must be a version string such as '2.6.0' (quote it in YAML), not "
                f"{json_type(version)} {_short(version)}",
            )
        if re.fullmatch(r"2\.\d+\.\d+(-[\w.]+)?", version):
            return "asyncapi-2"
        if re.fullmatch(r"3\.0\.\d+(-[\w.]+)?", version):
            return "asyncapi-3"
        raise _fail("/asyncapi", f"AsyncAPI {_short(version)} is not supported; {SUPPORTED_TEXT}")
    if "$schema" in doc:
        dialect = doc["$schema"]
        if isinstance(dialect, str) and _dialect(dialect):
            return "json-schema"
        raise _fail(
            "/$schema",
            f"unknown JSON Schema dialect {_short(dialect)!r} (never fetched); {SUPPORTED_TEXT}",
        )
    if any(k in doc for k in _JSON_SCHEMA_HINTS):
        return "json-schema"
    raise _fail(
        "",
        "not a recognised spec: expected an 'openapi', 'asyncapi' or '$schema' key at the "
        f"top level; {SUPPORTED_TEXT}",
    )


@dataclass(frozen=True)
class SpecSummary:
    kind: str  # one of KINDS
    version: str  # the spec format version: "3.1.0", "2.6.0", or a dialect such as "2020-12"
    title: str
    api_version: str  # info.version ("" for JSON Schema)


def _summary(kind: str, doc: dict) -> SpecSummary:
    if kind == "json-schema":
        dialect = doc.get("$schema")
        version = _dialect(dialect) if isinstance(dialect, str) else None
        title = doc.get("title")
        return SpecSummary(kind, version or "2020-12", title if isinstance(title, str) else "", "")
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    title = info.get("title")
    api_version = info.get("version")
    return SpecSummary(
        kind,
        str(doc.get("openapi") or doc.get("asyncapi") or ""),
        title if isinstance(title, str) else "",
        api_version if isinstance(api_version, str) else "",
    )


# --------------------------------------------------------------------------------------
# Meta-schema validation (the user's document is only ever an *instance*)
# --------------------------------------------------------------------------------------


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {package} package is needed to validate API specs")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _openapi_meta(version: str) -> dict:
    folder = _package_dir("openapi_spec_validator") / "resources" / "schemas" / f"v{version}"
    return json.loads((folder / "schema.json").read_text(encoding="utf-8"))


@cache
def _json_schema_meta(dialect: str) -> dict:
    import jsonschema

    classes = {
        "draft-04": jsonschema.Draft4Validator,
        "draft-06": jsonschema.Draft6Validator,
        "draft-07": jsonschema.Draft7Validator,
        "2019-09": jsonschema.Draft201909Validator,
        "2020-12": jsonschema.Draft202012Validator,
    }
    return classes[dialect].META_SCHEMA


def _meta_schema(key: str) -> tuple[dict, str]:
    """(meta-schema, dialect it is written in) for a validation target."""
    if key == "openapi-3.0":
        return _openapi_meta("3.0"), "draft-04"
    if key == "openapi-3.1":
        return _openapi_meta("3.1"), "2020-12"
    return _json_schema_meta(key), key


@cache
def _rs_validator(key: str) -> Any:
    meta, dialect = _meta_schema(key)
    cls = {
        "draft-04": _jsonschema_rs.Draft4Validator,
        "draft-06": _jsonschema_rs.Draft6Validator,
        "draft-07": _jsonschema_rs.Draft7Validator,
        "2019-09": _jsonschema_rs.Draft201909Validator,
        "2020-12": _jsonschema_rs.Draft202012Validator,
    }[dialect]
    return cls(meta, offline=True, validate_formats=False)


def _refuse_retrieval(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


@cache
def _py_validator(key: str) -> Any:
    from jsonschema.validators import validator_for
    from referencing import Registry

    meta, _ = _meta_schema(key)
    cls = validator_for(meta)
    return cls(meta, registry=Registry(retrieve=_refuse_retrieval), format_checker=None)


def _real_tokens(instance: Any, path: Any) -> list[Any]:
    """jsonschema-rs reports keys that look like numbers as ints; map back to real keys."""
    tokens: list[Any] = []
    node = instance
    for seg in path:
        if isinstance(node, dict):
            key = str(seg)
            if key not in node and isinstance(seg, int):
                key = next(
                    (k for k in node if k.strip().lstrip("+-").isdigit() and int(k) == seg), key
                )
            tokens.append(key)
            node = node.get(key)
        elif isinstance(node, list):
            tokens.append(seg)
            node = node[seg] if isinstance(seg, int) and 0 <= seg < len(node) else None
        else:
            tokens.append(seg)
            node = None
    return tokens


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _tidy(message: str, instance: Any) -> str:
    """Replace a long dump of the offending value at the start of a message with its type."""
    if len(message) <= 200:
        return message
    for rendered in (_compact(instance), repr(instance)):
        if message.startswith(rendered):
            described = f"this {json_type(instance)}"
            return _short(described + message[len(rendered) :], 300)
    return _short(message, 300)


_RS_ALTERNATIVES = ("OneOfNotValid", "AnyOf")


def _rs_explain(error: Any, instance: Any, depth: int = 0) -> list[tuple[list[Any], str]]:
    kind = error.kind
    name = type(kind).__name__
    context = getattr(kind, "context", None) if name in _RS_ALTERNATIVES else None
    if context and depth < 8:
        branches = []
        for branch in context:
            branch = list(branch)
            if not branch:
                continue
            if any(type(e.kind).__name__ == "Required" and '"$ref"' in e.message for e in branch):
                continue  # the "or a Reference Object" alternative
            if all(
                type(e.kind).__name__ == "Type"
                and list(e.instance_path) == list(error.instance_path)
                for e in branch
            ):
                continue  # an alternative for another type of value
            branches.append(branch)
        if branches:
            # like jsonschema's best_match: the deepest error, then the fewest errors
            best = min(
                branches,
                key=lambda branch: (-max(len(list(e.instance_path)) for e in branch), len(branch)),
            )
            explained: list[tuple[list[Any], str]] = []
            for sub in best[:3]:
                explained += _rs_explain(sub, instance, depth + 1)
            return explained
    tokens = _real_tokens(instance, error.instance_path)
    return [(tokens, _tidy(error.message, error.instance))]


def _meta_problems(key: str, instance: Any, base: list[Any] | tuple = ()) -> list[SpecProblem]:
    """Validate ``instance`` against a trusted meta-schema; problems with JSON pointers."""
    problems: list[SpecProblem] = []
    seen: set[tuple[str, str]] = set()

    def add(tokens: list[Any], message: str) -> None:
        pointer = json_pointer([*base, *tokens])
        if (pointer, message) not in seen:
            seen.add((pointer, message))
            problems.append(SpecProblem(pointer, message))

    # Explain the first MAX_PROBLEMS errors; count a bounded number more, unexplained, so
    # that the SpecError can say how many were left out.
    if _jsonschema_rs is not None:
        validator = _rs_validator(key)
        if validator.is_valid(instance):
            return []
        for count, error in enumerate(validator.iter_errors(instance)):
            if count >= MAX_PROBLEMS * 20:
                break
            if count >= MAX_PROBLEMS:
                add(_real_tokens(instance, error.instance_path), _short(error.message, 200))
                continue
            for tokens, message in _rs_explain(error, instance):
                add(tokens, message)
        return problems

    from jsonschema.exceptions import best_match

    validator = _py_validator(key)
    for count, error in enumerate(validator.iter_errors(instance)):
        if count >= MAX_PROBLEMS * 20:
            break
        if count >= MAX_PROBLEMS:
            add(list(error.absolute_path), _short(error.message, 200))
            continue
        best = best_match([error]) or error
        add(list(best.absolute_path), _tidy(best.message, best.instance))
    return problems


# --------------------------------------------------------------------------------------
# Per-kind structural checks
# --------------------------------------------------------------------------------------

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _openapi_schema_sites(doc: dict):
    """(tokens, schema) of the Schema Objects an OpenAPI document declares directly."""

    def from_content(content: Any, tokens: list[Any]):
        for media, media_obj in _obj(content).items():
            if isinstance(media_obj, dict) and "schema" in media_obj:
                yield [*tokens, media, "schema"], media_obj["schema"]

    def from_params(params: Any, tokens: list[Any]):
        for i, param in enumerate(_list(params)):
            if isinstance(param, dict):
                if "schema" in param:
                    yield [*tokens, i, "schema"], param["schema"]
                yield from from_content(param.get("content"), [*tokens, i, "content"])

    def from_responses(responses: Any, tokens: list[Any]):
        for code, response in _obj(responses).items():
            if isinstance(response, dict):
                yield from from_content(response.get("content"), [*tokens, code, "content"])
                for name, header in _obj(response.get("headers")).items():
                    if isinstance(header, dict) and "schema" in header:
                        yield [*tokens, code, "headers", name, "schema"], header["schema"]

    def from_path_item(item: Any, tokens: list[Any]):
        item = _obj(item)
        yield from from_params(item.get("parameters"), [*tokens, "parameters"])
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            yield from from_params(op.get("parameters"), [*tokens, method, "parameters"])
            body = op.get("requestBody")
            if isinstance(body, dict):
                yield from from_content(
                    body.get("content"), [*tokens, method, "requestBody", "content"]
                )
            yield from from_responses(op.get("responses"), [*tokens, method, "responses"])

    for path, item in _obj(doc.get("paths")).items():
        yield from from_path_item(item, ["paths", path])
    for name, item in _obj(doc.get("webhooks")).items():
        yield from from_path_item(item, ["webhooks", name])
    components = _obj(doc.get("components"))
    for name, schema in _obj(components.get("schemas")).items():
        yield ["components", "schemas", name], schema
    for name, param in _obj(components.get("parameters")).items():
        if isinstance(param, dict) and "schema" in param:
            yield ["components", "parameters", name, "schema"], param["schema"]
    for name, header in _obj(components.get("headers")).items():
        if isinstance(header, dict) and "schema" in header:
            yield ["components", "headers", name, "schema"], header["schema"]
    for name, body in _obj(components.get("requestBodies")).items():
        if isinstance(body, dict):
            yield from from_content(
                body.get("content"), ["components", "requestBodies", name, "content"]
            )
    yield from from_responses(components.get("responses"), ["components", "responses"])
    for name, item in _obj(components.get("pathItems")).items():
        yield from from_path_item(item, ["components", "pathItems", name])


def _openapi_problems(kind: str, doc: dict) -> list[SpecProblem]:
    problems = _meta_problems(kind, doc)
    if kind == "openapi-3.1":
        dialect = doc.get("jsonSchemaDialect")
        if isinstance(dialect, str) and _dialect(dialect) != "2020-12":
            problems.append(
                SpecProblem(
                    "/jsonSchemaDialect",
                    f"only the OpenAPI 3.1 base dialect or JSON Schema 2020-12 is supported, "
                    f"not {_short(dialect)!r} (never fetched)",
                )
            )
        # The OpenAPI 3.1 meta-schema only says "object or boolean" for a Schema Object.
        for tokens, schema in _openapi_schema_sites(doc):
            if len(problems) >= MAX_PROBLEMS:
                break
            problems += _meta_problems("2020-12", schema, tokens)
    seen_templates: dict[str, str] = {}
    for path in _obj(doc.get("paths")):
        template = _norm_path(path)
        if template in seen_templates:
            problems.append(
                SpecProblem(
                    json_pointer(["paths", path]),
                    f"path {_short(path)!r} is the same as {_short(seen_templates[template])!r}: "
                    "templated paths that differ only in parameter names are identical",
                )
            )
        else:
            seen_templates[template] = path
    seen_ids: dict[str, str] = {}
    for path, item in _obj(doc.get("paths")).items():
        for method in HTTP_METHODS:
            op = _obj(_obj(item).get(method))
            op_id = op.get("operationId")
            if isinstance(op_id, str):
                where = f"{method.upper()} {path}"
                if op_id in seen_ids:
                    problems.append(
                        SpecProblem(
                            json_pointer(["paths", path, method, "operationId"]),
                            f"operationId {_short(op_id)!r} is also used by {seen_ids[op_id]}",
                        )
                    )
                else:
                    seen_ids[op_id] = where
    return problems


class _Checks:
    """Small helpers for hand-written structural checks."""

    def __init__(self) -> None:
        self.problems: list[SpecProblem] = []

    def add(self, tokens: list[Any], message: str) -> None:
        self.problems.append(SpecProblem(json_pointer(tokens), message))

    def obj(self, value: Any, tokens: list[Any], what: str, required: bool = False) -> bool:
        if value is None and not required:
            return False
        if not isinstance(value, dict):
            self.add(tokens, f"{what} must be an object, not {json_type(value)}")
            return False
        return True

    def string(self, parent: dict, key: str, tokens: list[Any], required: bool = False) -> None:
        if key not in parent:
            if required:
                self.add(tokens, f"'{key}' is a required property")
            return
        if not isinstance(parent[key], str):
            self.add([*tokens, key], f"{key} must be a string, not {json_type(parent[key])}")

    def strings(self, parent: dict, keys: tuple[str, ...], tokens: list[Any]) -> None:
        for key in keys:
            self.string(parent, key, tokens)

    def unexpected(self, parent: dict, allowed: set[str], tokens: list[Any], what: str) -> None:
        for key in parent:
            if key not in allowed and not key.startswith("x-"):
                self.add([*tokens, key], f"unexpected property {_short(key)!r} in {what}")


_ASYNCAPI_JSON_SCHEMA_FORMATS = (
    "application/vnd.aai.asyncapi",
    "application/schema+json",
    "application/schema+yaml",
)


def _asyncapi_payload_problems(message: dict, tokens: list[Any]) -> list[SpecProblem]:
    fmt = message.get("schemaFormat")
    if isinstance(fmt, str) and not fmt.startswith(_ASYNCAPI_JSON_SCHEMA_FORMATS):
        return []  # Avro, Protobuf, RAML...: not JSON Schema, not checked here
    payload = message.get("payload")
    if isinstance(payload, (dict, bool)):
        return _meta_problems("draft-07", payload, [*tokens, "payload"])
    return []


def _asyncapi_message(checks: _Checks, message: Any, tokens: list[Any]) -> None:
    if not checks.obj(message, tokens, "a message", required=True):
        return
    if "$ref" in message:
        return
    checks.strings(message, ("name", "title", "summary", "description", "contentType"), tokens)
    checks.problems += _asyncapi_payload_problems(message, tokens)


def _asyncapi2_problems(doc: dict) -> list[SpecProblem]:
    """AsyncAPI 2.x structure, checked by hand.

    No offline AsyncAPI meta-schema package exists on PyPI for Python, so this checks the
    structure the portal relies on: asyncapi, info.title and info.version, servers (url and
    protocol), channels with publish/subscribe operations and their messages (a message, a
    $ref or {oneOf: [...]}), with JSON-Schema payloads validated against draft-07.
    """
    c = _Checks()
    c.unexpected(
        doc,
        {
            "asyncapi",
            "id",
            "info",
            "servers",
            "defaultContentType",
            "channels",
            "components",
            "tags",
            "externalDocs",
        },
        [],
        "the document",
    )
    _asyncapi_info(c, doc)
    servers = doc.get("servers")
    if c.obj(servers, ["servers"], "servers"):
        for name, server in servers.items():
            t = ["servers", name]
            if c.obj(server, t, "a server", required=True) and "$ref" not in server:
                c.string(server, "url", t, required=True)
                c.string(server, "protocol", t, required=True)
    channels = doc.get("channels")
    if "channels" not in doc:
        c.add([], "'channels' is a required property")
    elif c.obj(channels, ["channels"], "channels"):
        for name, item in channels.items():
            t = ["channels", name]
            if not c.obj(item, t, "a channel", required=True) or "$ref" in item:
                continue
            c.unexpected(
                item,
                {
                    "$ref",
                    "description",
                    "servers",
                    "subscribe",
                    "publish",
                    "parameters",
                    "bindings",
                },
                t,
                "a channel",
            )
            c.string(item, "description", t)
            for action in ("publish", "subscribe"):
                op = item.get(action)
                if not c.obj(op, [*t, action], f"the {action} operation"):
                    continue
                c.strings(op, ("operationId", "summary", "description"), [*t, action])
                if "message" in op:
                    message = op["message"]
                    mt = [*t, action, "message"]
                    if isinstance(message, dict) and "oneOf" in message:
                        options = message["oneOf"]
                        if not isinstance(options, list) or not options:
                            c.add([*mt, "oneOf"], "oneOf must be a non-empty list of messages")
                        else:
                            for i, option in enumerate(options):
                                _asyncapi_message(c, option, [*mt, "oneOf", i])
                    else:
                        _asyncapi_message(c, message, mt)
    _asyncapi_components(c, doc)
    return c.problems


def _asyncapi_info(c: _Checks, doc: dict) -> None:
    info = doc.get("info")
    if "info" not in doc:
        c.add([], "'info' is a required property")
    elif c.obj(info, ["info"], "info"):
        c.string(info, "title", ["info"], required=True)
        c.string(info, "version", ["info"], required=True)
        c.string(info, "description", ["info"])


def _asyncapi_components(c: _Checks, doc: dict) -> None:
    components = doc.get("components")
    if not c.obj(components, ["components"], "components"):
        return
    for section, value in components.items():
        if section.startswith("x-"):
            continue
        if c.obj(value, ["components", section], f"components.{section}", required=True):
            if section == "schemas":
                for name, schema in value.items():
                    if isinstance(schema, (dict, bool)):
                        c.problems += _meta_problems(
                            "draft-07", schema, ["components", section, name]
                        )
                    else:
                        c.add(["components", section, name], "a schema must be an object")
            elif section == "messages":
                for name, message in value.items():
                    _asyncapi_message(c, message, ["components", section, name])


def _asyncapi3_problems(doc: dict) -> list[SpecProblem]:
    """AsyncAPI 3.0 structure, checked by hand (see _asyncapi2_problems for why).

    Checks asyncapi, info.title/version, servers (host and protocol), channels (address,
    messages), operations (action send/receive, a channel $ref into #/channels, message
    $refs into that channel's messages) and JSON-Schema payloads against draft-07.
    """
    c = _Checks()
    c.unexpected(
        doc,
        {
            "asyncapi",
            "id",
            "info",
            "servers",
            "defaultContentType",
            "channels",
            "operations",
            "components",
        },
        [],
        "the document",
    )
    _asyncapi_info(c, doc)
    servers = doc.get("servers")
    if c.obj(servers, ["servers"], "servers"):
        for name, server in servers.items():
            t = ["servers", name]
            if c.obj(server, t, "a server", required=True) and "$ref" not in server:
                c.string(server, "host", t, required=True)
                c.string(server, "protocol", t, required=True)
    channels = doc.get("channels")
    if c.obj(channels, ["channels"], "channels"):
        for name, channel in channels.items():
            t = ["channels", name]
            if not c.obj(channel, t, "a channel", required=True) or "$ref" in channel:
                continue
            c.unexpected(
                channel,
                {
                    "address",
                    "messages",
                    "title",
                    "summary",
                    "description",
                    "servers",
                    "parameters",
                    "tags",
                    "externalDocs",
                    "bindings",
                },
                t,
                "a channel",
            )
            address = channel.get("address")
            if address is not None and not isinstance(address, str):
                c.add(
                    [*t, "address"], f"address must be a string or null, not {json_type(address)}"
                )
            c.strings(channel, ("title", "summary", "description"), t)
            messages = channel.get("messages")
            if c.obj(messages, [*t, "messages"], "messages"):
                for mname, message in messages.items():
                    _asyncapi_message(c, message, [*t, "messages", mname])
    operations = doc.get("operations")
    if c.obj(operations, ["operations"], "operations"):
        for name, op in operations.items():
            t = ["operations", name]
            if not c.obj(op, t, "an operation", required=True) or "$ref" in op:
                continue
            c.unexpected(
                op,
                {
                    "action",
                    "channel",
                    "title",
                    "summary",
                    "description",
                    "security",
                    "tags",
                    "externalDocs",
                    "bindings",
                    "traits",
                    "messages",
                    "reply",
                },
                t,
                "an operation",
            )
            if "action" not in op:
                c.add(t, "'action' is a required property")
            elif op["action"] not in ("send", "receive"):
                c.add(
                    [*t, "action"],
                    f"action must be 'send' or 'receive', not {_short(op['action'])!r}",
                )
            c.strings(op, ("title", "summary", "description"), t)
            channel_ref = op.get("channel")
            if "channel" not in op:
                c.add(t, "'channel' is a required property")
                continue
            if not isinstance(channel_ref, dict) or not isinstance(channel_ref.get("$ref"), str):
                c.add(
                    [*t, "channel"], "channel must be a reference such as {$ref: '#/channels/name'}"
                )
                continue
            ref = channel_ref["$ref"]
            if not ref.startswith("#/channels/"):
                if ref.startswith("#"):
                    c.add([*t, "channel", "$ref"], f"{_short(ref)!r} must point into #/channels")
                continue
            messages = op.get("messages")
            if messages is None:
                continue
            if not isinstance(messages, list):
                c.add(
                    [*t, "messages"],
                    f"messages must be a list of references, not {json_type(messages)}",
                )
                continue
            for i, message in enumerate(messages):
                mref = message.get("$ref") if isinstance(message, dict) else None
                if not isinstance(mref, str):
                    c.add([*t, "messages", i], "a message of an operation must be a $ref")
                elif mref.startswith("#") and not mref.startswith(ref + "/messages/"):
                    c.add(
                        [*t, "messages", i, "$ref"],
                        f"{_short(mref)!r} is not a message of the operation's channel {ref!r}",
                    )
    _asyncapi_components(c, doc)
    return c.problems


def _json_schema_problems(doc: dict) -> list[SpecProblem]:
    dialect = doc.get("$schema")
    name = (_dialect(dialect) if isinstance(dialect, str) else None) or "2020-12"
    return _meta_problems(name, doc)


def _limit_problems(problems: list[SpecProblem]) -> list[SpecProblem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    extra = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], SpecProblem("", f"... and {extra} more problems")]


def validate_spec(doc: Any) -> SpecSummary:
    """Check a loaded document fully; return its summary or raise SpecError.

    Every problem names its JSON Pointer. References are checked (local only, resolvable,
    no pure cycles) and never fetched; the structure is checked against the official
    meta-schema for OpenAPI and JSON Schema and by hand for AsyncAPI.
    """
    scan = _scan(doc)
    kind = detect_kind(doc)
    problems = _reference_problems(scan)
    if kind.startswith("openapi"):
        problems += _openapi_problems(kind, doc)
    elif kind == "asyncapi-2":
        problems += _asyncapi2_problems(doc)
    elif kind == "asyncapi-3":
        problems += _asyncapi3_problems(doc)
    else:
        problems += _json_schema_problems(doc)
    if problems:
        raise SpecError(_limit_problems(problems))
    return _summary(kind, doc)


# --------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One entry of a spec's surface.

    OpenAPI: ``key`` "GET /orders/{id}", ``method`` "GET", ``path`` the path template,
    ``status_codes`` the documented responses. AsyncAPI: ``key`` "channel orders.created
    (publish)", ``path`` and ``channel`` the channel name (3.0: its address, else its key),
    ``action`` publish/subscribe (2.x) or send/receive (3.0). JSON Schema: ``key`` "schema"
    for the top level or "schema #/$defs/Name", ``path`` its JSON pointer.
    """

    key: str
    method: str = ""
    path: str = ""
    operation_id: str = ""
    summary: str = ""
    status_codes: list[str] = field(default_factory=list)
    channel: str = ""
    action: str = ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


_UNRESOLVED: dict = {}  # shared and never mutated: stands for what a $ref cannot reach


def _deref(doc: dict, node: Any) -> Any:
    """Follow a chain of local $refs (bounded, cycle-safe); unresolvable -> an empty dict."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        if seen >= MAX_REF_HOPS:
            return _UNRESOLVED
        try:
            node = _resolve_ref(doc, node["$ref"])
        except _Unresolvable:
            return _UNRESOLVED
        seen += 1
    return node


def list_operations(summary_kind: str, doc: Any) -> list[Operation]:
    """The operations (OpenAPI, AsyncAPI) or schemas (JSON Schema) a spec declares.

    ``doc`` should have passed :func:`validate_spec`; anything malformed is skipped rather
    than guessed at. OpenAPI 3.1 ``webhooks`` are not listed: they are requests the API
    makes, not operations a contract test can call.
    """
    if summary_kind not in KINDS:
        raise _fail(
            "", f"unknown spec kind {_short(summary_kind)!r}; expected one of {', '.join(KINDS)}"
        )
    _scan(doc)
    operations: list[Operation] = []
    if summary_kind.startswith("openapi"):
        for path, item in _obj(doc.get("paths")).items():
            item = _obj(_deref(doc, item))
            for method in HTTP_METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                codes = [str(code) for code in _obj(op.get("responses"))]
                operations.append(
                    Operation(
                        key=f"{method.upper()} {path}",
                        method=method.upper(),
                        path=path,
                        operation_id=_text(op.get("operationId")),
                        summary=_text(op.get("summary")) or _text(op.get("description")),
                        status_codes=codes,
                    )
                )
    elif summary_kind == "asyncapi-2":
        for name, item in _obj(doc.get("channels")).items():
            item = _obj(_deref(doc, item))
            for action in ("publish", "subscribe"):
                op = item.get(action)
                if not isinstance(op, dict):
                    continue
                operations.append(
                    Operation(
                        key=f"channel {name} ({action})",
                        path=name,
                        operation_id=_text(op.get("operationId")),
                        summary=_text(op.get("summary")) or _text(op.get("description")),
                        channel=name,
                        action=action,
                    )
                )
    elif summary_kind == "asyncapi-3":
        channels = _obj(doc.get("channels"))
        seen: set[str] = set()
        for name, op in _obj(doc.get("operations")).items():
            op = _obj(_deref(doc, op))
            channel_name = _asyncapi3_channel_name(doc, channels, op)
            action = _text(op.get("action"))
            key = f"channel {channel_name} ({action})"
            if key in seen:
                key = f"{key} [{name}]"
            seen.add(key)
            operations.append(
                Operation(
                    key=key,
                    path=channel_name,
                    operation_id=name,
                    summary=_text(op.get("summary")) or _text(op.get("title")),
                    channel=channel_name,
                    action=action,
                )
            )
    else:
        operations.append(
            Operation(
                key="schema",
                path="",
                summary=_text(doc.get("title")) or _text(doc.get("description")),
            )
        )
        for section in ("$defs", "definitions"):
            for name, schema in _obj(doc.get(section)).items():
                pointer = json_pointer([section, name])
                schema = _obj(schema)
                operations.append(
                    Operation(
                        key=f"schema #{pointer}",
                        path=pointer,
                        summary=_text(schema.get("title")) or _text(schema.get("description")),
                    )
                )
    return operations


def _asyncapi3_channel_name(doc: dict, channels: dict, op: dict) -> str:
    ref = _obj(op.get("channel")).get("$ref")
    if not isinstance(ref, str):
        return ""
    prefix = "#/channels/"
    key = _unescape_token(unquote(ref[len(prefix) :])) if ref.startswith(prefix) else ref
    channel = _obj(_deref(doc, channels.get(key)))
    address = channel.get("address")
    return address if isinstance(address, str) else key


# --------------------------------------------------------------------------------------
# Comparing two versions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference. ``location`` is a JSON Pointer through the document with local
    $refs followed (so a change in a shared schema is reported where each operation uses
    it); for something removed it is where the thing was in the old version."""

    kind: str
    location: str
    message: str


@dataclass
class SpecDiff:
    breaking: list[Change] = field(default_factory=list)
    compatible: list[Change] = field(default_factory=list)
    truncated: bool = False  # True when the limits stopped the comparison early

    @property
    def is_breaking(self) -> bool:
        return bool(self.breaking)


# Field-level change kinds get a prefix per direction ("response-field-removed").
_PREFIX = {
    "request": "request-field",
    "response": "response-field",
    "message": "payload-field",
    "schema": "property",
}
_NOUN = {"request": "field", "response": "field", "message": "field", "schema": "property"}
_STRICT_REMOVAL = {"response", "message", "schema"}  # removing a field breaks readers


@dataclass(frozen=True)
class _Entry:
    tokens: tuple  # relative JSON pointer tokens
    label: str  # dotted field path, "" for the schema itself
    kind: str  # suffix for field kinds ("removed"), or a full kind ("type-changed")
    detail: str
    breaking: bool
    field_kind: bool


class _Differ:
    def __init__(self, old: dict, new: dict, diff: SpecDiff):
        self.old = old
        self.new = new
        self.diff = diff
        self.memo: dict[tuple[int, int, str], tuple[_Entry, ...]] = {}
        self.active: set[tuple[int, int, str]] = set()
        self.work = 0
        self.keys: list[tuple[int, int, str]] = []
        self.old_path = ""  # the old spelling of the path being compared (OpenAPI)
        self.deadline = time.monotonic() + _setting_float("PONTIS_SPEC_DIFF_SECONDS", 1.0)

    # emission --------------------------------------------------------------------------
    def emit(self, kind: str, tokens: list[Any], message: str, breaking: bool) -> None:
        diff = self.diff
        if len(diff.breaking) + len(diff.compatible) >= MAX_CHANGES:
            diff.truncated = True
            return
        change = Change(kind, json_pointer(tokens), message)
        (diff.breaking if breaking else diff.compatible).append(change)

    def emit_schema(
        self, old: Any, new: Any, direction: str, base: list[Any], context: str
    ) -> None:
        for entry in self.compare(old, new, direction, 0):
            kind = f"{_PREFIX[direction]}-{entry.kind}" if entry.field_kind else entry.kind
            subject = f"{_NOUN[direction]} '{entry.label}' " if entry.label else ""
            self.emit(
                kind, [*base, *entry.tokens], f"{context}: {subject}{entry.detail}", entry.breaking
            )

    # schema comparison -----------------------------------------------------------------
    def resolve(self, doc: dict, node: Any) -> Any:
        return _deref(doc, node)

    def flatten(self, doc: dict, schema: Any, depth: int = 0) -> dict:
        schema = self.resolve(doc, schema)
        if not isinstance(schema, dict):
            return {}
        parts = schema.get("allOf")
        if not isinstance(parts, list) or depth > 16:
            return schema
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        properties: dict[str, Any] = {}
        required: list[Any] = []
        for part in parts:
            part = self.flatten(doc, part, depth + 1)
            properties.update(_obj(part.get("properties")))
            required += _list(part.get("required"))
            for key in ("type", "enum", "items", "nullable"):
                if key in part and key not in merged:
                    merged[key] = part[key]
        properties.update(_obj(schema.get("properties")))
        required += _list(schema.get("required"))
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
        return merged

    def compare(self, old: Any, new: Any, direction: str, depth: int) -> tuple[_Entry, ...]:
        old_r = self.resolve(self.old, old)
        new_r = self.resolve(self.new, new)
        key = (id(old_r), id(new_r), direction)
        if key in self.memo:
            return self.memo[key]
        if key in self.active or depth > MAX_DIFF_DEPTH:
            return ()
        self.work += 1
        if self.work > MAX_DIFF_WORK or (not self.work & 0xFF and time.monotonic() > self.deadline):
            self.work = MAX_DIFF_WORK + 1  # stop here, and stay stopped
            self.diff.truncated = True
            return ()
        self.active.add(key)
        try:
            entries = self._compare(old_r, new_r, direction, depth)
        finally:
            self.active.discard(key)
        if len(entries) > MAX_CHANGES:
            entries = entries[:MAX_CHANGES]
            self.diff.truncated = True
        result = tuple(entries)
        self.memo[key] = result
        self.keys.append(key)
        return result

    def _compare(self, old_r: Any, new_r: Any, direction: str, depth: int) -> list[_Entry]:
        o = self.flatten(self.old, old_r)
        n = self.flatten(self.new, new_r)
        strict = direction in _STRICT_REMOVAL  # removing a field breaks whoever reads it
        reader = direction == "response"  # the client only reads: new required is fine
        out: list[_Entry] = []

        def here(kind: str, detail: str, breaking: bool, tokens: tuple = ()) -> None:
            out.append(_Entry(tokens, "", kind, detail, breaking, False))

        def field_change(name: str, kind: str, detail: str, breaking: bool) -> None:
            out.append(_Entry(("properties", name), name, kind, detail, breaking, True))

        def nested(tokens: tuple, label: str, old_sub: Any, new_sub: Any) -> None:
            for sub in self.compare(old_sub, new_sub, direction, depth + 1):
                out.append(
                    replace(sub, tokens=(*tokens, *sub.tokens), label=_join(label, sub.label))
                )

        o_types, n_types = _types(o), _types(n)
        if o_types and n_types and o_types != n_types:
            here(
                "type-changed",
                f"type changed from {_fmt_types(o_types)} to {_fmt_types(n_types)}",
                True,
            )
        o_enum, n_enum = o.get("enum"), n.get("enum")
        if isinstance(o_enum, list) and isinstance(n_enum, list) and o_enum != n_enum:
            o_keys = {_compact(v): v for v in o_enum}
            n_keys = {_compact(v): v for v in n_enum}
            for key in [k for k in o_keys if k not in n_keys]:
                here("enum-value-removed", f"enum value {key} removed", True, ("enum",))
            for key in [k for k in n_keys if k not in o_keys]:
                here("enum-value-added", f"enum value {key} added", False, ("enum",))
        elif isinstance(n_enum, list) and "enum" not in o:
            here("enum-restricted", "values now restricted to an enum", not reader, ("enum",))
        o_text, n_text = o.get("description"), n.get("description")
        if o_text != n_text and (isinstance(o_text, str) or isinstance(n_text, str)):
            here("description-changed", "description changed", False, ("description",))

        o_props, n_props = _obj(o.get("properties")), _obj(n.get("properties"))
        o_req = {r for r in _list(o.get("required")) if isinstance(r, str)}
        n_req = {r for r in _list(n.get("required")) if isinstance(r, str)}
        removed = [k for k in o_props if k not in n_props]
        added = [k for k in n_props if k not in o_props]
        renamed: dict[str, str] = {}
        if strict:  # a removed field beside an added one of the same type: probably renamed
            free = list(added)
            for name in removed:
                signature = _types(self.flatten(self.old, o_props[name]))
                match = next(
                    (a for a in free if _types(self.flatten(self.new, n_props[a])) == signature),
                    None,
                )
                if signature and match is not None:
                    renamed[name] = match
                    free.remove(match)
        for name in removed:
            if name in renamed:
                detail = (
                    f"renamed to '{renamed[name]}' (one field removed and one of the same type "
                    "added)"
                )
                field_change(name, "renamed", detail, True)
            else:
                field_change(name, "removed", "removed", strict)
        for name in added:
            if name in renamed.values():
                continue
            if name in n_req and not reader:
                field_change(name, "added-required", "added as required", True)
            else:
                field_change(name, "added", "added", False)
        for name, new_prop in n_props.items():
            if name not in o_props:
                continue
            if name in n_req and name not in o_req and not reader:
                field_change(name, "made-required", "made required", True)
            elif name in o_req and name not in n_req:
                field_change(name, "made-optional", "made optional (it may be absent)", reader)
            nested(("properties", name), name, o_props[name], new_prop)

        if isinstance(o.get("items"), dict) and isinstance(n.get("items"), dict):
            nested(("items",), "[]", o["items"], n["items"])
        for keyword in ("oneOf", "anyOf"):
            o_sub, n_sub = o.get(keyword), n.get(keyword)
            if isinstance(o_sub, list) and isinstance(n_sub, list):
                for i, (a, b) in enumerate(zip(o_sub, n_sub, strict=False)):
                    nested((keyword, i), "", a, b)
        o_extra, n_extra = o.get("additionalProperties"), n.get("additionalProperties")
        if isinstance(o_extra, dict) and isinstance(n_extra, dict):
            nested(("additionalProperties",), "*", o_extra, n_extra)
        return out


def _join(prefix: str, label: str) -> str:
    """Dotted field path: ("lines", "[].quantity") -> "lines[].quantity"."""
    if not prefix or not label:
        return prefix or label
    return prefix + label if label.startswith("[]") else f"{prefix}.{label}"


def _types(schema: Any) -> frozenset[str]:
    if not isinstance(schema, dict):
        return frozenset()
    declared = schema.get("type")
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list):
        types = {t for t in declared if isinstance(t, str)}
    elif isinstance(schema.get("properties"), dict):
        types = {"object"}
    elif isinstance(schema.get("items"), dict):
        types = {"array"}
    else:
        return frozenset()
    if schema.get("nullable") is True:
        types.add("null")
    return frozenset(types)


def _fmt_types(types: frozenset[str]) -> str:
    return "|".join(sorted(types, key=lambda t: (t == "null", t)))


def _norm_path(path: str) -> str:
    return re.sub(r"\{[^}/]*\}", "{}", path)


def _params(
    doc: dict, item: dict, op: dict, base: list[Any]
) -> dict[tuple[str, str], tuple[list[Any], dict]]:
    """Parameters of an operation by (in, name), path-level ones overridden, with locations.

    Path parameters are keyed by their position in the path template, so renaming
    ``/orders/{id}`` to ``/orders/{orderId}`` is not a removed and an added parameter.
    """
    template = re.findall(r"\{([^}/]*)\}", str(base[1]))
    params: dict[tuple[str, str], tuple[list[Any], dict]] = {}
    for tokens, source in ((base[:-1], item.get("parameters")), (base, op.get("parameters"))):
        for i, param in enumerate(_list(source)):
            param = _deref(doc, param)
            if isinstance(param, dict) and isinstance(param.get("name"), str):
                where, name = str(param.get("in", "")), param["name"]
                if where == "path" and name in template:
                    name = f"#{template.index(name)}"
                params[(where, name)] = ([*tokens, "parameters", i], param)
    return params


def _diff_openapi(d: _Differ, old: dict, new: dict) -> None:
    old_paths, new_paths = _obj(old.get("paths")), _obj(new.get("paths"))
    new_by_norm = {_norm_path(p): p for p in new_paths}
    matched: set[str] = set()
    for old_path, old_item in old_paths.items():
        new_path = new_by_norm.get(_norm_path(old_path))
        oi = _obj(_deref(old, old_item))
        if new_path is None:
            methods = ", ".join(m.upper() for m in HTTP_METHODS if isinstance(oi.get(m), dict))
            d.emit(
                "path-removed", ["paths", old_path], f"path {old_path} removed ({methods})", True
            )
            continue
        matched.add(new_path)
        d.old_path = old_path
        ni = _obj(_deref(new, new_paths[new_path]))
        for method in HTTP_METHODS:
            oo, no = oi.get(method), ni.get(method)
            if isinstance(oo, dict) and not isinstance(no, dict):
                d.emit(
                    "operation-removed",
                    ["paths", old_path, method],
                    f"{method.upper()} {old_path} removed",
                    True,
                )
            elif isinstance(oo, dict) and isinstance(no, dict):
                _diff_operation(d, oi, oo, ni, no, new_path, method)
        for method in HTTP_METHODS:
            if isinstance(ni.get(method), dict) and not isinstance(oi.get(method), dict):
                d.emit(
                    "operation-added",
                    ["paths", new_path, method],
                    f"{method.upper()} {new_path} added",
                    False,
                )
    for new_path, new_item in new_paths.items():
        if new_path in matched:
            continue
        ni = _obj(_deref(new, new_item))
        for method in HTTP_METHODS:
            if isinstance(ni.get(method), dict):
                d.emit(
                    "operation-added",
                    ["paths", new_path, method],
                    f"{method.upper()} {new_path} added",
                    False,
                )


def _diff_operation(
    d: _Differ, oi: dict, oo: dict, ni: dict, no: dict, path: str, method: str
) -> None:
    old, new = d.old, d.new
    name = f"{method.upper()} {path}"
    base = ["paths", path, method]
    for key in ("summary", "description"):
        if _text(oo.get(key)) != _text(no.get(key)):
            d.emit("description-changed", [*base, key], f"{name}: {key} changed", False)

    old_base = ["paths", d.old_path, method]
    old_params, new_params = _params(old, oi, oo, old_base), _params(new, ni, no, base)
    for (where, key), (tokens, param) in old_params.items():
        pname = param["name"]
        if (where, key) not in new_params:
            d.emit(
                "parameter-removed", tokens, f"{name}: {where} parameter '{pname}' removed", False
            )
    for (where, key), (tokens, param) in new_params.items():
        pname = param["name"]
        label = f"{name}: {where} parameter '{pname}'"
        if (where, key) not in old_params:
            if param.get("required") is True:
                d.emit("parameter-added-required", tokens, f"{label} added as required", True)
            else:
                d.emit("parameter-added", tokens, f"{label} added", False)
            continue
        before = old_params[(where, key)][1]
        if param.get("required") is True and before.get("required") is not True:
            d.emit("parameter-made-required", [*tokens, "required"], f"{label} made required", True)
        if _text(before.get("description")) != _text(param.get("description")):
            d.emit(
                "description-changed",
                [*tokens, "description"],
                f"{label}: description changed",
                False,
            )
        d.emit_schema(
            before.get("schema"), param.get("schema"), "request", [*tokens, "schema"], f"{label}"
        )

    ob, nb = _obj(_deref(old, oo.get("requestBody"))), _obj(_deref(new, no.get("requestBody")))
    body = [*base, "requestBody"]
    if nb and not ob:
        if nb.get("required") is True:
            d.emit(
                "request-body-added-required",
                body,
                f"{name}: a required request body was added",
                True,
            )
        else:
            d.emit("request-body-added", body, f"{name}: an optional request body was added", False)
    elif ob and not nb:
        d.emit("request-body-removed", body, f"{name}: request body removed", False)
    elif ob and nb:
        if nb.get("required") is True and ob.get("required") is not True:
            d.emit("request-body-made-required", body, f"{name}: request body made required", True)
        o_content, n_content = _obj(ob.get("content")), _obj(nb.get("content"))
        for media in o_content:
            if media not in n_content:
                d.emit(
                    "request-media-type-removed",
                    [*body, "content", media],
                    f"{name}: request body {media} no longer accepted",
                    True,
                )
        for media, n_media in n_content.items():
            if media not in o_content:
                d.emit(
                    "request-media-type-added",
                    [*body, "content", media],
                    f"{name}: request body {media} accepted",
                    False,
                )
                continue
            d.emit_schema(
                _obj(o_content[media]).get("schema"),
                _obj(n_media).get("schema"),
                "request",
                [*body, "content", media, "schema"],
                f"{name} request body",
            )

    o_resp, n_resp = _obj(oo.get("responses")), _obj(no.get("responses"))
    for code, o_r in o_resp.items():
        tokens = [*base, "responses", code]
        if code not in n_resp:
            d.emit("status-code-removed", tokens, f"{name}: response {code} removed", True)
            continue
        o_r, n_r = _obj(_deref(old, o_r)), _obj(_deref(new, n_resp[code]))
        if _text(o_r.get("description")) != _text(n_r.get("description")):
            d.emit(
                "description-changed",
                [*tokens, "description"],
                f"{name}: response {code} description changed",
                False,
            )
        o_content, n_content = _obj(o_r.get("content")), _obj(n_r.get("content"))
        for media, o_media in o_content.items():
            if media not in n_content:
                d.emit(
                    "response-media-type-removed",
                    [*tokens, "content", media],
                    f"{name}: response {code} {media} removed",
                    True,
                )
                continue
            d.emit_schema(
                _obj(o_media).get("schema"),
                _obj(n_content[media]).get("schema"),
                "response",
                [*tokens, "content", media, "schema"],
                f"{name} response {code}",
            )
        for media in n_content:
            if media not in o_content:
                d.emit(
                    "response-media-type-added",
                    [*tokens, "content", media],
                    f"{name}: response {code} {media} added",
                    False,
                )
    for code in n_resp:
        if code not in o_resp:
            d.emit(
                "status-code-added",
                [*base, "responses", code],
                f"{name}: response {code} added",
                False,
            )


def _messages_v2(doc: dict, op: dict) -> dict[str, tuple[list[Any], dict]]:
    message = op.get("message")
    found: dict[str, tuple[list[Any], dict]] = {}
    if message is None:
        return found
    resolved = _obj(_deref(doc, message))
    options: list[tuple[list[Any], Any]]
    if isinstance(resolved.get("oneOf"), list):
        options = [(["message", "oneOf", i], m) for i, m in enumerate(resolved["oneOf"])]
    else:
        options = [(["message"], message)]
    for i, (tokens, raw) in enumerate(options):
        m = _obj(_deref(doc, raw))
        key = _text(m.get("name")) or _text(m.get("messageId"))
        if not key and isinstance(raw, dict) and isinstance(raw.get("$ref"), str):
            key = _unescape_token(raw["$ref"].rsplit("/", 1)[-1])
        found[key or f"#{i}"] = (tokens, m)
    return found


def _diff_messages(
    d: _Differ, old_msgs: dict, new_msgs: dict, base: list[Any], context: str
) -> None:
    for key, (tokens, message) in old_msgs.items():
        if key not in new_msgs:
            d.emit("message-removed", [*base, *tokens], f"{context}: message '{key}' removed", True)
            continue
        n_tokens, n_message = new_msgs[key]
        d.emit_schema(
            message.get("payload"),
            n_message.get("payload"),
            "message",
            [*base, *n_tokens, "payload"],
            f"{context} message '{key}' payload",
        )
    for key, (tokens, _) in new_msgs.items():
        if key not in old_msgs:
            d.emit("message-added", [*base, *tokens], f"{context}: message '{key}' added", False)


def _diff_asyncapi2(d: _Differ, old: dict, new: dict) -> None:
    old_ch, new_ch = _obj(old.get("channels")), _obj(new.get("channels"))
    for name, o_item in old_ch.items():
        if name not in new_ch:
            d.emit("channel-removed", ["channels", name], f"channel {name} removed", True)
            continue
        oi, ni = _obj(_deref(old, o_item)), _obj(_deref(new, new_ch[name]))
        for action in ("publish", "subscribe"):
            oo, no = oi.get(action), ni.get(action)
            tokens = ["channels", name, action]
            context = f"channel {name} ({action})"
            if isinstance(oo, dict) and not isinstance(no, dict):
                d.emit("operation-removed", tokens, f"{context} removed", True)
            elif isinstance(no, dict) and not isinstance(oo, dict):
                d.emit("operation-added", tokens, f"{context} added", False)
            elif isinstance(oo, dict) and isinstance(no, dict):
                _diff_messages(d, _messages_v2(old, oo), _messages_v2(new, no), tokens, context)
    for name in new_ch:
        if name not in old_ch:
            d.emit("channel-added", ["channels", name], f"channel {name} added", False)


def _diff_asyncapi3(d: _Differ, old: dict, new: dict) -> None:
    old_ch, new_ch = _obj(old.get("channels")), _obj(new.get("channels"))
    for name, o_item in old_ch.items():
        if name not in new_ch:
            d.emit("channel-removed", ["channels", name], f"channel {name} removed", True)
            continue
        oc, nc = _obj(_deref(old, o_item)), _obj(_deref(new, new_ch[name]))
        if oc.get("address") != nc.get("address"):
            d.emit(
                "channel-address-changed",
                ["channels", name, "address"],
                f"channel {name}: address changed from {_compact(oc.get('address'))} "
                f"to {_compact(nc.get('address'))}",
                True,
            )

        def messages(doc: dict, channel: dict) -> dict[str, tuple[list[Any], dict]]:
            return {
                key: (["messages", key], _obj(_deref(doc, m)))
                for key, m in _obj(channel.get("messages")).items()
            }

        _diff_messages(
            d, messages(old, oc), messages(new, nc), ["channels", name], f"channel {name}"
        )
    for name in new_ch:
        if name not in old_ch:
            d.emit("channel-added", ["channels", name], f"channel {name} added", False)
    old_ops, new_ops = _obj(old.get("operations")), _obj(new.get("operations"))
    for name, o_op in old_ops.items():
        if name not in new_ops:
            d.emit("operation-removed", ["operations", name], f"operation {name} removed", True)
            continue
        oo, no = _obj(_deref(old, o_op)), _obj(_deref(new, new_ops[name]))
        if oo.get("action") != no.get("action"):
            d.emit(
                "operation-action-changed",
                ["operations", name, "action"],
                f"operation {name}: action changed from {_compact(oo.get('action'))} "
                f"to {_compact(no.get('action'))}",
                True,
            )
        if _obj(oo.get("channel")).get("$ref") != _obj(no.get("channel")).get("$ref"):
            d.emit(
                "operation-channel-changed",
                ["operations", name, "channel"],
                f"operation {name}: channel changed",
                True,
            )
    for name in new_ops:
        if name not in old_ops:
            d.emit("operation-added", ["operations", name], f"operation {name} added", False)


def _diff_json_schema(d: _Differ, old: dict, new: dict) -> None:
    d.emit_schema(old, new, "schema", [], "schema")
    covered = set(d.keys)
    for section in ("$defs", "definitions"):
        o_defs, n_defs = _obj(old.get(section)), _obj(new.get(section))
        for name, o_def in o_defs.items():
            tokens = [section, name]
            if name not in n_defs:
                d.emit(
                    "definition-removed", tokens, f"schema #{json_pointer(tokens)} removed", True
                )
                continue
            key = (id(_deref(old, o_def)), id(_deref(new, n_defs[name])), "schema")
            if key in covered:
                continue
            d.emit_schema(o_def, n_defs[name], "schema", tokens, f"schema #{json_pointer(tokens)}")
        for name in n_defs:
            if name not in o_defs:
                tokens = [section, name]
                d.emit("definition-added", tokens, f"schema #{json_pointer(tokens)} added", False)


def _family(kind: str) -> str:
    return "openapi" if kind.startswith("openapi") else kind


def diff_specs(old_doc: Any, new_doc: Any) -> SpecDiff:
    """Compare two versions of a spec; classify each difference as breaking or compatible.

    Both documents are validated first (SpecError names which one is wrong). Local $refs
    are followed with a cycle guard; a change to a shared schema is reported at each
    operation that uses it. Kinds, by family:

    * OpenAPI, breaking: path-removed, operation-removed, status-code-removed,
      parameter-added-required, parameter-made-required, request-body-added-required,
      request-body-made-required, request-media-type-removed, response-media-type-removed,
      request-field-added-required, request-field-made-required, response-field-removed,
      response-field-renamed, response-field-made-optional, type-changed,
      enum-value-removed. Compatible: operation-added, status-code-added, parameter-added,
      parameter-removed, request-body-added, request-body-removed,
      request-media-type-added, response-media-type-added, request-field-added,
      request-field-removed, request-field-made-optional, response-field-added,
      enum-value-added, description-changed.
    * AsyncAPI, breaking: channel-removed, operation-removed, message-removed,
      channel-address-changed, operation-action-changed, operation-channel-changed,
      payload-field-removed, payload-field-renamed, payload-field-added-required,
      payload-field-made-required, type-changed, enum-value-removed. Compatible:
      channel-added, operation-added, message-added, payload-field-added,
      payload-field-made-optional, enum-value-added, description-changed.
    * JSON Schema, breaking: property-removed, property-renamed, property-added-required,
      property-made-required, definition-removed, type-changed, enum-value-removed.
      Compatible: property-added, property-made-optional, definition-added,
      enum-value-added, description-changed.
    """
    summaries = []
    for label, doc in (("old version", old_doc), ("new version", new_doc)):
        try:
            summaries.append(validate_spec(doc))
        except SpecError as exc:
            raise SpecError([SpecProblem(p.path, f"{label}: {p.message}") for p in exc.problems])
    old_kind, new_kind = summaries[0].kind, summaries[1].kind
    if _family(old_kind) != _family(new_kind):
        raise _fail("", f"cannot compare a {old_kind} document with a {new_kind} document")
    diff = SpecDiff()
    differ = _Differ(old_doc, new_doc, diff)
    if old_kind.startswith("openapi"):
        _diff_openapi(differ, old_doc, new_doc)
    elif old_kind == "asyncapi-2":
        _diff_asyncapi2(differ, old_doc, new_doc)
    elif old_kind == "asyncapi-3":
        _diff_asyncapi3(differ, old_doc, new_doc)
    else:
        _diff_json_schema(differ, old_doc, new_doc)
    return diff
