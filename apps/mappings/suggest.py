"""Suggested field pairs for a mapping, read from its source and target schemas.

Pure functions, no models. :func:`schema_fields` flattens a JSON Schema into its leaf fields
(``customer.id``, ``lines[*].sku``) with their types; :func:`suggest` pairs every target field
with the source fields whose names and types fit it best. The user accepts or rejects each
suggestion; nothing here writes a rule.

How a pair is scored:

* **Names.** A name is cut into words at case changes, digits and separators
  (``cust_id``, ``custId``, ``Cust-ID`` all give ``cust id``), plurals are made singular, and
  a small table typical of ERP/CRM integrations expands abbreviations (``qty`` ->
  ``quantity``) and reads synonyms as one word (``client`` -> ``customer``). The words of the
  two names are matched one to one: the same word counts 1, related words (``id`` and
  ``code``, ``customer`` and ``account``) and unlisted abbreviations (``qnty`` and
  ``quantity``) count less, numbers (``line_2``) weigh half a word, and the Dice
  coefficient of the matches is the similarity. The leaf names count most, the parents'
  names a little (``lines[*].sku`` vs ``items[*].sku``), and a whole path can match a flat
  name (``customer.id`` vs ``customerId``).
* **Types.** The same type fits best; a widening (integer -> number) almost as well; a
  conversion that needs a cast or a date rule less; what no rule can convert (an object into
  a number) not at all, and such pairs are never suggested. Each suggestion proposes the
  rule: copy, cast (with ``to``), date_format (with ``from``/``to``), or code_map when the
  source's enum has codes the target's does not (the codes equal but for case filled in).
* **Arrays.** A field inside an array paired with one that is not scores lower.

``score = name_score * (0.75 + 0.25 * type_score)``, lowered for different array nesting.
Pairs with equal scores are ordered by ``difflib.SequenceMatcher``'s ratio of the two paths,
then by schema order, so the result is deterministic.

Hostile schemas are bounded: paths deeper than :data:`MAX_DEPTH` steps stop as a leaf,
reading stops after :data:`MAX_FIELDS` fields or :data:`MAX_SCHEMA_NODES` schema objects,
and a ``$ref`` back to one of its own ancestors (a tree of categories) stops as a leaf.
Only local ``$ref`` values are followed, through apps.testing.checks' resolver; one that
cannot be resolved is read as "any value".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from apps.catalog.specs import json_type
from apps.mappings.expression import to_text
from apps.mappings.paths import WILDCARD, Path, PathError, format_path, parse_path
from apps.mappings.schemas import SideSchema
from apps.testing import checks

MAX_DEPTH = 10  # steps in a field path, names and [*] alike
MAX_FIELDS = 2_000  # fields read from one schema
MAX_SCHEMA_NODES = 100_000  # schema objects visited while reading one schema
MAX_BRANCHES = 200  # allOf, anyOf or oneOf branches read per schema object
MAX_BRANCH_NESTING = 16  # anyOf/oneOf inside anyOf/oneOf
MAX_ENUM_VALUES = 200  # enum values kept per field
MAX_PAIRS_PER_TARGET = 150  # sources compared in full with one target
MAX_CANDIDATES = 10  # sources kept per target before the one-to-one assignment
MAX_TIE_BREAKS = 30  # equally scored sources per target ordered by SequenceMatcher
MIN_NAME_SCORE = 0.5  # below this, names are too different to suggest
MAX_NAME_CHARS = 200  # of a name (and of a path, for SequenceMatcher) compared
MAX_NAME_WORDS = 12  # words of a name compared

NUMBER_WEIGHT = 0.5  # a number in a name (line_1) weighs half a word
RELATED_WORD = 0.5  # credit for related words: id ~ code
KNOWN_PREFIX = 0.75  # credit for an unlisted abbreviation by prefix: descr ~ description
KNOWN_LETTERS = 0.6  # credit for one by dropped letters: qnty ~ quantity
ARRAY_MISMATCH = 0.8  # factor when one field is inside more arrays than the other

STRING_FORMATS = ("date", "date-time", "time")  # string formats read as types of their own


# --------------------------------------------------------------------------------------
# Fields of a schema
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A leaf of a schema: a value a mapping rule reads or writes.

    ``types`` are JSON types, with strings of format date, date-time or time given as those
    formats; empty means any type. ``required`` says the field must be present whenever its
    parent object is (an array's ``[*]`` is as required as the array).
    """

    path: str
    steps: Path
    types: tuple[str, ...]
    required: bool = False
    nullable: bool = False
    enum: tuple[Any, ...] = ()

    @property
    def type(self) -> str:
        return " or ".join(self.types) if self.types else "any"


# A schema met while reading, with the $ref targets passed through to reach it (ids).
_Entry = tuple[Any, frozenset[int]]
_NOTHING: frozenset[int] = frozenset()


@dataclass
class _Shape:
    """What a group of schema objects says about one value, allOf-style merged. Each
    property and items schema keeps the $ref targets it was reached through: walking into
    it, a $ref back to one of them is a tree of itself (and only that: a base schema merged
    into both an order and its customer is not)."""

    types: set[str] | None = None  # None: not constrained
    nullable: bool = False
    formats: set[str] = field(default_factory=set)
    enum: list[Any] | None = None
    properties: dict[str, list[_Entry]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    items: list[_Entry] = field(default_factory=list)
    recursive: bool = False
    never: bool = False  # a false schema: no value fits

    def restrict_types(self, types: set[str]) -> None:
        self.types = set(types) if self.types is None else self.types & types

    def add(self, node: dict, via: frozenset[int]) -> None:
        kind = node.get("type")
        if isinstance(kind, str):
            self.restrict_types({kind})
        elif isinstance(kind, list):
            self.restrict_types({k for k in kind if isinstance(k, str)})
        if node.get("nullable") is True:  # OpenAPI 3.0
            self.nullable = True
        if isinstance(node.get("format"), str):
            self.formats.add(node["format"])
        values = [node["const"]] if "const" in node else node.get("enum")
        if isinstance(values, list):
            values = values[:MAX_ENUM_VALUES]
            self.enum = values if self.enum is None else [v for v in self.enum if v in values]
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name, schema in properties.items():
                if len(self.properties) >= MAX_FIELDS and name not in self.properties:
                    break
                self.properties.setdefault(str(name), []).append((schema, via))
        required = node.get("required")
        if isinstance(required, list):
            self.required.update(name for name in required if isinstance(name, str))
        if isinstance(node.get("items"), dict | bool):
            self.items.append((node["items"], via))

    def add_either(self, alternatives: list[_Shape], via: frozenset[int]) -> None:
        """Merge anyOf/oneOf branches: the value is one of them, so their union counts."""
        alternatives = [alt for alt in alternatives if not alt.never]
        if not alternatives:
            self.never = True
            return
        if all(alt.types is not None for alt in alternatives):
            self.restrict_types(set().union(*(alt.types for alt in alternatives)))
        self.nullable = self.nullable or any(alt.nullable for alt in alternatives)
        self.recursive = self.recursive or any(alt.recursive for alt in alternatives)
        for alt in alternatives:
            self.formats.update(alt.formats)
        if all(alt.enum is not None for alt in alternatives):
            merged: list[Any] = []
            for value in (value for alt in alternatives for value in alt.enum):
                if len(merged) >= MAX_ENUM_VALUES:
                    break
                if value not in merged:
                    merged.append(value)
            self.enum = merged if self.enum is None else [v for v in self.enum if v in merged]
        values = [alt for alt in alternatives if alt.types != {"null"}]
        names: list[str] = []
        for alt in values:
            names.extend(name for name in alt.properties if name not in names)
        for name in names[:MAX_FIELDS]:
            # A property of several branches is any one of its branch schemas.
            entries = [alt.properties[name] for alt in values if name in alt.properties]
            self.properties.setdefault(name, []).append(_either(entries, via))
        if values:
            self.required.update(set.intersection(*(alt.required for alt in values)))
        items = [alt.items for alt in values if alt.items]
        if items:
            self.items.append(_either(items, via))

    def field_types(self) -> tuple[str, ...] | None:
        """The leaf's types (see :class:`Field`); None when no value fits."""
        if self.types is None:
            # An enum without a type: the types of its values.
            return tuple(sorted({json_type(value) for value in self.enum or ()} - {"null"}))
        types = self.types - {"null"}
        if not types:
            return None if "null" not in self.types else ("null",)
        if {"integer", "number"} <= types:
            types.discard("integer")
        if "string" in types:
            formats = [fmt for fmt in STRING_FORMATS if fmt in self.formats]
            if len(formats) == 1:
                types = (types - {"string"}) | {formats[0]}
        return tuple(sorted(types))


def _either(branches: list[list[_Entry]], via: frozenset[int]) -> _Entry:
    """One entry standing for "any one of these branches, each all of its schemas"."""
    passed = via.union(*(v for entries in branches for _, v in entries))
    schemas = [{"allOf": [schema for schema, _ in entries]} for entries in branches]
    return (schemas[0] if len(schemas) == 1 else {"anyOf": schemas}), passed


class SchemaReader:
    """Walks one schema document once, depth-first in document order, within the bounds."""

    def __init__(self, document: Any):
        self.document = document if isinstance(document, dict) else {}
        self.fields: list[Field] = []
        self.visits = 0
        self.resolved: dict[str, Any] = {}
        self.branches: dict[tuple[int, frozenset[int]], _Shape] = {}

    def _target(self, ref: Any) -> Any:
        """The schema a local $ref names; None when it cannot be resolved."""
        if not isinstance(ref, str):
            return None
        if ref not in self.resolved:
            try:
                self.resolved[ref] = checks.deref(self.document, {"$ref": ref}, "the schema")
            except checks.ContractError:
                self.resolved[ref] = None
        return self.resolved[ref]

    def shape(self, nodes: list[Any], ancestors: frozenset[int], nesting: int = 0) -> _Shape:
        """The merged shape of schema objects that all apply (allOf, $ref, siblings).
        ``ancestors``: the $ref targets the walk came through to reach these objects."""
        shape = _Shape()
        # Depth first, in document order: a stack, children pushed in reverse.
        pending: list[_Entry] = [(node, _NOTHING) for node in reversed(nodes)]
        seen: set[int] = set()
        while pending:
            node, via = pending.pop()
            if self.visits >= MAX_SCHEMA_NODES:
                break
            self.visits += 1
            if node is False:
                shape.never = True
                continue
            if not isinstance(node, dict) or id(node) in seen:
                continue
            seen.add(id(node))
            shape.add(node, via)
            following: list[_Entry] = []
            if "$ref" in node:
                target = self._target(node["$ref"])
                if isinstance(target, dict) and id(target) in ancestors:
                    # A tree of itself: stop here, keeping only the type it declares.
                    shape.recursive = True
                    shape.add({"type": target["type"]} if "type" in target else {}, via)
                elif target is not None:
                    following.append((target, via | {id(target)}))
            branches = node.get("allOf")
            if isinstance(branches, list):
                following.extend((branch, via) for branch in branches[:MAX_BRANCHES])
            pending.extend(reversed(following))
            for keyword in ("anyOf", "oneOf"):
                branches = node.get(keyword)
                if isinstance(branches, list) and branches and nesting < MAX_BRANCH_NESTING:
                    inner = ancestors | via
                    alternatives = [
                        self.branch(branch, inner, nesting + 1)
                        for branch in branches[:MAX_BRANCHES]
                    ]
                    shape.add_either(alternatives, via)
        return shape

    def branch(self, node: Any, ancestors: frozenset[int], nesting: int) -> _Shape:
        """The shape of one anyOf/oneOf branch, read once: branches that repeat the same
        $refs (a ladder of anyOf) would otherwise cost 2^n."""
        key = (id(node), ancestors)
        found = self.branches.get(key)
        if found is None:
            found = self.branches[key] = self.shape([node], ancestors, nesting)
        return found

    def walk(self, entries: list[_Entry], steps: Path, required: bool, ancestors: frozenset[int]):
        if len(self.fields) >= MAX_FIELDS or self.visits >= MAX_SCHEMA_NODES:
            return
        inner = ancestors.union(*(via for _, via in entries))
        shape = self.shape([schema for schema, _ in entries], inner)
        if shape.never:
            return
        types = shape.types
        if len(steps) < MAX_DEPTH:
            if shape.properties and (types is None or "object" in types):
                for name, children in shape.properties.items():
                    self.walk(children, (*steps, name), name in shape.required, inner)
                return
            if shape.items and (types is None or "array" in types):
                self.walk(shape.items, (*steps, WILDCARD), required, inner)
                return
        field_types = shape.field_types()
        if field_types is None or not steps or len(self.fields) >= MAX_FIELDS:
            return
        if not field_types and (shape.properties or shape.recursive):
            field_types = ("object",)  # cut at the depth bound, or a tree of itself
        elif not field_types and shape.items:
            field_types = ("array",)
        self.fields.append(
            Field(
                path=format_path(steps),
                steps=steps,
                types=field_types,
                required=required,
                nullable=shape.nullable or "null" in (shape.types or ()),
                enum=tuple(value for value in shape.enum or () if value is not None),
            )
        )


def _document_and_root(schema: dict | SideSchema) -> tuple[Any, Any]:
    if isinstance(schema, SideSchema):
        return schema.document, schema.schema
    return schema, schema


def schema_fields(schema: dict | SideSchema) -> list[Field]:
    """The leaf fields of a JSON Schema (or of a mapping side's schema), in document order.

    Objects are walked into (``customer.id``), arrays too (``lines[*].sku``, ``tags[*]``);
    ``$ref`` (local), ``allOf`` (merged), ``anyOf``/``oneOf`` (any branch), ``nullable`` and
    type lists are understood. An object without declared properties is a leaf of type
    object. Bounded as the module doc says; never raises on a hostile schema.
    """
    document, root = _document_and_root(schema)
    reader = SchemaReader(document)
    reader.walk([(root, _NOTHING)], (), False, frozenset({id(root), id(document)}))
    return reader.fields


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------

# A single word -> its usual word. Abbreviations are "expanded", synonyms "read as".
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "acc": ("account",),
    "acct": ("account",),
    "addr": ("address",),
    "amt": ("amount",),
    "ccy": ("currency",),
    "cntry": ("country",),
    "ctry": ("country",),
    "cur": ("currency",),
    "curr": ("currency",),
    "cust": ("customer",),
    "dept": ("department",),
    "desc": ("description",),
    "descr": ("description",),
    "dob": ("birthdate",),
    "dt": ("date",),
    "fname": ("first", "name"),
    "inv": ("invoice",),
    "lname": ("last", "name"),
    "mgr": ("manager",),
    "msg": ("message",),
    "nbr": ("number",),
    "no": ("number",),
    "nr": ("number",),
    "num": ("number",),
    "org": ("organization",),
    "pct": ("percent",),
    "pos": ("position",),
    "qty": ("quantity",),
    "ref": ("reference",),
    "tel": ("phone",),
    "ts": ("timestamp",),
    "txn": ("transaction",),
    "trx": ("transaction",),
    "zip": ("postcode",),
}
SYNONYMS: dict[str, tuple[str, ...]] = {
    "birthday": ("birthdate",),
    "changed": ("updated",),
    "client": ("customer",),
    "comment": ("note",),
    "creditor": ("supplier",),
    "debitor": ("customer",),
    "debtor": ("customer",),
    "forename": ("first", "name"),
    "identifier": ("id",),
    "mail": ("email",),
    "modified": ("updated",),
    "organisation": ("organization",),
    "remark": ("note",),
    "surname": ("last", "name"),
    "telephone": ("phone",),
    "town": ("city",),
    "vendor": ("supplier",),
}
# Several words (after the tables above) -> the words they mean.
PHRASES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("article", "code"): ("sku",),
    ("article", "number"): ("sku",),
    ("birth", "date"): ("birthdate",),
    ("create", "date"): ("created",),
    ("created", "at"): ("created",),
    ("created", "date"): ("created",),
    ("created", "on"): ("created",),
    ("created", "timestamp"): ("created",),
    ("creation", "date"): ("created",),
    ("creation", "time"): ("created",),
    ("currency", "code"): ("currency",),
    ("date", "created"): ("created",),
    ("date", "of", "birth"): ("birthdate",),
    ("date", "updated"): ("updated",),
    ("e", "email"): ("email",),
    ("email", "address"): ("email",),
    ("family", "name"): ("last", "name"),
    ("given", "name"): ("first", "name"),
    ("item", "code"): ("sku",),
    ("last", "updated"): ("updated",),
    ("material", "number"): ("sku",),
    ("phone", "number"): ("phone",),
    ("post", "code"): ("postcode",),
    ("postal", "code"): ("postcode",),
    ("postcode", "code"): ("postcode",),
    ("product", "code"): ("sku",),
    ("stock", "keeping", "unit"): ("sku",),
    ("unit", "of", "measure"): ("uom",),
    ("update", "date"): ("updated",),
    ("updated", "at"): ("updated",),
    ("updated", "on"): ("updated",),
    ("updated", "timestamp"): ("updated",),
}
# Words that often, not always, name the same thing: they count RELATED_WORD.
RELATED: frozenset[frozenset[str]] = frozenset(
    frozenset(pair)
    for pair in (
        ("id", "key"),
        ("id", "code"),
        ("id", "number"),
        ("id", "uuid"),
        ("customer", "account"),
        ("customer", "partner"),
        ("supplier", "partner"),
        ("sku", "article"),
        ("sku", "product"),
        ("article", "item"),
        ("article", "product"),
        ("item", "product"),
        ("item", "line"),
        ("line", "position"),
        ("amount", "total"),
        ("amount", "value"),
        ("amount", "price"),
        ("price", "cost"),
        ("status", "state"),
        ("type", "kind"),
        ("type", "category"),
        ("description", "text"),
        ("description", "note"),
        ("phone", "mobile"),
        ("tax", "vat"),
        ("company", "organization"),
        ("name", "title"),
        ("street", "address"),
        ("invoice", "bill"),
        ("quantity", "count"),
    )
)
STOP_WORDS = frozenset({"of", "the"})
_KEEP_S = ("ss", "us", "is")
_WORD = re.compile(r"[A-Z]+(?![^\W\d_A-Z])|[A-Z][^\W\d_A-Z]*|[^\W\d_A-Z]+|\d+")
_SEPARATORS = re.compile(r"[\W_]+")
_MAX_PHRASE = max(len(phrase) for phrase in PHRASES)


def split_words(name: str) -> list[str]:
    """The lower-case words of a name in any case style: ``customerID`` -> customer, id."""
    words: list[str] = []
    for chunk in _SEPARATORS.split(name):
        words.extend(word.lower() for word in _WORD.findall(chunk))
    return words


def singular(word: str) -> str:
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_KEEP_S):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "uses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


@dataclass(frozen=True)
class Name:
    """A name read into the words it means, with the table entries that were used."""

    words: tuple[str, ...]
    rewrites: tuple[tuple[str, str, str], ...]  # (what was written, what it means, how)


@lru_cache(maxsize=8192)
def read_name(name: str) -> Name:
    """``cust_no`` -> customer, number (expanding 'cust' and 'no')."""
    raw = [singular(word) for word in split_words(name[:MAX_NAME_CHARS])][:MAX_NAME_WORDS]
    rewrites: dict[int, tuple[str, str, str]] = {}  # first raw word -> its rewrite
    words: list[tuple[str, int]] = []  # (word, the raw word it comes from)
    for index, word in enumerate(raw):
        for table, how in ((ABBREVIATIONS, "expanding"), (SYNONYMS, "reading")):
            if word in table:
                rewrites[index] = (word, " ".join(table[word]), how)
                words.extend((meant, index) for meant in table[word])
                break
        else:
            words.append((word, index))
    phrased: list[str] = []
    position = 0
    while position < len(words):
        for size in range(min(_MAX_PHRASE, len(words) - position), 1, -1):
            phrase = tuple(word for word, _ in words[position : position + size])
            if phrase in PHRASES:
                origins = sorted({origin for _, origin in words[position : position + size]})
                for origin in origins:
                    rewrites.pop(origin, None)
                written = " ".join(raw[origin] for origin in origins)
                rewrites[origins[0]] = (written, " ".join(PHRASES[phrase]), "reading")
                phrased.extend(PHRASES[phrase])
                position += size
                break
        else:
            phrased.append(words[position][0])
            position += 1
    unique = tuple(dict.fromkeys(word for word in phrased if word not in STOP_WORDS))
    return Name(unique, tuple(rewrites[index] for index in sorted(rewrites)))


def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(letter in letters for letter in short)


@lru_cache(maxsize=65536)
def word_credit(a: str, b: str) -> tuple[float, str]:
    """(how much two words count as the same, how): same, related, abbreviation or none."""
    if a == b:
        return 1.0, "same"
    if frozenset((a, b)) in RELATED:
        return RELATED_WORD, "related"
    short, long = (a, b) if (len(a), a) < (len(b), b) else (b, a)
    if len(short) >= 3 and short[0] == long[0] and not short.isdigit():
        # A short prefix, not a near-whole word: desc ~ description, not custom ~ customer.
        if long.startswith(short) and (len(short) <= 4 or len(long) - len(short) >= 3):
            return KNOWN_PREFIX, "abbreviation"
        if len(short) * 5 >= len(long) * 2 and _is_subsequence(short, long):
            return KNOWN_LETTERS, "abbreviation"
    return 0.0, "none"


@dataclass(frozen=True, eq=False)
class Words:
    """The distinct words of a name or path, ready to compare (numbers weigh less)."""

    words: tuple[str, ...]
    letters: frozenset[str]
    numbers: frozenset[str]
    weight: float

    @classmethod
    def of(cls, words: tuple[str, ...]) -> Words:
        numbers = frozenset(word for word in words if word.isdigit())
        letters = frozenset(words) - numbers
        return cls(words, letters, numbers, len(letters) + NUMBER_WEIGHT * len(numbers))


def _partial_matches(rest_s: list[str], rest_t: list[str]) -> list[tuple[float, str, str, str]]:
    """One-to-one matches of different words, best credit first: (credit, how, s, t)."""
    pairs = []
    for i, a in enumerate(rest_s):
        for j, b in enumerate(rest_t):
            credit, how = word_credit(a, b)
            if credit:
                pairs.append((-credit, i, j, how, a, b))
    pairs.sort()
    used_s: set[int] = set()
    used_t: set[int] = set()
    matches = []
    for negative_credit, i, j, how, a, b in pairs:
        if i not in used_s and j not in used_t:
            used_s.add(i)
            used_t.add(j)
            matches.append((-negative_credit, how, a, b))
    return matches


def _word_matches(s: Words, t: Words) -> list[tuple[float, str, str, str]]:
    """Equal words, then the best partial matches of the other words (not numbers)."""
    matches = [(1.0, "same", word, word) for word in s.words if word in t.words]
    rest_s = [word for word in s.words if word in s.letters and word not in t.letters]
    rest_t = [word for word in t.words if word in t.letters and word not in s.letters]
    if rest_s and rest_t:
        matches.extend(_partial_matches(rest_s, rest_t))
    return matches


def _similarity(s: Words, t: Words) -> float:
    """Dice coefficient of the one-to-one word matches, 0..1. Runs for every candidate pair,
    so equal words are counted with set operations and only the rest compared one by one."""
    if not s.words or not t.words:
        return 0.0
    if s.words == t.words:
        return 1.0
    shared = s.letters & t.letters
    matched = len(shared) + NUMBER_WEIGHT * len(s.numbers & t.numbers)
    if len(shared) < len(s.letters) and len(shared) < len(t.letters):
        rest_s = [word for word in s.words if word in s.letters and word not in shared]
        rest_t = [word for word in t.words if word in t.letters and word not in shared]
        matched += sum(credit for credit, *_ in _partial_matches(rest_s, rest_t))
    return 2 * matched / (s.weight + t.weight)


def word_similarity(s: tuple[str, ...], t: tuple[str, ...]) -> float:
    """How alike two lists of distinct words are, 0..1 (see the module doc)."""
    return _similarity(Words.of(s), Words.of(t))


# --------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeFit:
    """How well a source type fits a target type, and the rule that converts it."""

    score: float
    rule_kind: str
    rule_params: tuple[tuple[str, str], ...] = ()
    note: str = ""


_COPY = TypeFit(1.0, "copy")
_ISO_DATE = (("from", "iso"), ("to", "iso_date"))
_ISO = (("from", "iso"), ("to", "iso"))
TYPE_FITS: dict[tuple[str, str], TypeFit] = {
    ("integer", "number"): TypeFit(0.95, "copy", (), "an integer fits a number"),
    ("date", "string"): TypeFit(0.8, "copy", (), "a date is already text"),
    ("date-time", "string"): TypeFit(0.8, "copy", (), "a date-time is already text"),
    ("time", "string"): TypeFit(0.8, "copy", (), "a time is already text"),
    ("integer", "string"): TypeFit(0.7, "cast", (("to", "string"),)),
    ("number", "string"): TypeFit(0.7, "cast", (("to", "string"),)),
    ("boolean", "string"): TypeFit(0.6, "cast", (("to", "string"),)),
    ("date-time", "date"): TypeFit(
        0.6, "date_format", _ISO_DATE, "date-time → date drops the time of day"
    ),
    ("date", "date-time"): TypeFit(
        0.6,
        "date_format",
        (*_ISO, ("to_tz", "UTC")),
        "date → date-time needs a date rule (midnight UTC)",
    ),
    ("number", "integer"): TypeFit(
        0.5, "cast", (("to", "integer"),), "number → integer needs a cast that fails on decimals"
    ),
    ("string", "integer"): TypeFit(0.5, "cast", (("to", "integer"),)),
    ("string", "number"): TypeFit(0.5, "cast", (("to", "number"),)),
    ("string", "date"): TypeFit(
        0.5, "date_format", _ISO_DATE, "string → date needs a date rule; check the source format"
    ),
    ("string", "date-time"): TypeFit(
        0.5, "date_format", _ISO, "string → date-time needs a date rule; check the source format"
    ),
    ("date-time", "time"): TypeFit(
        0.5,
        "date_format",
        (("from", "iso"), ("to", "%H:%M:%S")),
        "date-time → time needs a date rule",
    ),
    ("string", "boolean"): TypeFit(0.4, "cast", (("to", "boolean"),)),
    ("integer", "boolean"): TypeFit(0.3, "cast", (("to", "boolean"),)),
    ("boolean", "integer"): TypeFit(0.3, "cast", (("to", "integer"),)),
    ("boolean", "number"): TypeFit(0.3, "cast", (("to", "number"),)),
}
_ANY_TARGET = TypeFit(0.8, "copy", (), "the target takes any type")
_ANY_SOURCE = TypeFit(0.5, "copy", (), "the source type is not declared")
_NO_FIT = TypeFit(0.0, "")


def _one_type_fit(source: str, target: str) -> TypeFit:
    if source == target:
        return _COPY
    fit = TYPE_FITS.get((source, target), _NO_FIT)
    if fit.rule_kind == "cast" and not fit.note:
        return TypeFit(
            fit.score, fit.rule_kind, fit.rule_params, f"{source} → {target} needs a cast"
        )
    return fit


@lru_cache(maxsize=1024)
def type_fit(source: tuple[str, ...], target: tuple[str, ...]) -> TypeFit:
    """Every source type must reach some target type: the worst of their best fits."""
    if not target:
        return _ANY_TARGET
    if not source:
        return _ANY_SOURCE
    worst: TypeFit | None = None
    for source_type in source:
        best = max(
            (_one_type_fit(source_type, target_type) for target_type in target),
            key=lambda fit: fit.score,
        )
        if worst is None or best.score < worst.score:
            worst = best
    return worst


def _enum_fit(source: Field, target: Field, fit: TypeFit) -> tuple[TypeFit, dict]:
    """The fit adjusted for the target's enum, and a code map's ``map`` when one is needed."""
    if fit.score == 0:
        return fit, {}
    if not source.enum:
        note = "; ".join(filter(None, [fit.note, "the target takes only " + _some(target.enum)]))
        return TypeFit(fit.score * 0.9, fit.rule_kind, fit.rule_params, note), {}
    missing = [value for value in source.enum if value not in target.enum]
    if not missing:
        return fit, {}
    codes = {}
    unmatched = []
    by_text = {_code(value).casefold(): value for value in target.enum if _code(value) is not None}
    for value in source.enum:
        key = _code(value)
        if key is not None and key.casefold() in by_text:
            codes[key] = by_text[key.casefold()]
        else:
            unmatched.append(value)
    note = "the codes differ: a code map"
    if unmatched:
        note += f" must say what to write for {_some(unmatched)}"
    else:
        note += " translates them"
    return TypeFit(fit.score * 0.8, "code_map", (), note), {"map": codes}


def _code(value: Any) -> str | None:
    try:
        return to_text(value)
    except ValueError:  # an object or array cannot be a code
        return None


def _some(values: tuple | list, limit: int = 4) -> str:
    shown = ", ".join(repr(value) for value in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


# --------------------------------------------------------------------------------------
# Suggestions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A proposed rule row: copy (or convert) ``source_path`` into ``target_path``.

    ``best`` marks the one-to-one choice for the target; the other suggestions of the same
    target are alternatives, best first.
    """

    target_path: str
    source_path: str
    score: float
    name_score: float
    type_score: float
    rule_kind: str
    rule_params: dict
    reason: str
    best: bool
    source_type: str
    target_type: str


@dataclass(frozen=True)
class _Reading:
    """A field's names read once: the leaf, its parent and the whole path."""

    leaf: Words
    parent: Words | None  # None: the leaf is at the top
    whole: Words
    arrays: int
    text: str  # the path in lower case without separators, for SequenceMatcher


class _NameScorer:
    """Name scores of field pairs, caching the similarity of each pair of word lists."""

    def __init__(self):
        self.interned: dict[tuple[str, ...], Words] = {}
        self.cache: dict[tuple[int, int], float] = {}

    def words(self, words: tuple[str, ...]) -> Words:
        found = self.interned.get(words)
        if found is None:
            found = self.interned[words] = Words.of(words)
        return found

    def read(self, item: Field) -> _Reading:
        names = [step for step in item.steps if isinstance(step, str)]
        leaf = read_name(names[-1]).words if names else ()
        parent = self.words(read_name(names[-2]).words) if len(names) > 1 else None
        whole = tuple(dict.fromkeys(w for name in names for w in read_name(name).words))
        text = "".join(re.sub(r"[\W_]+", "", name.lower()) for name in names)[-MAX_NAME_CHARS:]
        arrays = sum(step is WILDCARD for step in item.steps)
        return _Reading(self.words(leaf), parent, self.words(whole), arrays, text)

    def similarity(self, s: Words, t: Words) -> float:
        if s is t:
            return 1.0 if s.words else 0.0
        key = (id(s), id(t))  # interned, so the ids stay valid while the scorer lives
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = _similarity(s, t)
        return found

    def score(self, s: _Reading, t: _Reading) -> tuple[float, bool]:
        """(name score, whether the whole paths matched better than leaf and parent)."""
        leaf = self.similarity(s.leaf, t.leaf)
        if s.parent is None and t.parent is None:
            context = 1.0
        elif s.parent is None or t.parent is None:
            context = 0.5
        else:
            context = self.similarity(s.parent, t.parent)
        in_context = 0.85 * leaf + 0.15 * context
        if s.whole is s.leaf and t.whole is t.leaf:
            return in_context, False
        whole = 0.95 * self.similarity(s.whole, t.whole)
        return (whole, True) if whole > in_context else (in_context, False)


def _normal_path(text: str) -> str:
    """A target path with its indexes read as [*], so lines[0].sku counts as lines[*].sku."""
    try:
        steps = parse_path(text)
    except PathError:
        return text
    return format_path(tuple(WILDCARD if isinstance(step, int) else step for step in steps))


def _candidate_sources(sources: list[_Reading], targets: list[_Reading]) -> list[list[int]]:
    """For each target, the source indexes sharing a word that could match one of its own.

    When more than MAX_PAIRS_PER_TARGET do, those sharing the rarest words are kept (rare
    words say more: ``column_7`` ~ ``col7`` over ``column_8``), so that 500 fields that
    all share one word do not cost 500 x 500 full comparisons.
    """
    by_word: dict[str, list[int]] = {}
    for index, reading in enumerate(sources):
        for word in reading.whole.words:
            by_word.setdefault(word, []).append(index)
    by_letter: dict[str, list[str]] = {}
    for word in by_word:
        by_letter.setdefault(word[:1], []).append(word)
    matching_words: dict[str, list[str]] = {}
    result: list[list[int]] = []
    for reading in targets:
        weights: dict[int, float] = {}
        for word in reading.whole.words:
            if word not in matching_words:
                near = [w for w in by_letter.get(word[:1], ()) if word_credit(w, word)[0]]
                related = [w for pair in RELATED if word in pair for w in pair if w in by_word]
                matching_words[word] = list(dict.fromkeys(near + related))
            for source_word in matching_words[word]:
                rarity = 1 / len(by_word[source_word])
                for index in by_word[source_word]:
                    weights[index] = weights.get(index, 0.0) + rarity
        if len(weights) <= MAX_PAIRS_PER_TARGET:
            result.append(sorted(weights))
        else:
            result.append(sorted(weights, key=lambda i: (-weights[i], i))[:MAX_PAIRS_PER_TARGET])
    return result


def suggest(
    source_schema: dict | SideSchema,
    target_schema: dict | SideSchema,
    *,
    existing_target_paths: tuple[str, ...] | list[str] = (),
    limit_per_target: int = 3,
    one_to_one: bool = True,
) -> list[Suggestion]:
    """Source fields proposed for each target field, in target schema order.

    Targets in ``existing_target_paths`` (already mapped) are skipped. For each target the
    first suggestion is the ``best`` one and the rest (up to ``limit_per_target`` in all) are
    alternatives. With ``one_to_one`` the best choices are assigned greedily, highest score
    first, so no source is the best choice of two targets; a target whose sources were all
    taken keeps only alternatives. Deterministic for the same schemas.
    """
    limit_per_target = max(1, limit_per_target)
    done = {_normal_path(path) for path in existing_target_paths}
    sources = schema_fields(source_schema)
    targets = [item for item in schema_fields(target_schema) if item.path not in done]
    names = _NameScorer()
    source_readings = [names.read(item) for item in sources]
    target_readings = [names.read(item) for item in targets]
    candidates = _candidate_sources(source_readings, target_readings)

    # Each target's best MAX_CANDIDATES sources as (score, tie-break ratio, source index).
    ranked: dict[int, list[tuple[float, float, int]]] = {}
    for t_index, t_read in enumerate(target_readings):
        target = targets[t_index]
        scored = []  # (-score, source index): sorts best first, then in schema order
        for s_index in candidates[t_index]:
            pair = _score_pair(sources[s_index], target, source_readings[s_index], t_read, names)
            if pair is not None:
                scored.append((-pair[0], s_index))
        scored.sort()
        ranked[t_index] = _break_ties(scored, source_readings, t_read)

    chosen: dict[int, int] = {}
    if one_to_one:
        everything = [
            (entry[0], entry[1], t_index, entry[2])
            for t_index, entries in ranked.items()
            for entry in entries
        ]
        everything.sort(key=lambda entry: (-entry[0], -entry[1], entry[2], entry[3]))
        taken: set[int] = set()
        for _score, _ratio, t_index, s_index in everything:
            if t_index not in chosen and s_index not in taken:
                chosen[t_index] = s_index
                taken.add(s_index)
    else:
        chosen = {t_index: entries[0][2] for t_index, entries in ranked.items() if entries}

    result: list[Suggestion] = []
    for t_index, entries in ranked.items():
        best = chosen.get(t_index)
        order = [best] if best is not None else []
        order += [entry[2] for entry in entries if entry[2] != best]
        for s_index in order[:limit_per_target]:
            result.append(
                _suggestion(
                    sources[s_index],
                    targets[t_index],
                    source_readings[s_index],
                    target_readings[t_index],
                    names,
                    best=s_index == best,
                )
            )
    return result


def _break_ties(
    scored: list[tuple[float, int]], sources: list[_Reading], target: _Reading
) -> list[tuple[float, float, int]]:
    """The first MAX_CANDIDATES of ``scored`` (sorted (-score, source index)) as (score,
    ratio, source index), equal scores ordered by SequenceMatcher's ratio of the paths. The
    ratio is the slow part, so it is computed for the few pairs that can make the cut."""
    if not scored:
        return []
    cut = min(len(scored), MAX_CANDIDATES)
    last = scored[cut - 1][0]
    while cut < len(scored) and cut < MAX_TIE_BREAKS and scored[cut][0] == last:
        cut += 1
    matcher = SequenceMatcher(autojunk=False)
    matcher.set_seq2(target.text)
    entries = []
    for negative_score, s_index in scored[:cut]:
        matcher.set_seq1(sources[s_index].text)
        entries.append((-negative_score, round(matcher.ratio(), 4), s_index))
    entries.sort(key=lambda entry: (-entry[0], -entry[1], entry[2]))
    return entries[:MAX_CANDIDATES]


def _score_pair(
    source: Field, target: Field, s_read: _Reading, t_read: _Reading, names: _NameScorer
) -> tuple[float, float, bool, TypeFit, dict] | None:
    """(score, name score, whether whole paths matched, type fit, rule params); None when
    the names are too different or no rule fits the types. A tuple: it runs for every pair."""
    name_score, whole = names.score(s_read, t_read)
    if name_score < MIN_NAME_SCORE:
        return None
    fit = type_fit(source.types, target.types)
    params: dict = {}
    if target.enum:
        fit, params = _enum_fit(source, target, fit)
    if fit.score == 0:
        return None
    score = name_score * (0.75 + 0.25 * fit.score)
    if s_read.arrays != t_read.arrays:
        score *= ARRAY_MISMATCH
    return score, name_score, whole, fit, params


def _suggestion(
    source: Field,
    target: Field,
    s_read: _Reading,
    t_read: _Reading,
    names: _NameScorer,
    *,
    best: bool,
) -> Suggestion:
    score, name_score, whole, fit, params = _score_pair(source, target, s_read, t_read, names)
    return Suggestion(
        target_path=target.path,
        source_path=source.path,
        score=round(score, 3),
        name_score=round(name_score, 3),
        type_score=round(fit.score, 3),
        rule_kind=fit.rule_kind,
        rule_params=params or dict(fit.rule_params),
        reason=_reason(source, target, s_read, t_read, whole, fit),
        best=best,
        source_type=source.type,
        target_type=target.type,
    )


# --------------------------------------------------------------------------------------
# Reasons a person reads
# --------------------------------------------------------------------------------------


def _leaf_name(item: Field) -> str:
    names = [step for step in item.steps if isinstance(step, str)]
    return names[-1] if names else item.path


def _rewrites(own: list[str], other: list[str]) -> list[str]:
    """The table entries used to read ``own`` names whose words ``other`` does not have."""
    other_words = {singular(word) for name in other for word in split_words(name)}
    texts = []
    for name in own:
        for written, meant, how in read_name(name).rewrites:
            if set(written.split()) <= other_words:
                continue
            joiner = "to" if how == "expanding" else "as"
            texts.append(f"{how} {written!r} {joiner} {meant!r}")
    return texts


def _name_reason(
    source: Field, target: Field, s_read: _Reading, t_read: _Reading, whole: bool
) -> str:
    if whole:
        s_words, t_words = s_read.whole, t_read.whole
        s_names = [step for step in source.steps if isinstance(step, str)]
        t_names = [step for step in target.steps if isinstance(step, str)]
    else:
        s_words, t_words = s_read.leaf, t_read.leaf
        s_names, t_names = [_leaf_name(source)], [_leaf_name(target)]
    if s_names == t_names:
        return "same name"
    rewrites = list(dict.fromkeys(_rewrites(s_names, t_names) + _rewrites(t_names, s_names)))
    after = " after " + " and ".join(rewrites) if rewrites else ""
    if set(s_words.words) == set(t_words.words):
        if whole:
            return f"the path {source.path} reads as {target.path}{after}"
        same_words = split_words(s_names[0]) == split_words(t_names[0])
        return "names match" + (after or (" in another case style" if same_words else ""))
    parts = []
    matches = _word_matches(s_words, t_words)
    shared = [a for _credit, how, a, _b in matches if how == "same"]
    if shared:
        parts.append("both have " + ", ".join(repr(word) for word in shared))
    for _credit, how, a, b in matches:
        if how == "related":
            parts.append(f"{a!r} is related to {b!r}")
        elif how == "abbreviation":
            short, long = sorted((a, b), key=len)
            parts.append(f"{short!r} may be short for {long!r}")
    what = f"the paths {source.path} and {target.path}" if whole else "names"
    return f"{what} are similar" + (" (" + "; ".join(parts) + ")" if parts else "") + after


def _reason(
    source: Field, target: Field, s_read: _Reading, t_read: _Reading, whole: bool, fit: TypeFit
) -> str:
    parts = [_name_reason(source, target, s_read, t_read, whole)]
    if not whole and s_read.parent and t_read.parent and s_read.parent is not t_read.parent:
        matches = _word_matches(s_read.parent, t_read.parent)
        if any(how == "related" for _c, how, _a, _b in matches):
            parts.append("their parents are related")
    if s_read.arrays > t_read.arrays:
        parts.append("the source is inside an array and the target is not; a copy makes a list")
    elif s_read.arrays < t_read.arrays:
        parts.append("the target is inside an array and the source is not")
    if source.types == target.types:
        parts.append(f"both are {target.type}" if source.types else "types not declared")
    elif not fit.note:
        parts.append(f"{source.type} fits {target.type}")
    if fit.note:
        parts.append(fit.note)
    if source.nullable and target.required and not target.nullable:
        parts.append("the source may be null, the target may not")
    return "; ".join(parts)
