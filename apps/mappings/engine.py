"""The mapping engine: compile a spec's rows once, then transform payloads with them.

:func:`compile_spec` (or :func:`compile_rules` for rows not saved yet, as a sheet import
has) checks every row — paths, kinds, params, date formats, lookup tables, casts, source
paths against the source schema, target paths against the target schema, rows writing the
same target path or one inside another, how the ``[*]`` of sources and targets line up —
and raises :class:`CompileError` listing every problem with its row. Otherwise it returns a
:class:`CompiledMapping` whose :meth:`~CompiledMapping.transform` never raises for bad data:
lookup misses, bad dates, impossible casts and division by zero come back as
:class:`Problem` values naming the row and the target path, followed by the target
schema's verdict on the output, each violation naming the row that wrote the path.

Arrays: a row whose target has ``[*]`` runs once per element of the array its first source
path walks, and the n-th element of the source array becomes the n-th element of the target
array (``lines[*].sku`` -> ``items[*].code``: line items become items; nested ``[*]`` line up
left to right). The element is the record: other sources of the row either walk the same
array (read from the same element) or have no ``[*]`` (read from the payload); an
expression's bare names read the record. A source with more ``[*]`` than its target gives
a list (joined by concat, summed by arithmetic). A row whose target has ``[*]`` but whose
sources have none fills every element of that target array that other rows made (the
currency of every item, say). Objects on the way to a target path are created on write.
Objects and arrays copied whole are the payload's own (not deep copies): treat payload and
output as read-only.

Speed: everything is decided when compiling — paths become closures, params are checked
and bound, lookup tables are loaded — and nothing is parsed or looked up by rule per
record. Rows are grouped by the arrays they walk, so each source array is read once per
payload. The common row (one source name in, one target name out, in the same object as
its neighbours) runs in batches without a call per row beyond the rule's own function, and
inside arrays row by row over all elements ("column-wise"), so a row's settings are read
once per array, not once per element. Inside arrays the loop is chosen per row when
compiling, and a rule's shortcut for its common value (a builtin such as ``str.upper`` or
a code map's ``dict`` lookup, or one of the few inline tests of rules.Built.inline) runs
without a Python call per element; the rule's function takes the values it does not cover.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from apps.mappings import rules as rule_kinds
from apps.mappings import schemas
from apps.mappings.paths import (
    MISSING,
    WILDCARD,
    Path,
    PathError,
    WriteConflict,
    format_path,
    make_array_opener,
    make_getter,
    make_object_opener,
    make_setter,
    overlaps,
    parse_path,
    split_at_wildcards,
    wildcard_count,
    with_indexes,
)
from apps.mappings.rules import BuildContext, RuleFailure

__all__ = [
    "CompileError",
    "CompiledMapping",
    "Problem",
    "TransformResult",
    "compile_rules",
    "compile_spec",
]

MAX_SCHEMA_PROBLEMS = 50
MAX_JSON_SOURCE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong. ``kind``: compile (a row or the spec cannot be used), rule (a row
    could not make its value), schema (the output breaks the target schema), source (the
    payload could not be read), target (the output could not be rendered)."""

    message: str
    target_path: str = ""
    row: int | None = None
    kind: str = "rule"

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.target_path:
            where.append(self.target_path)
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "row": self.row,
            "target_path": self.target_path,
            "message": self.message,
        }


class CompileError(Exception):
    """The rows cannot be compiled; ``problems`` lists every reason, by row."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [str(problem) for problem in problems]
        text = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n- " + "\n- ".join(lines)
        super().__init__(text)


@dataclass
class TransformResult:
    """The target tree, its rendering for XML and CSV targets, and every problem."""

    output: Any
    problems: list[Problem]
    rendered: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------------------
# Compiled structure
# --------------------------------------------------------------------------------------


@dataclass
class _Row:
    """What compiling learnt about one row."""

    row: int
    target: Path
    target_text: str
    sources: list[Path]
    built: rule_kinds.Built
    required: bool
    driver: int | None = None  # index of the source path whose [*] the row walks


class _Step:
    """A row run inside a scope: make the value from the record, write it into the target."""

    __slots__ = (
        "produce",
        "key",
        "put",
        "required",
        "row",
        "target",
        "source",
        "simple",
        "target_path",
    )

    def __init__(self, produce, put_path, required, row, target, source, simple=None):
        self.produce = produce
        # (source path, function or None for a copy, fast type, fast function, inline
        # shortcut) of a row that reads one value of the record by names and writes it by
        # names: run in a batch (see _Scope.freeze; the shortcuts are the rule's, see
        # rules.Built).
        by_names = bool(put_path) and all(isinstance(step, str) for step in put_path)
        self.simple = simple if by_names else None
        self.target_path = put_path
        # A one-name relative target is written with a plain item assignment.
        single = len(put_path) == 1 and isinstance(put_path[0], str)
        self.key = put_path[0] if single else None
        self.put = None if single or not put_path else make_setter(put_path)
        self.required = required
        self.row = row
        self.target = target  # full target path, for messages
        self.source = source  # full driver source path, for messages (or None)


class _Block:
    """An array the scope walks: each element of the source array fills the element of the
    target array with the same index."""

    __slots__ = ("get", "open", "scope", "value_step")

    def __init__(self, get, open_array):
        self.get = get
        self.open = open_array
        self.scope = _Scope()
        self.value_step: _Step | None = None  # a row whose target ends in [*]


class _Scope:
    """The rows applied to one record and one target object, in row order.

    ``plan`` is what runs, a list of ``(kind, item)``: ``(_ROWS, (opener, rows))`` for a
    batch of simple rows, ``(_STEP, step)`` for any other row, ``(_BLOCK, block)`` for an
    array. A simple row is ``(reads, target name, function or None for a copy, step,
    fast type, fast function, column runner)``, where ``reads`` is a name, a list of names
    or a getter, and the column runner is the loop that runs the row over all elements of
    an array (chosen for the row's shape when compiling, see _run_columns). A row with an
    inline shortcut (rules.Built.inline) has its runner do it, and the shortcut's value in
    place of the fast function (the fast type None).
    """

    __slots__ = ("actions", "blocks", "plan")

    def __init__(self):
        self.actions: list[_Step | _Block] = []
        self.blocks: dict[tuple[str, str], _Block] = {}
        self.plan: list[tuple] = []

    def freeze(self) -> None:
        """Build the plan. Consecutive simple rows of one variant that write into the same
        object (``order`` for ``order.id`` and ``order.number``) go in one batch: the object
        is opened once, and each row reads the record and writes the object in a tight loop
        of its own (per record and element this loop is most of the engine's work)."""
        self.plan = []
        last = None
        for action in self.actions:
            if action.__class__ is _Block:
                action.scope.freeze()
                self.plan.append((_BLOCK, action))
                last = None
                continue
            if action.simple is None:
                self.plan.append((_STEP, action))
                last = None
                continue
            source, function, fast_type, fast, inline = action.simple
            *parent, key = action.target_path
            if source.__class__ is list:  # the names a row with several sources reads
                reads = source
                column = _column_many
            elif len(source) == 1:  # one name
                reads = source[0]
                if function is None:
                    column = _column_copy
                elif inline is not None:
                    column = _INLINE_COLUMNS[inline[0]]
                elif fast is not None:
                    column = _column_fast
                else:
                    column = _column_call
            else:  # a longer path: a getter
                reads = make_getter(source)
                column = _column_path
            if fast is None:
                fast_type = None
            if inline is not None:  # the runner does the shortcut; its value takes the slot
                fast_type, fast = None, inline[1]
            if parent != last:
                opener = make_object_opener(tuple(parent)) if parent else None
                self.plan.append((_ROWS, (opener, [])))
                last = parent
            self.plan[-1][1][1].append((reads, key, function, action, fast_type, fast, column))


# Plan entries: a general row, an array, or a batch of simple rows.
_STEP, _BLOCK, _ROWS = 0, 1, 2


@dataclass
class _Broadcast:
    """A row whose target has [*] but whose sources have none: it fills existing elements."""

    step: _Step
    getters: list  # read the arrays of the target path, one per [*]


def _bind(getter: Callable[[Any], Any], relative: bool) -> Callable[[Any, Any], Any]:
    if relative:
        return lambda record, root: getter(record)
    return lambda record, root: getter(root)


def _producer(built: rule_kinds.Built, sources: list[tuple[Path, bool]]):
    """A function ``(record, root) -> value`` for a compiled rule and its sources, each a
    path read from the record (relative) or from the payload. (Simple rows do not use it:
    _Scope.freeze batches them.)"""
    function = built.function
    if built.shape == "none":
        return lambda record, root: function()
    if built.shape == "record":
        return function
    if built.shape == "one":
        steps, relative = sources[0]
        get = make_getter(steps)
        if relative:
            return lambda record, root: function(get(record))
        return lambda record, root: function(get(root))
    if len(sources) == 2 and sources[0][1] and sources[1][1]:
        # The common case, two paths read from the record, without a comprehension's frame.
        first, second = (make_getter(steps) for steps, _ in sources)
        return lambda record, root: function([first(record), second(record)])
    bound = [_bind(make_getter(steps), relative) for steps, relative in sources]
    return lambda record, root: function([get(record, root) for get in bound])


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def _report(problems: list, step: _Step, indexes: tuple, message: str) -> None:
    problems.append(Problem(message, with_indexes(step.target, indexes), step.row, "rule"))


def _missing_message(step: _Step, indexes: tuple) -> str:
    if step.source is None:
        return "required, but the rule made no value"
    return f"required, but the source has no value at {with_indexes(step.source, indexes)}"


def _no_value(key: str, default: Any) -> Any:
    return default


def _run_scope(
    scope: _Scope, record: Any, root: Any, target: Any, problems: list, indexes: tuple
) -> None:
    for variant, item in scope.plan:
        if variant == _ROWS:
            _run_rows(item, record, target, problems, indexes)
        elif variant == _STEP:
            _run_step(item, record, root, target, problems, indexes)
        else:
            _run_block(item, record, root, target, problems, indexes)


def _run_rows(item: tuple, record: Any, target: Any, problems: list, indexes: tuple) -> None:
    """A batch of simple rows on one record. A row reads one name (the common case), a
    list of names (a row with several sources) or a longer path (through a getter)."""
    opener, rows = item
    parent = target if opener is None else None  # opened on the first write
    get = record.get if record.__class__ is dict else _no_value
    for reads, target_key, function, step, fast_type, fast, _ in rows:
        try:
            if reads.__class__ is str:
                value = get(reads, MISSING)
                if function is not None:
                    if value.__class__ is fast_type and (found := fast(value)) is not MISSING:
                        value = found
                    else:
                        value = function(value)
            elif reads.__class__ is list:
                value = function([get(name, MISSING) for name in reads])
            else:
                value = reads(record)
                if function is not None:
                    value = function(value)
        except RuleFailure as exc:
            _report(problems, step, indexes, str(exc))
            continue
        if value is MISSING:
            if step.required:
                _report(problems, step, indexes, _missing_message(step, indexes))
            continue
        if parent is None:
            try:
                parent = opener(target)
            except WriteConflict as exc:
                _report(problems, step, indexes, f"cannot write here: {exc}")
                return
        parent[target_key] = value


def _run_columns(
    scope: _Scope,
    elements: list,
    children: list,
    positions: list | None,
    root: Any,
    problems: list,
    indexes: tuple,
) -> None:
    """Run a block's plan over all its elements row by row ("column-wise"): each row's
    settings are unpacked once per array instead of once per element, and the common rows
    (one name in, one name out) run in loops of a few bytecodes per element, each in the
    runner chosen for its shape when compiling. ``children`` are the target objects of the
    ``elements``; ``positions`` their indexes in the array (None: 0, 1, 2, ...)."""
    gets = [element.get if element.__class__ is dict else _no_value for element in elements]
    for variant, item in scope.plan:
        if variant == _ROWS and item[0] is None:
            for row in item[1]:
                row[6](row, elements, gets, children, positions, problems, indexes)
            continue
        where = range(len(children)) if positions is None else positions
        for index, element, child in zip(where, elements, children, strict=False):
            if variant == _STEP:
                _run_step(item, element, root, child, problems, (*indexes, index))
            elif variant == _BLOCK:
                _run_block(item, element, root, child, problems, (*indexes, index))
            else:  # rows writing inside an object of the element
                _run_rows(item, element, child, problems, (*indexes, index))


# Column runners: one row over all elements of an array. ``row`` is the plan's tuple
# (reads, key, function, step, fast type, fast function, runner); see _Scope.


def _column_copy(row, elements, gets, children, positions, problems, indexes) -> None:
    """A copy of one name."""
    reads, key, _, step, _, _, _ = row
    for get, child in zip(gets, children, strict=False):
        value = get(reads, MISSING)
        if value is MISSING:
            if step.required:
                _report_missing(problems, step, _where(indexes, child, children, positions))
            continue
        child[key] = value


def _column_fast(row, elements, gets, children, positions, problems, indexes) -> None:
    """A rule with a shortcut on one name: the shortcut first, the rule when it has no
    answer."""
    reads, key, function, step, fast_type, fast, _ = row
    for get, child in zip(gets, children, strict=False):
        value = get(reads, MISSING)
        if value.__class__ is fast_type:
            found = fast(value)
            if found is not MISSING:
                child[key] = found
                continue
        _put(function, value, key, child, step, children, positions, problems, indexes)


def _column_integer_text(row, elements, gets, children, positions, problems, indexes) -> None:
    """A rule with the INTEGER_TEXT shortcut (a cast to integer) on one name."""
    reads, key, function, step, _, _, _ = row
    for get, child in zip(gets, children, strict=False):
        value = get(reads, MISSING)
        if value.__class__ is str and value.isdigit() and value.isascii():
            child[key] = int(value)
        else:
            _put(function, value, key, child, step, children, positions, problems, indexes)


def _column_number(row, elements, gets, children, positions, problems, indexes) -> None:
    """A rule with the NUMBER shortcut (a cast to number) on one name."""
    reads, key, function, step, _, _, _ = row
    for get, child in zip(gets, children, strict=False):
        value = get(reads, MISSING)
        cls = value.__class__
        if cls is int or (cls is float and value - value == 0):  # a finite float
            child[key] = value
        else:
            _put(function, value, key, child, step, children, positions, problems, indexes)


def _column_default(row, elements, gets, children, positions, problems, indexes) -> None:
    """A rule with the DEFAULT shortcut on one name: it always makes a value."""
    reads, key, _, _, _, fallback, _ = row
    for get, child in zip(gets, children, strict=False):
        value = get(reads, MISSING)
        if value is MISSING or value is None or value == "":
            child[key] = fallback
        else:
            child[key] = value


def _put(function, value, key, child, step, children, positions, problems, indexes) -> None:
    """A rule's function on one value of a column, written (or its problem reported): the
    runners with a shortcut call it for the values the shortcut does not cover."""
    try:
        value = function(value)
    except RuleFailure as exc:
        _report(problems, step, _where(indexes, child, children, positions), str(exc))
        return
    if value is MISSING:
        if step.required:
            _report_missing(problems, step, _where(indexes, child, children, positions))
        return
    child[key] = value


def _column_call(row, elements, gets, children, positions, problems, indexes) -> None:
    """A rule on one name."""
    reads, key, function, step, _, _, _ = row
    for get, child in zip(gets, children, strict=False):
        try:
            value = function(get(reads, MISSING))
        except RuleFailure as exc:
            _report(problems, step, _where(indexes, child, children, positions), str(exc))
            continue
        if value is MISSING:
            if step.required:
                _report_missing(problems, step, _where(indexes, child, children, positions))
            continue
        child[key] = value


def _column_many(row, elements, gets, children, positions, problems, indexes) -> None:
    """A rule on several names."""
    reads, key, function, step, _, _, _ = row
    two = len(reads) == 2
    first, second = reads if two else (None, None)
    for get, child in zip(gets, children, strict=False):
        try:
            if two:  # the common case, without a comprehension's frame
                value = function([get(first, MISSING), get(second, MISSING)])
            else:
                value = function([get(name, MISSING) for name in reads])
        except RuleFailure as exc:
            _report(problems, step, _where(indexes, child, children, positions), str(exc))
            continue
        if value is MISSING:
            if step.required:
                _report_missing(problems, step, _where(indexes, child, children, positions))
            continue
        child[key] = value


def _column_path(row, elements, gets, children, positions, problems, indexes) -> None:
    """A rule (or a copy) on a longer path, read with its getter."""
    single = (None, [row])
    where = range(len(children)) if positions is None else positions
    for index, element, child in zip(where, elements, children, strict=False):
        _run_rows(single, element, child, problems, (*indexes, index))


_INLINE_COLUMNS = {
    rule_kinds.INTEGER_TEXT: _column_integer_text,
    rule_kinds.NUMBER: _column_number,
    rule_kinds.DEFAULT: _column_default,
}


def _where(indexes: tuple, child: dict, children: list, positions: list | None) -> tuple:
    """The indexes of a target element (only worked out when there is a problem)."""
    number = next(number for number, candidate in enumerate(children) if candidate is child)
    return (*indexes, number if positions is None else positions[number])


def _report_missing(problems: list, step: _Step, indexes: tuple) -> None:
    _report(problems, step, indexes, _missing_message(step, indexes))


def _run_step(
    step: _Step, record: Any, root: Any, target: Any, problems: list, indexes: tuple
) -> None:
    try:
        value = step.produce(record, root)
    except RuleFailure as exc:
        _report(problems, step, indexes, str(exc))
        return
    if value is MISSING:
        if step.required:
            _report(problems, step, indexes, _missing_message(step, indexes))
        return
    if step.key is not None:
        target[step.key] = value
        return
    try:
        step.put(target, value)
    except WriteConflict as exc:
        _report(problems, step, indexes, f"cannot write here: {exc}")


def _run_block(
    block: _Block, record: Any, root: Any, target: Any, problems: list, indexes: tuple
) -> None:
    array = block.get(record)
    if array is MISSING or array is None:
        return
    if array.__class__ is not list:
        array = [array]  # XML: a repeated element that occurs once
    try:
        out = block.open(target)
    except WriteConflict as exc:
        problems.append(Problem(f"cannot write the array: {exc}", "", None, "rule"))
        return
    value_step = block.value_step
    if value_step is not None:
        produce = value_step.produce
        for index, element in enumerate(array):
            try:
                value = produce(element, root)
            except RuleFailure as exc:
                _report(problems, value_step, (*indexes, index), str(exc))
                continue
            if value is MISSING:
                if value_step.required:
                    where = (*indexes, index)
                    _report(problems, value_step, where, _missing_message(value_step, where))
                continue
            out.append(value)
        return
    existing = len(out)
    if not existing:  # the usual case: this block makes the target array
        children = [{} for _ in array]
        out.extend(children)
        _run_columns(block.scope, array, children, None, root, problems, indexes)
        return
    positions, elements, children = [], [], []
    for index, element in enumerate(array):
        if index < existing:
            child = out[index]
            if child is None:
                child = out[index] = {}
            elif child.__class__ is not dict:
                continue
        else:
            child = {}
            out.append(child)
        positions.append(index)
        elements.append(element)
        children.append(child)
    _run_columns(block.scope, elements, children, positions, root, problems, indexes)


def _elements(tree: Any, getters: list, indexes: tuple = ()) -> Iterable[tuple[dict, tuple]]:
    """(object, indexes) of every existing element a wildcard target path reaches."""
    value = getters[0](tree)
    if value is MISSING or value.__class__ is not list:
        return
    for index, element in enumerate(value):
        if len(getters) == 1:
            if element.__class__ is dict:
                yield element, (*indexes, index)
        else:
            yield from _elements(element, getters[1:], (*indexes, index))


class CompiledMapping:
    """A compiled spec: transform payloads with it, as often as needed (thread-safe)."""

    def __init__(
        self,
        *,
        scope: _Scope,
        broadcasts: list[_Broadcast],
        writers: dict[Path, int],
        validator: Any = None,
        source_format: str = "json",
        target_format: str = "json",
        row_count: int = 0,
    ):
        self._scope = scope
        self._broadcasts = broadcasts
        self._writers = writers
        self._validator = validator
        self.source_format = source_format
        self.target_format = target_format
        self.row_count = row_count

    def transform(self, payload: Any, *, validate: bool = True) -> tuple[Any, list[Problem]]:
        """(target tree, problems) for a source tree. Never raises for bad data."""
        problems: list[Problem] = []
        output: dict = {}
        _run_scope(self._scope, payload, payload, output, problems, ())
        for broadcast in self._broadcasts:
            self._fill_elements(broadcast, payload, output, problems)
        if validate and self._validator is not None:
            problems.extend(self.schema_problems(output))
        return output, problems

    @staticmethod
    def _fill_elements(broadcast: _Broadcast, payload: Any, output: Any, problems: list) -> None:
        """A broadcast row's value is the same for every element: made once, written to all."""
        step = broadcast.step
        try:
            value = step.produce(payload, payload)
        except RuleFailure as exc:
            problems.append(Problem(str(exc), format_path(step.target), step.row, "rule"))
            return
        if value is MISSING:
            if step.required:
                message = "required, but the rule made no value"
                problems.append(Problem(message, format_path(step.target), step.row, "rule"))
            return
        container = value.__class__ is dict or value.__class__ is list
        if len(broadcast.getters) == 1 and step.key is not None and not container:
            # The usual case: one value into every object of one array.
            array = broadcast.getters[0](output)
            if array.__class__ is list:
                key = step.key
                for element in array:
                    if element.__class__ is dict:
                        element[key] = value
            return
        for element, indexes in _elements(output, broadcast.getters):
            written = copy.deepcopy(value) if container else value
            if step.key is not None:
                element[step.key] = written
                continue
            try:
                step.put(element, written)
            except WriteConflict as exc:
                _report(problems, step, indexes, f"cannot write here: {exc}")

    def schema_problems(self, output: Any) -> list[Problem]:
        """The target schema's violations, each with the row that wrote its path."""
        found = []
        for violation in self._validator.violations(output, limit=MAX_SCHEMA_PROBLEMS):
            path_text = violation.path
            row = None
            try:
                steps = parse_path(path_text)
            except PathError:
                steps = ()
            else:
                path_text = format_path(steps)
                row = self._writer_of(steps)
            if path_text == "$":
                path_text = ""
            found.append(Problem(_short_violation(violation), path_text, row, "schema"))
        return found

    def _writer_of(self, steps: Path) -> int | None:
        pattern = tuple(WILDCARD if isinstance(step, int) else step for step in steps)
        for length in range(len(pattern), 0, -1):
            row = self._writers.get(pattern[:length])
            if row is not None:
                return row
        return None

    def run(self, source: Any, *, validate: bool = True) -> TransformResult:
        """Read a source in the spec's format (XML or CSV text, JSON text or an already
        parsed tree), transform it, and render the target in its format."""
        from apps.mappings import converters

        try:
            payload = read_payload(source, self.source_format)
        except converters.ConversionError as exc:
            return TransformResult(None, [Problem(str(exc), "", None, "source")])
        output, problems = self.transform(payload, validate=validate)
        rendered = None
        if self.target_format != "json":
            try:
                rendered = render_payload(output, self.target_format)
            except converters.ConversionError as exc:
                problems.append(Problem(str(exc), "", None, "target"))
        return TransformResult(output, problems, rendered)


def read_payload(source: Any, source_format: str) -> Any:
    """A source tree from text or bytes in a format (a parsed tree passes as it is)."""
    from apps.mappings import converters

    if source_format == "xml":
        return converters.xml_to_tree(source) if isinstance(source, str | bytes) else source
    if source_format == "csv":
        return converters.csv_to_record(source) if isinstance(source, str | bytes) else source
    if isinstance(source, bytes | str):
        if len(source) > MAX_JSON_SOURCE_BYTES:
            raise converters.ConversionError("the JSON source is larger than 10 MB")
        try:
            return json.loads(source)
        except (ValueError, RecursionError) as exc:
            raise converters.ConversionError(f"the source is not valid JSON: {exc}")
    return source


def render_payload(tree: Any, target_format: str) -> str:
    from apps.mappings import converters

    if target_format == "xml":
        return converters.tree_to_xml(tree)
    if target_format == "csv":
        return converters.record_to_csv(tree)
    return json.dumps(tree, ensure_ascii=False)


def _short_violation(violation: Any) -> str:
    """A violation's message without the path it starts with (the problem carries it)."""
    message = violation.message
    prefix = f"`{violation.path}`"
    if message.startswith(prefix):
        rest = message[len(prefix) :].lstrip(":").strip()
        if rest.startswith("is "):
            rest = rest[3:]
        return rest or message
    return message


# --------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------


def _row_number(rule: Any, index: int) -> int:
    position = getattr(rule, "position", None)
    return position if isinstance(position, int) and position > 0 else index + 1


@dataclass(frozen=True)
class _Target:
    row: int
    target: Path
    target_text: str


def _check_writers(compiled_rows: list[_Target], problems: list[Problem]) -> None:
    """Two rows writing the same target path, or one inside what the other writes."""

    def pattern(steps: Path) -> Path:
        return tuple(WILDCARD if isinstance(step, int) else step for step in steps)

    exact: dict[Path, list[_Target]] = {}
    inside: dict[Path, list[_Target]] = {}  # strict prefix -> rows writing below it
    for row in compiled_rows:
        key = pattern(row.target)
        for other in exact.get(key, []):
            if overlaps(other.target, row.target):
                problems.append(
                    Problem(
                        f"row {other.row} writes this target path too; a target path takes one row",
                        row.target_text,
                        row.row,
                        "compile",
                    )
                )
        for length in range(1, len(key)):
            for other in exact.get(key[:length], []):
                if overlaps(other.target, row.target):
                    problems.append(
                        Problem(
                            f"row {other.row} writes {other.target_text} as a whole; "
                            "this row writes inside it",
                            row.target_text,
                            row.row,
                            "compile",
                        )
                    )
        for other in inside.get(key, []):
            if overlaps(other.target, row.target):
                problems.append(
                    Problem(
                        f"row {other.row} writes {other.target_text} inside this path; "
                        "a row cannot write a value and another row inside it",
                        row.target_text,
                        row.row,
                        "compile",
                    )
                )
        exact.setdefault(key, []).append(row)
        for length in range(1, len(key)):
            inside.setdefault(key[:length], []).append(row)


def _field_problem(side: schemas.SideSchema | None, steps: Path, what: str) -> str | None:
    if side is None:
        return None
    info = schemas.find_field(side, steps)
    if info.found:
        return None
    return f"{what} {format_path(steps)} is not in {side.label}"


def compile_rules(
    rules: Iterable[Any],
    *,
    source: schemas.SideSchema | None = None,
    target: schemas.SideSchema | None = None,
    lookups: Mapping[str, Mapping[str, str]] | None = None,
    source_format: str = "json",
    target_format: str = "json",
) -> CompiledMapping:
    """Compile rows (FieldRule objects, saved or not, or anything with their attributes).

    ``lookups`` maps table names to {key: value}; None skips checking and using tables
    (lookup rows then always miss). Raises CompileError with every problem found.
    """
    problems: list[Problem] = []
    ordered = sorted(
        enumerate(rules),
        key=lambda pair: (_row_number(pair[1], pair[0]), getattr(pair[1], "pk", None) or 0),
    )
    compiled_rows: list[_Row] = []
    writers: list[_Target] = []
    for index, rule in ordered:
        row, written = _compile_row(
            rule, _row_number(rule, index), source, target, lookups, problems
        )
        if row is not None:
            compiled_rows.append(row)
        if written is not None:
            writers.append(written)
    _check_writers(writers, problems)
    validator = None
    if target is not None:
        try:
            validator = schemas.validator(target)
        except schemas.SchemaProblem as exc:
            problems.append(Problem(str(exc), "", None, "compile"))
    if problems:
        problems.sort(key=lambda p: (p.row is not None, p.row or 0))
        raise CompileError(problems)
    scope, broadcasts = _plan(compiled_rows)
    return CompiledMapping(
        scope=scope,
        broadcasts=broadcasts,
        writers={
            tuple(WILDCARD if isinstance(step, int) else step for step in row.target): row.row
            for row in compiled_rows
        },
        validator=validator,
        source_format=source_format,
        target_format=target_format,
        row_count=len(compiled_rows),
    )


def _compile_row(
    rule: Any,
    row_number: int,
    source: schemas.SideSchema | None,
    target: schemas.SideSchema | None,
    lookups: Mapping[str, Mapping[str, str]] | None,
    problems: list[Problem],
) -> tuple[_Row | None, _Target | None]:
    """The compiled row (None when it has problems) and the target it writes (None when
    the target path cannot be read)."""
    target_text = str(getattr(rule, "target_path", "") or "")
    before = len(problems)

    def problem(message: str) -> None:
        problems.append(Problem(message, target_text, row_number, "compile"))

    target_steps: Path = ()
    try:
        target_steps = parse_path(target_text)
        target_text = format_path(target_steps)
        if not isinstance(target_steps[0], str):
            problem("a target path must start with a field name")
        if any(isinstance(step, int) and step < 0 for step in target_steps):
            problem("a target path cannot count from the end ([-1])")
    except PathError as exc:
        problem(f"bad target path: {exc}")

    raw_sources = getattr(rule, "source_paths", None) or []
    if not isinstance(raw_sources, list) or not all(isinstance(s, str) for s in raw_sources):
        problem("source paths must be a list of paths")
        raw_sources = []
    sources: list[Path] = []
    for text in raw_sources:
        try:
            steps = parse_path(text)
        except PathError as exc:
            problem(f"bad source path {text!r}: {exc}")
            continue
        sources.append(steps)
        message = _field_problem(source, steps, "the source path")
        if message:
            problem(message)
    if target_steps:
        message = _field_problem(target, target_steps, "the target path")
        if message:
            problem(message)

    kind = getattr(rule, "kind", None)
    kind_problem = rule_kinds.unknown_kind_problem(kind)
    written = _Target(row_number, target_steps, target_text) if target_steps else None
    if kind_problem:
        problem(kind_problem)
        return None, written
    count_problem = rule_kinds.source_count_problem(kind, len(raw_sources))
    if count_problem:
        problem(count_problem)
    context = BuildContext(
        source_paths=list(raw_sources),
        lookups=lookups,
        source_types=[
            schemas.find_field(source, steps).types if source is not None else frozenset()
            for steps in sources
        ],
        target_types=(
            schemas.find_field(target, target_steps).types
            if target is not None and target_steps
            else frozenset()
        ),
    )
    built, param_problems = rule_kinds.build(kind, getattr(rule, "params", None), context)
    for message in param_problems:
        problem(message)

    driver = _driver(target_steps, sources, problem)
    if target_steps and driver is None and target_steps[-1] is WILDCARD:
        problem(
            f"a row writing the elements of {target_text} themselves needs a source path "
            "with [*] to walk"
        )
    if built is not None and built.expression is not None and source is not None:
        record_prefix = _record_prefix(target_steps, sources, driver)
        for root, steps in built.expression.fields():
            absolute = steps if root == "source" else (*record_prefix, *steps)
            if not absolute:
                continue
            message = _field_problem(source, absolute, "the expression field")
            if message:
                problem(message)
    if len(problems) > before or built is None:
        return None, written
    compiled = _Row(
        row=row_number,
        target=target_steps,
        target_text=target_text,
        sources=sources,
        built=built,
        required=bool(getattr(rule, "required", False)),
        driver=driver,
    )
    return compiled, written


def _driver(target: Path, sources: list[Path], problem: Callable[[str], None]) -> int | None:
    """The index of the source path whose [*] the target's [*] follow (None: no [*] pairs)."""
    depth = wildcard_count(target)
    if depth == 0:
        return None
    driver = None
    for index, steps in enumerate(sources):
        count = wildcard_count(steps)
        if count == 0:
            continue
        if count < depth:
            problem(
                f"the source path {format_path(steps)} has {count} [*] and the target {depth}; "
                "a source path needs at least as many [*] as the target, or none"
            )
            return None
        if driver is None:
            driver = index
            continue
        aligned = split_at_wildcards(sources[driver])[:depth]
        if split_at_wildcards(steps)[:depth] != aligned:
            problem(
                f"the source paths {format_path(sources[driver])} and {format_path(steps)} "
                "walk different arrays; a row walks one array (other sources need no [*])"
            )
            return None
    return driver


def _record_prefix(target: Path, sources: list[Path], driver: int | None) -> Path:
    """The absolute path of the record a row's relative reads start from."""
    if driver is None:
        return ()
    depth = wildcard_count(target)
    prefix: list = []
    seen = 0
    for step in sources[driver]:
        prefix.append(step)
        if step is WILDCARD:
            seen += 1
            if seen == depth:
                break
    return tuple(prefix)


def _plan(compiled_rows: list[_Row]) -> tuple[_Scope, list[_Broadcast]]:
    """Place each row in the scope of the arrays it walks, in row order."""
    top = _Scope()
    broadcasts: list[_Broadcast] = []
    for row in compiled_rows:
        depth = wildcard_count(row.target)
        target_parts = split_at_wildcards(row.target)
        if depth and row.driver is None:
            # The payload is the record of a broadcast row: its sources read from the top.
            sources = [(steps, True) for steps in row.sources]
            produce = _producer(row.built, sources)
            step = _Step(produce, target_parts[-1], row.required, row.row, row.target, None)
            getters = [make_getter(part) for part in target_parts[:-1]]
            broadcasts.append(_Broadcast(step, getters))
            continue
        scope = top
        block = None
        source_parts = split_at_wildcards(row.sources[row.driver]) if depth else []
        for level in range(depth):
            key = (format_path(source_parts[level]), format_path(target_parts[level]))
            block = scope.blocks.get(key)
            if block is None:
                block = _Block(
                    make_getter(source_parts[level]), make_array_opener(target_parts[level])
                )
                scope.blocks[key] = block
                scope.actions.append(block)
            scope = block.scope
        # At the top the record is the payload, so every source there is relative.
        sources = [
            (_after_wildcards(steps, depth), True)
            if depth and wildcard_count(steps) >= depth
            else (steps, not depth)
            for steps in row.sources
        ]
        produce = _producer(row.built, sources)
        source_steps = (
            row.sources[row.driver]
            if row.driver is not None
            else (row.sources[0] if len(row.sources) == 1 else None)
        )
        relative_target = target_parts[-1]
        simple = None
        if row.built.shape == "one" and sources[0][1]:
            source_path = sources[0][0]
            if source_path and all(isinstance(step, str) for step in source_path):
                built = row.built
                if built.identity:
                    simple = (source_path, None, None, None, None)
                else:
                    simple = (
                        source_path,
                        built.function,
                        built.fast_type,
                        built.fast,
                        built.inline,
                    )
        elif row.built.shape == "many" and all(
            relative and len(steps) == 1 and isinstance(steps[0], str)
            for steps, relative in sources
        ):
            simple = ([steps[0] for steps, _ in sources], row.built.function, None, None, None)
        step = _Step(
            produce, relative_target, row.required, row.row, row.target, source_steps, simple
        )
        if not relative_target:
            block.value_step = step
            continue
        scope.actions.append(step)
    top.freeze()
    return top, broadcasts


def _after_wildcards(steps: Path, depth: int) -> Path:
    seen = 0
    for index, step in enumerate(steps):
        if step is WILDCARD:
            seen += 1
            if seen == depth:
                return steps[index + 1 :]
    return ()


# --------------------------------------------------------------------------------------
# From the database
# --------------------------------------------------------------------------------------


def load_lookups(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """{table name: {key: value}} of the named lookup tables that exist (two queries)."""
    from apps.mappings.models import LookupEntry, LookupTable

    wanted = sorted({name for name in names if isinstance(name, str)})
    if not wanted:
        return {}
    tables: dict[str, dict[str, str]] = {
        name: {}
        for name in LookupTable.objects.filter(name__in=wanted).values_list("name", flat=True)
    }
    for name, key, value in LookupEntry.objects.filter(table__name__in=wanted).values_list(
        "table__name", "key", "value"
    ):
        tables[name][key] = value
    return tables


def compile_spec(spec: Any, rows: Iterable[Any] | None = None) -> CompiledMapping:
    """Compile a saved mapping spec with its rows, schemas and lookup tables; ``rows``
    stand in for the saved rows (a live preview of rows being edited).

    Raises CompileError listing every problem (a schema that cannot be found is one).
    """
    rows = list(spec.rules.all() if rows is None else rows)
    names = [
        rule.params.get("table")
        for rule in rows
        if rule.kind == "lookup" and isinstance(rule.params, dict)
    ]
    problems: list[Problem] = []
    sides: dict[str, schemas.SideSchema | None] = {}
    for side in ("source", "target"):
        try:
            sides[side] = schemas.side_schema(spec, side)
        except schemas.SchemaProblem as exc:
            sides[side] = None
            problems.append(
                Problem(f"the {side} schema cannot be used: {exc}", "", None, "compile")
            )
    try:
        compiled = compile_rules(
            rows,
            source=sides["source"],
            target=sides["target"],
            lookups=load_lookups(names),
            source_format=spec.source_format,
            target_format=spec.target_format,
        )
    except CompileError as exc:
        raise CompileError(problems + exc.problems)
    if problems:
        raise CompileError(problems)
    return compiled
