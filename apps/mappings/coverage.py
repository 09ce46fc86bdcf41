"""How completely a mapping spec covers its schemas and how well its tests exercise it.

:func:`spec_coverage` reads a spec, its rows, its tests and the lookup tables its rows name
(a constant number of queries however many rows and tests there are) and returns a
:class:`CoverageReport`. Read-only, and it never raises for a spec that cannot be used: a
spec that does not compile gets its compile problems in the report, a side without a schema
(or with one that cannot be read) gets a note, and what cannot be known is left out (the
counts are ``None``), never guessed.

What each part means
--------------------
``required_without_rule``
    Target fields the target schema requires (``required`` of objects, nested objects and
    array items too) that no row writes. A row covers a field when it writes the field, a
    whole ancestor of it (``customer`` covers ``customer.id``) or something inside it (a row
    writing ``meta.note`` makes the object ``meta``). Indexes count as ``[*]``. A field
    required inside an optional object counts only when that object is made: when some row
    writes into it (``billing.city`` is required once a row writes ``billing.street``). A
    required object or array is listed itself only when it has no required field of its own
    (otherwise those fields are listed: writing one of them makes it).
``unused_source_fields``
    Leaf fields of the source schema that no row reads. A row reads what its source paths
    name, every field inside them (a row copying ``customer`` reads ``customer.id``), and the
    fields its expression names (bare names relative to the record the row walks).
``unknown_source_paths``
    Source paths (and expression fields) of rows that the source schema does not declare.
``type_mismatches``
    Rows whose output can never be what the target field takes. Conservative: only what is
    certainly wrong is reported — a value of another JSON type (an integer into a string
    field, text into an integer field), a date where a date-time is wanted or text that is
    no date at all where a ``format: date`` string is wanted, ``null`` where null is not
    allowed, a literal value outside the target's ``enum``. Output types come from the rule
    kinds (rules.CAST_OUTPUT, a date format's own output, text kinds write strings, a lookup
    writes its table's text values…); a source's type from the source schema. Expressions
    and undeclared types are unknown and never reported.
``uncovered_enum_values``
    For code_map and lookup rows: the target enum values that no map value, table value or
    default produces (``side`` "target"), and the source enum values that the map or table
    has no entry for while the row has no default (``side`` "source"; at run time these
    fail).
``rows_not_exercised``
    Rows that no mapping test of the spec exercises: transforming each test's source, a row
    is exercised when its target path holds a value in the output (rows cannot write the
    same path or one inside another, so a path present is the row's own work). Not known
    (``None`` in the summary) when the spec does not compile.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from apps.mappings import dates, engine, schemas, suggest
from apps.mappings.expression import ExpressionError, to_text
from apps.mappings.expression import parse as parse_expression
from apps.mappings.paths import WILDCARD, Path, PathError, format_path, parse_path
from apps.mappings.rules import CAST_OUTPUT, show

__all__ = [
    "CoverageReport",
    "CoverageSummary",
    "EnumGap",
    "RowRef",
    "SchemaField",
    "TypeMismatch",
    "UnknownSourcePath",
    "spec_coverage",
]

MAX_LISTED_VALUES = 50  # enum values listed per gap
DATE_FORMATS = ("date", "date-time", "time")  # string formats read as types (as suggest does)
# A sample instant for seeing what a date format writes.
_SAMPLE = datetime(2024, 11, 28, 13, 45, 30, 123456, tzinfo=UTC)
_OFFSET = r"(?:[Zz]|[+-]\d{2}:?\d{2})?"
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?" + _OFFSET
_TEXT_SHAPES = (
    ("date", re.compile(r"\d{4}-\d{2}-\d{2}")),
    ("date-time", re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]" + _TIME)),
    ("time", re.compile(_TIME)),
)
# Output "types" besides the JSON types and DATE_FORMATS: text that is certainly no date
# (a constant "abc"), and a number written as text (a cast to decimal).
TEXT = "text"
NUMBER_TEXT = "number-text"
_LABELS = {
    "date": "a date (string)",
    "date-time": "a date-time (string)",
    "time": "a time (string)",
    TEXT: "text that is no date or time",
    NUMBER_TEXT: "a number as text",
}


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaField:
    """A field of a side's schema: its path and its type as suggest.Field names it."""

    path: str
    type: str


@dataclass(frozen=True)
class RowRef:
    """A rule row: its number (FieldRule.position) and target path."""

    row: int
    target_path: str


@dataclass(frozen=True)
class UnknownSourcePath:
    row: int
    target_path: str
    source_path: str
    in_expression: bool
    message: str


@dataclass(frozen=True)
class TypeMismatch:
    """``produces``: what the row writes (a JSON type, a string format, "text" or
    "number-text"); ``expected``: the target's types joined by " or "."""

    row: int
    target_path: str
    kind: str
    produces: str
    expected: str
    message: str


@dataclass(frozen=True)
class EnumGap:
    """Enum values of one side of a code_map or lookup row that the row does not cover.
    ``path`` is the field whose enum it is; ``values`` at most MAX_LISTED_VALUES of them,
    ``count`` all of them."""

    row: int
    target_path: str
    kind: str
    side: str
    path: str
    values: list[Any]
    count: int
    message: str


@dataclass
class CoverageSummary:
    """Counts; ``None`` where they cannot be known (no schema, or the spec does not
    compile). Percentages have one decimal and are ``None`` when there is nothing to
    count."""

    rows: int = 0
    tests: int = 0
    required_target_fields: int | None = None
    covered_required_fields: int | None = None
    source_fields: int | None = None
    used_source_fields: int | None = None
    rows_exercised: int | None = None
    required_covered_percent: float | None = None
    source_used_percent: float | None = None
    rows_exercised_percent: float | None = None


@dataclass
class CoverageReport:
    """What :func:`spec_coverage` found; :meth:`as_dict` is its JSON form."""

    spec_id: int | None
    revision: int | None
    compiles: bool
    compile_problems: list[engine.Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: CoverageSummary = field(default_factory=CoverageSummary)
    required_without_rule: list[SchemaField] = field(default_factory=list)
    unused_source_fields: list[SchemaField] = field(default_factory=list)
    unknown_source_paths: list[UnknownSourcePath] = field(default_factory=list)
    type_mismatches: list[TypeMismatch] = field(default_factory=list)
    uncovered_enum_values: list[EnumGap] = field(default_factory=list)
    rows_not_exercised: list[RowRef] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec_id": self.spec_id,
            "revision": self.revision,
            "compiles": self.compiles,
            "compile_problems": [problem.as_dict() for problem in self.compile_problems],
            "notes": list(self.notes),
            "summary": asdict(self.summary),
            "required_without_rule": [asdict(item) for item in self.required_without_rule],
            "unused_source_fields": [asdict(item) for item in self.unused_source_fields],
            "unknown_source_paths": [asdict(item) for item in self.unknown_source_paths],
            "type_mismatches": [asdict(item) for item in self.type_mismatches],
            "uncovered_enum_values": [asdict(item) for item in self.uncovered_enum_values],
            "rows_not_exercised": [asdict(item) for item in self.rows_not_exercised],
        }


# --------------------------------------------------------------------------------------
# Reading the schemas and the rows
# --------------------------------------------------------------------------------------


class _NodeReader(suggest.SchemaReader):
    """suggest's schema walk (the same fields, the same bounds), also keeping every node it
    passes — objects and arrays too — with whether its parent requires it."""

    def __init__(self, document: Any):
        super().__init__(document)
        self.required: dict[Path, bool] = {}

    def walk(self, entries, steps, required, ancestors):
        if steps and len(self.fields) < suggest.MAX_FIELDS:
            self.required.setdefault(steps, required)
        super().walk(entries, steps, required, ancestors)


@dataclass
class _Side:
    """A side's schema read once: its leaf fields by pattern, and its nodes' required flags."""

    schema: schemas.SideSchema
    fields: list[suggest.Field]
    by_pattern: dict[Path, suggest.Field]
    required: dict[Path, bool]

    @classmethod
    def read(cls, side: schemas.SideSchema) -> _Side:
        reader = _NodeReader(side.document)
        root = side.schema
        reader.walk([(root, frozenset())], (), False, frozenset({id(root), id(side.document)}))
        fields = reader.fields
        return cls(side, fields, {item.steps: item for item in fields}, reader.required)

    def info(self, steps: Path) -> tuple[bool, tuple[str, ...], bool, tuple[Any, ...]]:
        """(found, types, nullable, enum) of a path; types empty: unknown."""
        leaf = self.by_pattern.get(_pattern(steps))
        if leaf is not None:
            return True, leaf.types, leaf.nullable, leaf.enum
        found = schemas.find_field(self.schema, steps)
        if not found.found:
            return False, (), False, ()
        return True, tuple(sorted(found.types - {"null"})), "null" in found.types, ()


@dataclass
class _RowInfo:
    row: int
    target_text: str
    target: Path | None
    sources: list[tuple[str, Path | None]]
    kind: str
    params: dict
    reads: list[tuple[Path, bool]]  # (absolute source path, from an expression)


def _pattern(steps: Path) -> Path:
    return tuple(WILDCARD if isinstance(step, int) else step for step in steps)


def _parse(text: Any) -> Path | None:
    try:
        return parse_path(text)
    except PathError:
        return None


def _wildcards(steps: Path) -> int:
    return sum(1 for step in steps if step is WILDCARD)


def _record_prefix(target: Path, sources: list[Path]) -> Path:
    """The absolute path of the record an expression's bare names read (as the engine
    walks it: the first source path with [*], up to as many [*] as the target has)."""
    depth = _wildcards(target)
    if not depth:
        return ()
    for steps in sources:
        if _wildcards(steps) >= depth:
            seen = 0
            for index, step in enumerate(steps):
                if step is WILDCARD:
                    seen += 1
                    if seen == depth:
                        return steps[: index + 1]
        if _wildcards(steps):
            return ()  # the engine refuses this row; read from the payload
    return ()


def _row_info(rule: Any, index: int) -> _RowInfo:
    position = getattr(rule, "position", None)
    number = position if isinstance(position, int) and position > 0 else index + 1
    target = _parse(rule.target_path)
    target_text = format_path(target) if target else str(rule.target_path or "")
    raw = rule.source_paths if isinstance(rule.source_paths, list) else []
    sources = [(str(text), _parse(text)) for text in raw]
    params = rule.params if isinstance(rule.params, dict) else {}
    reads = [(steps, False) for _, steps in sources if steps]
    if rule.kind == "expression":
        try:
            parsed = parse_expression(params.get("expression"))
        except ExpressionError:
            parsed = None
        if parsed is not None:
            prefix = _record_prefix(target or (), [steps for _, steps in sources if steps])
            for root, steps in parsed.fields():
                reads.append((tuple(steps) if root == "source" else (*prefix, *steps), True))
    return _RowInfo(number, target_text, target, sources, rule.kind, params, reads)


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


def spec_coverage(spec: Any) -> CoverageReport:
    """The coverage report of a saved mapping spec (see the module doc). Read-only.

    Queries: the rows, the tests, the registered API specs of the sides (when the spec
    names them and they are not already loaded) and the lookup tables rows name (two) —
    the same number however many rows and tests there are.
    """
    rules = list(spec.rules.all())
    tests = list(spec.tests.all())
    rows = [_row_info(rule, index) for index, rule in enumerate(rules)]
    report = CoverageReport(spec_id=spec.pk, revision=spec.revision, compiles=False)
    report.summary.rows = len(rows)
    report.summary.tests = len(tests)

    sides: dict[str, schemas.SideSchema | None] = {}
    for name in ("source", "target"):
        try:
            sides[name] = schemas.side_schema(spec, name)
        except schemas.SchemaProblem as exc:
            sides[name] = None
            report.compile_problems.append(
                engine.Problem(f"the {name} schema cannot be used: {exc}", "", None, "compile")
            )
            report.notes.append(
                f"The {name} schema cannot be read ({exc}); what depends on it is not checked."
            )
        else:
            if sides[name] is None:
                report.notes.append(
                    f"The spec has no {name} schema; what depends on it is not checked."
                )
    source = _Side.read(sides["source"]) if sides["source"] is not None else None
    target = _Side.read(sides["target"]) if sides["target"] is not None else None

    names = [row.params.get("table") for row in rows if row.kind == "lookup"]
    lookups = engine.load_lookups(names)

    compiled = None
    try:
        compiled = engine.compile_rules(
            rules,
            source=sides["source"],
            target=sides["target"],
            lookups=lookups,
            source_format=spec.source_format,
            target_format=spec.target_format,
        )
    except engine.CompileError as exc:
        report.compile_problems.extend(exc.problems)
    report.compiles = compiled is not None and not report.compile_problems

    if target is not None:
        _required_fields(report, target, rows)
    if source is not None:
        _source_fields(report, source, rows)
    for row in rows:
        _type_mismatches(report, row, source, target)
        _enum_gaps(report, row, source, target, lookups)
    if report.compiles:
        _exercised(report, compiled, spec.source_format, tests, rows)
    else:
        report.notes.append(
            "The spec does not compile, so its tests cannot run: which rows they exercise "
            "is not known."
        )
    if not tests:
        report.notes.append("The spec has no mapping tests.")
    return report


def _percent(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100 * part / whole, 1)


def _prefixes(patterns: set[Path]) -> set[Path]:
    """Every strict prefix of the patterns (the empty path included)."""
    return {steps[:length] for steps in patterns for length in range(len(steps))}


def _covered(steps: Path, exact: set[Path], inside: set[Path]) -> bool:
    """Whether a path is one of ``exact``, inside one of them, or holds one of them."""
    if steps in inside:
        return True
    return any(steps[:length] in exact for length in range(len(steps) + 1))


def _required_fields(report: CoverageReport, side: _Side, rows: list[_RowInfo]) -> None:
    written = {_pattern(row.target) for row in rows if row.target}
    inside = _prefixes(written)
    in_force: dict[Path, bool] = {}
    for steps, required in side.required.items():  # parents come before their children
        parent = steps[:-1]
        made = not parent or in_force.get(parent, False) or _covered(parent, written, inside)
        in_force[steps] = required and made
    # The elements of an array ([*]) are as required as the array; the array is what is
    # counted, or the fields its elements require.
    forced = [steps for steps, force in in_force.items() if force and steps[-1] is not WILDCARD]
    with_required_child = {_container_of(steps) for steps in forced}
    counted = [steps for steps in forced if steps not in with_required_child]
    covered = 0
    for steps in counted:
        if _covered(steps, written, inside):
            covered += 1
            continue
        leaf = side.by_pattern.get(steps)
        if leaf is not None:
            kind = leaf.type
        else:
            child = next((other for other in side.required if other[:-1] == steps), None)
            kind = "array" if child is not None and child[-1] is WILDCARD else "object"
        report.required_without_rule.append(SchemaField(format_path(steps), kind))
    report.summary.required_target_fields = len(counted)
    report.summary.covered_required_fields = covered
    report.summary.required_covered_percent = _percent(covered, len(counted))


def _container_of(steps: Path) -> Path:
    """The object or array a field is in (``lines`` for ``lines[*].sku``)."""
    parent = steps[:-1]
    while parent and parent[-1] is WILDCARD:
        parent = parent[:-1]
    return parent


def _source_fields(report: CoverageReport, side: _Side, rows: list[_RowInfo]) -> None:
    reads = {_pattern(steps) for row in rows for steps, _ in row.reads}
    inside = _prefixes(reads)
    used = 0
    for item in side.fields:
        if _covered(item.steps, reads, inside):
            used += 1
        else:
            report.unused_source_fields.append(SchemaField(item.path, item.type))
    report.summary.source_fields = len(side.fields)
    report.summary.used_source_fields = used
    report.summary.source_used_percent = _percent(used, len(side.fields))
    for row in rows:
        for steps, in_expression in row.reads:
            if not steps or schemas.find_field(side.schema, steps).found:
                continue
            where = "the expression field" if in_expression else "the source path"
            report.unknown_source_paths.append(
                UnknownSourcePath(
                    row.row,
                    row.target_text,
                    format_path(steps),
                    in_expression,
                    f"{where} {format_path(steps)} is not in {side.schema.label}",
                )
            )


# --------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------


def _text_shape(text: str) -> str:
    for name, shape in _TEXT_SHAPES:
        if shape.fullmatch(text):
            return name
    return TEXT


def _value_type(value: Any) -> str:
    """What a literal JSON value is, a string's shape included."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return _text_shape(value)
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return ""


def _fits(produced: str, wanted: tuple[str, ...], nullable: bool) -> bool:
    """Whether a value of type ``produced`` may be what a field of types ``wanted`` takes.
    True unless certainly not ("string" is any text: it may hold a date)."""
    if not wanted or not produced or produced in wanted:
        return True
    if produced == "null":
        return nullable
    if produced == "integer":
        return "number" in wanted
    if produced == "number":
        return "integer" in wanted  # a whole number is an integer
    if produced in DATE_FORMATS or produced in (TEXT, NUMBER_TEXT):
        return "string" in wanted
    if produced == "string":
        return any(kind in wanted for kind in DATE_FORMATS)
    return False


def _label(kind: str) -> str:
    return _LABELS.get(kind, kind)


def _wanted_label(wanted: tuple[str, ...]) -> str:
    return " or ".join(_label(kind) for kind in wanted)


def _date_output(fmt: Any) -> tuple[str, str] | None:
    """(type, sample) of what a date_format ``to`` writes; None for a bad format."""
    try:
        checked = dates.check_format(fmt)
    except dates.DateFormatError:
        return None
    if checked == dates.ISO:
        return "date-time", "2024-11-28T13:45:30"
    sample = dates.write(_SAMPLE, checked)
    return _text_shape(sample), sample


def _enum_key(value: Any) -> tuple:
    """A key under which equal JSON values (1 and 1.0; not 1 and true) are equal."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null",)
    return ("json", repr(value))


def _type_mismatches(
    report: CoverageReport, row: _RowInfo, source: _Side | None, target: _Side | None
) -> None:
    if target is None or row.target is None:
        return
    found, wanted, nullable, enum = target.info(row.target)
    if not found or (not wanted and not enum):
        return
    enum_keys = {_enum_key(value) for value in enum}
    expected = _wanted_label(wanted) or "any type"

    def mismatch(produces: str, message: str) -> None:
        report.type_mismatches.append(
            TypeMismatch(row.row, row.target_text, row.kind, produces, expected, message)
        )

    def check(produces: str, what: str) -> None:
        if not _fits(produces, wanted, nullable):
            mismatch(produces, f"{what} {_label(produces)}, but the target wants {expected}")

    def check_value(value: Any, what: str) -> None:
        """A literal value the row writes: its type, and the target's enum."""
        produces = _value_type(value)
        if not _fits(produces, wanted, nullable):
            mismatch(
                produces,
                f"{what} {show(value)}, {_label(produces)}, but the target wants {expected}",
            )
        elif enum and value is not None and _enum_key(value) not in enum_keys:
            shown = ", ".join(show(option) for option in enum[:10])
            mismatch(
                produces,
                f"{what} {show(value)}, which is not one of the target's values ({shown})",
            )

    def check_source(index: int, what: str) -> None:
        if source is None or index >= len(row.sources) or row.sources[index][1] is None:
            return
        steps = row.sources[index][1]
        if _wildcards(steps) > _wildcards(row.target):
            if not _fits("array", wanted, nullable):
                mismatch(
                    "array",
                    f"{what} {format_path(steps)}, which has more [*] than the target: it "
                    f"writes a list, but the target wants {expected}",
                )
            return
        found_source, types, _, _ = source.info(steps)
        if not found_source or not types:
            return
        if all(not _fits(kind, wanted, nullable) for kind in types):
            produces = " or ".join(types)
            mismatch(
                produces,
                f"{what} {format_path(steps)}, {_wanted_label(types)} in the source schema, "
                f"but the target wants {expected}",
            )

    params = row.params
    kind = row.kind
    if kind == "copy":
        check_source(0, "copies")
    elif kind == "constant" and "value" in params:
        check_value(params["value"], "writes the constant")
    elif kind == "default":
        check_source(0, "copies")
        if "value" in params:
            check_value(params["value"], "writes the default")
    elif kind == "cast" and params.get("to") in CAST_OUTPUT:
        to = params["to"]
        produces = {"decimal": NUMBER_TEXT, "date": "date"}.get(to, CAST_OUTPUT[to])
        check(produces, f"a cast to {to} writes")
    elif kind == "date_format":
        output = _date_output(params.get("to"))
        if output is not None:
            produces, sample = output
            check(produces, f"the date format {params.get('to')!r} writes ({sample!r})")
    elif kind in ("concat", "substring", "pad", "trim", "upper", "lower"):
        check("string", f"{kind} writes")
    elif kind == "split":
        if "index" in params:
            check("string", "split with an index writes")
        else:
            check("array", "split without an index writes a list of texts:")
    elif kind == "code_map" and isinstance(params.get("map"), dict):
        for code, value in params["map"].items():
            check_value(value, f"maps {code!r} to")
        if "default" in params:
            check_value(params["default"], "writes the default")
    elif kind == "lookup":
        check("string", "a lookup writes the table's values:")
        if "default" in params:
            check_value(params["default"], "writes the default")
    elif kind == "arithmetic":
        check(NUMBER_TEXT if params.get("as") == "string" else "number", "arithmetic writes")
    elif kind == "conditional":
        _conditional_mismatches(row, check_value, check_source)


def _conditional_mismatches(row: _RowInfo, check_value, check_source) -> None:
    canonical = {format_path(steps): index for index, (_, steps) in enumerate(row.sources) if steps}

    def result(spec: dict, value_key: str, from_key: str, where: str) -> None:
        if from_key in spec:
            steps = _parse(spec[from_key])
            index = canonical.get(format_path(steps)) if steps else None
            if index is not None:
                check_source(index, f"{where} copies")
        elif value_key in spec:
            check_value(spec[value_key], f"{where} writes")

    cases = row.params.get("cases")
    for number, case in enumerate(cases if isinstance(cases, list) else [], start=1):
        if isinstance(case, dict):
            result(case, "then", "then_from", f"case {number}")
    result(row.params, "else", "else_from", "else")


# --------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------


def _code_of(value: Any) -> str | None:
    """The key a code map or lookup looks a value up by (as rules does)."""
    try:
        return to_text(value)
    except ValueError:
        return None


def _enum_gaps(
    report: CoverageReport,
    row: _RowInfo,
    source: _Side | None,
    target: _Side | None,
    lookups: dict[str, dict[str, str]],
) -> None:
    if row.kind == "code_map":
        entries = row.params.get("map")
        if not isinstance(entries, dict):
            return
        keys, values, what = set(entries), list(entries.values()), "the code map"
    elif row.kind == "lookup":
        table = row.params.get("table")
        if not isinstance(table, str) or table not in lookups:
            return  # an unknown table is a compile problem
        entries = lookups[table]
        keys, values, what = set(entries), list(entries.values()), f"the lookup table {table!r}"
    else:
        return
    has_default = "default" in row.params

    def gap(side: str, steps: Path, missing: list[Any], message: str) -> None:
        report.uncovered_enum_values.append(
            EnumGap(
                row.row,
                row.target_text,
                row.kind,
                side,
                format_path(steps),
                missing[:MAX_LISTED_VALUES],
                len(missing),
                message,
            )
        )

    if target is not None and row.target is not None:
        _, _, _, enum = target.info(row.target)
        produced = {_enum_key(value) for value in values}
        if has_default:
            produced.add(_enum_key(row.params["default"]))
        missing = [value for value in enum if _enum_key(value) not in produced]
        if missing:
            gap(
                "target",
                row.target,
                missing,
                f"{_count(missing, 'target value')} that {what} never writes: "
                + ", ".join(show(value) for value in missing[:10]),
            )
    steps = row.sources[0][1] if row.sources else None
    if source is not None and steps is not None and not has_default:
        _, _, _, enum = source.info(steps)
        missing = [value for value in enum if _code_of(value) not in keys]
        if missing:
            gap(
                "source",
                steps,
                missing,
                f"{_count(missing, 'source value')} that {what} has no entry for and the row "
                "has no default (these fail at run time): "
                + ", ".join(show(value) for value in missing[:10]),
            )


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def _present(tree: Any, steps: Path) -> bool:
    """Whether the output holds a value at the path (``[*]``: in any element)."""
    for position, step in enumerate(steps):
        if step is WILDCARD:
            if tree.__class__ is not list:
                return False
            rest = steps[position + 1 :]
            return any(_present(element, rest) for element in tree)
        if isinstance(step, str):
            if tree.__class__ is not dict or step not in tree:
                return False
            tree = tree[step]
        else:
            if tree.__class__ is not list or not -len(tree) <= step < len(tree):
                return False
            tree = tree[step]
    return True


def _exercised(
    report: CoverageReport,
    compiled: engine.CompiledMapping,
    source_format: str,
    tests: list,
    rows: list[_RowInfo],
) -> None:
    from apps.mappings.converters import ConversionError

    pending = [row for row in rows if row.target]
    for test in tests:
        if not pending:
            break
        if source_format == "json":
            payload = test.source_payload
        else:
            try:
                payload = engine.read_payload(test.source_text, source_format)
            except ConversionError as exc:
                report.notes.append(f"The source of the test {test.name!r} cannot be read: {exc}")
                continue
        output, _ = compiled.transform(payload, validate=False)
        pending = [row for row in pending if not _present(output, row.target)]
    exercised = {id(row) for row in rows if row.target} - {id(row) for row in pending}
    report.rows_not_exercised = [
        RowRef(row.row, row.target_text) for row in rows if id(row) not in exercised
    ]
    report.summary.rows_exercised = len(exercised)
    report.summary.rows_exercised_percent = _percent(len(exercised), len(rows))
