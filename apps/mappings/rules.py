"""The kinds of mapping rule: their parameters, checked once, and the functions they compile to.

Each kind takes a number of source paths and a ``params`` object (unknown parameters are
problems, so typos do not pass silently):

=============  ==========  ==================================================================
kind           sources     params
=============  ==========  ==================================================================
copy           1           (none) — copies the value, ``null`` included
constant       0           ``value`` (any JSON)
default        1           ``value``: used when the source is missing, ``null`` or ""
cast           1           ``to``: string, integer, number, decimal (text with optional
                           ``places``), boolean, date (ISO date; read with ``format``,
                           default ``iso``)
date_format    1           ``to`` (required), ``from`` (default ``iso``), ``from_tz``,
                           ``to_tz`` — formats and zones as in apps.mappings.dates
concat         1+          ``separator`` (default ""), ``skip_empty`` (default true)
split          1           ``separator`` (required), ``index`` (the part to keep; counts from
                           0, negative from the end; without it: the list of parts)
substring      1           ``start`` (from 0, default 0), ``length``
pad            1           ``width`` (required), ``fill`` (one character, default " "),
                           ``side`` left (default) or right
trim           1           ``side`` both (default), left or right; ``chars`` to remove
upper, lower   1           (none)
code_map       1           ``map`` {source code: target value} (required), ``default``
lookup         1           ``table`` (a lookup table's name, required), ``default``
arithmetic     1+          ``op`` + - * / (required), ``operand`` (a number added as the last
                           operand), ``places``, ``rounding`` (half_up default, half_even,
                           half_down, up, down, ceiling, floor), ``as`` number or string
conditional    1+          ``cases``: a list of {``equals`` | ``in`` | ``matches`` |
                           ``missing``: …, ``then``: value | ``then_from``: a source path}
                           tested against the first source; ``else`` / ``else_from``
expression     0+          ``expression`` (apps.mappings.expression); bare names read the
                           record: the element the row's ``[*]`` walk (else the payload)
=============  ==========  ==================================================================

Missing and ``null`` sources give no value (the target is left out), except for ``copy``,
which copies ``null``, and ``default``. Lists met where one value is expected (a source path
with more ``[*]`` than its target) are joined by concat, summed by arithmetic, and kept as
lists by copy. A miss in a code map or lookup without a ``default``, text that is not a
number or a date, an impossible cast and division by zero raise :class:`RuleFailure` at run
time; the engine reports it with the row and target path.
"""

from __future__ import annotations

import contextlib
import copy as copy_module
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    DecimalException,
)
from operator import itemgetter, methodcaller
from typing import Any

from apps.mappings import dates
from apps.mappings.expression import (
    MAX_NUMBER_CHARS,
    NUMBERS,
    ExpressionError,
    decimal_text,
    number_from_data,
    to_text,
)
from apps.mappings.expression import parse as parse_expression
from apps.mappings.paths import MISSING, PathError, format_path, parse_path

MAX_PAD_WIDTH = 1_000
MAX_PLACES = 20
MAX_PATTERN_CHARS = 200
MAX_MATCH_CHARS = 10_000
MAX_CASES = 200

CAST_TYPES = ("string", "integer", "number", "decimal", "boolean", "date")
# The JSON type a cast writes.
CAST_OUTPUT = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "decimal": "string",
    "boolean": "boolean",
    "date": "string",
}
# The source JSON types each cast can never read.
CAST_IMPOSSIBLE_FROM = {
    "string": {"object", "array"},
    "integer": {"object", "array"},
    "number": {"object", "array"},
    "decimal": {"object", "array"},
    "boolean": {"object", "array"},
    "date": {"object", "array", "integer", "number", "boolean"},
}
ROUNDINGS = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "half_down": ROUND_HALF_DOWN,
    "up": ROUND_UP,
    "down": ROUND_DOWN,
    "ceiling": ROUND_CEILING,
    "floor": ROUND_FLOOR,
}
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off"})
# A group holding a repetition that is itself repeated, as in (a+)+ or (\w*)*: refused, as
# Python's re can take exponential time on such patterns.
_NESTED_REPEAT = re.compile(
    r"\((?:[^()\\]|\\.)*(?:[*+]|\{\d*,?\d*\})(?:[^()\\]|\\.)*\)\s*(?:[*+]|\{\d*,?\d*\})"
)


class RuleFailure(Exception):
    """A value a rule cannot make for this record; the message says why."""


class _Table(dict):
    """A dict whose misses give MISSING: ``table.__getitem__`` answers a code map's hits
    without a Python frame, and its misses go to the rule's function."""

    __slots__ = ()

    def __missing__(self, key: Any) -> Any:
        return MISSING


class _DefaultTable(_Table):
    """A code map or lookup table with its default: misses give the default."""

    __slots__ = ("default",)

    def __missing__(self, key: Any) -> Any:
        return self.default


def _table(entries: Mapping[str, Any], reader: _Params) -> _Table:
    """The table a code map's or lookup's shortcut reads: hits and, when the rule has a
    default, misses answered by one builtin call."""
    if not reader.has("default"):
        return _Table(entries)
    table = _DefaultTable(entries)
    table.default = reader.params["default"]
    return table


@dataclass
class BuildContext:
    """What a rule is compiled against. ``lookups`` None: tables are not checked (yet).
    ``source_types`` holds the JSON types of each source path (empty: unknown)."""

    source_paths: list[str]
    lookups: Mapping[str, Mapping[str, str]] | None = None
    source_types: list[frozenset[str]] = field(default_factory=list)
    target_types: frozenset[str] = frozenset()


@dataclass
class Built:
    """A compiled rule: ``shape`` says what ``function`` takes.

    none: ``f()``; one: ``f(value)``; many: ``f(values)``; record: ``f(record, root)``.
    Each returns the target value or MISSING, or raises RuleFailure.
    """

    shape: str
    function: Callable[..., Any]
    expression: Any = None  # the parsed Expression of an expression rule
    identity: bool = False  # copy: the engine reads the value without calling function
    # A shortcut for the common value of a "one" rule, which the engine tries first: for a
    # value whose class is exactly ``fast_type``, ``fast(value)`` is what ``function(value)``
    # returns, or MISSING when it has no answer (then ``function`` is asked). It never
    # raises, and is a builtin where it can be (no Python frame per value).
    fast_type: type | None = None
    fast: Callable[[Any], Any] | None = None
    # A shortcut of a "one" rule that is a test and a builtin, which the engine's loops over
    # array elements do in place, without a call per element: (INTEGER_TEXT, None): text of
    # ASCII digits -> int(text); (NUMBER, None): an int or a finite float -> itself;
    # (DEFAULT, fallback): missing, null or "" -> fallback (never an object or array),
    # anything else -> itself. Values the shortcut does not cover go to ``function``.
    inline: tuple[str, Any] | None = None


# The forms of Built.inline.
INTEGER_TEXT = "integer_text"
NUMBER = "number"
DEFAULT = "default"


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def show(value: Any, limit: int = 60) -> str:
    """A value as a message quotes it."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, Decimal):
        text = decimal_text(value)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "an array"
    elif isinstance(value, dict):
        text = "an object"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number: an integer when it is whole, else a float."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def json_value(value: Any) -> Any:
    """An expression or arithmetic result as a JSON value (Decimal -> number)."""
    if value.__class__ is Decimal:
        return json_number(value)
    return value


def text_of(value: Any) -> str:
    try:
        return to_text(value)
    except ValueError:
        raise RuleFailure(f"expected text, got {show(value)}")


def number_of(value: Any) -> Decimal:
    if value.__class__ is bool:
        raise RuleFailure(f"{show(value)} is not a number")
    try:
        return number_from_data(value)
    except ValueError as exc:
        raise RuleFailure(str(exc))


def _same(value: Any, expected: Any) -> bool:
    if value.__class__ is bool or expected.__class__ is bool:
        return value is expected
    if value == expected:
        return True
    if isinstance(value, list | dict) or isinstance(expected, list | dict):
        return False
    try:
        return to_text(value) == to_text(expected)
    except ValueError:
        return False


# --------------------------------------------------------------------------------------
# Parameter checks
# --------------------------------------------------------------------------------------


class _Params:
    """Reads a rule's params, collecting problems instead of stopping at the first."""

    def __init__(self, params: Any, allowed: set[str], problems: list[str]):
        self.problems = problems
        if not isinstance(params, dict):
            problems.append("params must be a JSON object")
            params = {}
        self.params = params
        for name in sorted(set(params) - allowed):
            known = ", ".join(sorted(allowed)) or "none"
            problems.append(f"unknown parameter {name!r} (this kind takes: {known})")

    def has(self, name: str) -> bool:
        return name in self.params

    def any(self, name: str, *, required: bool = False) -> Any:
        if name not in self.params:
            if required:
                self.problems.append(f"the parameter {name!r} is required")
            return None
        return self.params[name]

    def text(
        self,
        name: str,
        default: str | None = None,
        *,
        required: bool = False,
        non_empty: bool = False,
    ) -> str | None:
        if name not in self.params:
            if required:
                self.problems.append(f"the parameter {name!r} is required")
            return default
        value = self.params[name]
        if not isinstance(value, str) or (non_empty and not value):
            self.problems.append(f"{name} must be {'non-empty ' if non_empty else ''}text")
            return default
        return value

    def integer(
        self, name: str, default: int | None = None, *, low: int, high: int, required: bool = False
    ) -> int | None:
        if name not in self.params:
            if required:
                self.problems.append(f"the parameter {name!r} is required")
            return default
        value = self.params[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problems.append(f"{name} must be a whole number from {low} to {high:,}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.params.get(name, default)
        if not isinstance(value, bool):
            self.problems.append(f"{name} must be true or false")
            return default
        return value

    def choice(
        self, name: str, options, default: str | None = None, *, required: bool = False
    ) -> str | None:
        if name not in self.params:
            if required:
                self.problems.append(
                    f"the parameter {name!r} is required (one of: {', '.join(options)})"
                )
            return default
        value = self.params[name]
        if value not in options:
            self.problems.append(f"{name} must be one of: {', '.join(options)}; not {show(value)}")
            return default
        return value


def _date_format(reader: _Params, name: str, default: str | None, *, required: bool = False) -> str:
    fmt = reader.text(name, default, required=required)
    if fmt is None:
        return dates.ISO
    try:
        return dates.check_format(fmt)
    except dates.DateFormatError as exc:
        reader.problems.append(f"{name}: {exc}")
        return dates.ISO


def _zone(reader: _Params, name: str):
    zone_name = reader.text(name)
    if zone_name is None:
        return None
    try:
        return dates.zone(zone_name)
    except dates.DateFormatError as exc:
        reader.problems.append(f"{name}: {exc}")
        return None


# --------------------------------------------------------------------------------------
# The kinds
# --------------------------------------------------------------------------------------


def _copy(reader: _Params, context: BuildContext) -> Built:
    return Built("one", lambda value: value, identity=True)


def _constant(reader: _Params, context: BuildContext) -> Built:
    value = reader.any("value", required=True)
    if isinstance(value, list | dict):
        return Built("none", lambda: copy_module.deepcopy(value))
    return Built("none", lambda: value)


def _default(reader: _Params, context: BuildContext) -> Built:
    fallback = reader.any("value", required=True)

    def default_value(value: Any) -> Any:
        if value is MISSING or value is None or value == "":
            return copy_module.deepcopy(fallback) if isinstance(fallback, list | dict) else fallback
        return value

    inline = None if isinstance(fallback, list | dict) else (DEFAULT, fallback)
    return Built("one", default_value, inline=inline)


def _cast(reader: _Params, context: BuildContext) -> Built:
    to = reader.choice("to", CAST_TYPES, required=True)
    fmt = _date_format(reader, "format", None) if to == "date" else None
    if to != "date" and reader.has("format"):
        reader.problems.append("format is only for casts to date")
    places = reader.integer("places", low=0, high=MAX_PLACES) if to == "decimal" else None
    if to != "decimal" and reader.has("places"):
        reader.problems.append("places is only for casts to decimal")
    if to is None:
        return Built("one", lambda value: MISSING)
    read_date = dates.reader(fmt) if to == "date" else None
    source_types = context.source_types[0] if context.source_types else frozenset()
    impossible = sorted(source_types & CAST_IMPOSSIBLE_FROM[to])
    if source_types and len(impossible) == len(source_types - {"null"}):
        reader.problems.append(
            f"impossible cast: the source is {' or '.join(sorted(source_types - {'null'}))} "
            f"in the source schema, which cannot become {to}"
        )
    produced = CAST_OUTPUT[to]
    target = context.target_types - {"null"}
    if target and produced not in target and not (produced == "integer" and "number" in target):
        reader.problems.append(
            f"impossible cast: a cast to {to} writes {produced}, but the target schema wants "
            + " or ".join(sorted(target))
        )

    def cast(value: Any) -> Any:
        if value is MISSING or value is None:
            return MISSING
        if value.__class__ is list or value.__class__ is dict:
            raise RuleFailure(f"cannot cast {show(value)} to {to}")
        if to == "string":
            return text_of(value)
        if to == "boolean":
            if value.__class__ is bool:
                return value
            word = text_of(value).strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
            raise RuleFailure(f"cannot cast {show(value)} to boolean")
        if to == "date":
            if value.__class__ is not str:
                raise RuleFailure(f"cannot cast {show(value)} to date")
            try:
                return read_date(value).date().isoformat()
            except ValueError as exc:
                raise RuleFailure(f"cannot cast to date: {exc}")
        if value.__class__ is bool:
            number = Decimal(int(value))
        else:
            try:
                number = number_from_data(value)
            except ValueError:
                raise RuleFailure(f"cannot cast {show(value)} to {to}")
        if to == "integer":
            if number != number.to_integral_value():
                raise RuleFailure(f"cannot cast {show(value)} to integer: it is not a whole number")
            return int(number)
        if to == "number":
            return json_number(number)
        if places is not None:
            try:
                number = number.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, NUMBERS)
            except DecimalException:
                raise RuleFailure(f"{show(value)} has too many digits for {places} places")
        return decimal_text(number)

    # Fast paths for the common cases, in front of the general cast above.
    if to == "integer":

        def cast_to_integer(value: Any) -> Any:
            if value.__class__ is str and value.isdigit() and value.isascii():
                return int(value)
            if value.__class__ is int:
                return value
            return cast(value)

        return Built("one", cast_to_integer, inline=(INTEGER_TEXT, None))
    if to == "number":
        create = NUMBERS.create_decimal
        longest = MAX_NUMBER_CHARS * 2  # as number_from_data reads text

        def cast_to_number(value: Any) -> Any:
            cls = value.__class__
            if cls is int or (cls is float and value - value == 0):  # a finite float
                return value
            if cls is str and len(value) <= longest and "_" not in value:
                # Text holding a number, read as number_from_data reads it.
                try:
                    number = create(value)
                except DecimalException:
                    return cast(value)
                if number.is_finite():
                    return int(number) if number == number.to_integral_value() else float(number)
            return cast(value)

        return Built("one", cast_to_number, inline=(NUMBER, None))
    if to == "boolean":

        def cast_to_boolean(value: Any) -> Any:
            if value.__class__ is str:
                word = value.strip().lower()
                if word in _TRUE_WORDS:
                    return True
                if word in _FALSE_WORDS:
                    return False
            elif value.__class__ is bool:
                return value
            return cast(value)

        # Text that is a word exactly (already stripped and lower case) is found at once.
        words = _Table(dict.fromkeys(_TRUE_WORDS, True))
        words.update(dict.fromkeys(_FALSE_WORDS, False))
        return Built("one", cast_to_boolean, fast_type=str, fast=words.__getitem__)
    if to == "string":
        return Built(
            "one",
            lambda value: value if value.__class__ is str else cast(value),
            fast_type=str,
            fast=str,  # str(text) is the text itself
        )
    return Built("one", cast)


def _date_reformat(reader: _Params, context: BuildContext) -> Built:
    from_fmt = _date_format(reader, "from", dates.ISO)
    to_fmt = _date_format(reader, "to", None, required=True)
    from_zone = _zone(reader, "from_tz")
    to_zone = _zone(reader, "to_tz")
    read = dates.reader(from_fmt)
    write = dates.writer(to_fmt)
    convert = dates.convert
    zones = from_zone is not None or to_zone is not None  # else convert() changes nothing

    def date_format(value: Any) -> Any:
        if value is MISSING or value is None:
            return MISSING
        try:
            if zones:
                return write(convert(read(value), from_zone, to_zone))
            return write(read(value))
        except ValueError as exc:
            raise RuleFailure(f"bad date: {exc}")
        except OverflowError:
            raise RuleFailure(f"bad date: {show(value)} moves out of the calendar's range")

    return Built("one", date_format)


def _concat(reader: _Params, context: BuildContext) -> Built:
    separator = reader.text("separator", "")
    skip_empty = reader.boolean("skip_empty", True)

    def concat(values: list) -> Any:
        """The text of every value (the items of a list, one level deep), in order,
        missing and null ones left out, and empty ones too with skip_empty."""
        parts = []
        for value in values:
            if value.__class__ is str:
                parts.append(value)
            elif value is MISSING or value is None:
                continue
            elif value.__class__ is list:
                for item in value:
                    if item is not MISSING and item is not None:
                        parts.append(text_of(item))
            else:
                parts.append(text_of(value))
        if skip_empty:
            parts = list(filter(None, parts))
        if not parts:
            return MISSING
        return separator.join(parts)

    return Built("many", concat)


def _split(reader: _Params, context: BuildContext) -> Built:
    separator = reader.text("separator", ",", required=True, non_empty=True)
    index = reader.integer("index", low=-10_000, high=10_000)

    def split(value: Any) -> Any:
        if value is MISSING or value is None:
            return MISSING
        parts = text_of(value).split(separator)
        if index is None:
            return parts
        try:
            return parts[index]
        except IndexError:
            return MISSING

    return Built("one", split)


def _substring(reader: _Params, context: BuildContext) -> Built:
    start = reader.integer("start", 0, low=0, high=1_000_000)
    length = reader.integer("length", low=0, high=1_000_000)
    end = None if length is None else start + length

    def substring(value: Any) -> Any:
        if value.__class__ is str:
            return value[start:end]
        if value is MISSING or value is None:
            return MISSING
        return text_of(value)[start:end]

    return Built("one", substring, fast_type=str, fast=itemgetter(slice(start, end)))


def _pad(reader: _Params, context: BuildContext) -> Built:
    width = reader.integer("width", 1, low=1, high=MAX_PAD_WIDTH, required=True)
    fill = reader.text("fill", " ")
    if fill is not None and len(fill) != 1:
        reader.problems.append("fill must be exactly one character")
        fill = " "
    side = reader.choice("side", ("left", "right"), "left")

    def pad(value: Any) -> Any:
        if value is MISSING or value is None:
            return MISSING
        text = value if value.__class__ is str else text_of(value)
        return text.rjust(width, fill) if side == "left" else text.ljust(width, fill)

    justify = methodcaller("rjust" if side == "left" else "ljust", width, fill)
    return Built("one", pad, fast_type=str, fast=justify)


def _trim(reader: _Params, context: BuildContext) -> Built:
    side = reader.choice("side", ("both", "left", "right"), "both")
    chars = reader.text("chars")
    name = {"both": "strip", "left": "lstrip", "right": "rstrip"}[side or "both"]
    strip = getattr(str, name)

    def trim(value: Any) -> Any:
        if value.__class__ is str:
            return strip(value, chars)
        if value is MISSING or value is None:
            return MISSING
        return strip(text_of(value), chars)

    fast = strip if chars is None else methodcaller(name, chars)
    return Built("one", trim, fast_type=str, fast=fast)


def _case(change: Callable[[str], str]):
    def build(reader: _Params, context: BuildContext) -> Built:
        def change_case(value: Any) -> Any:
            if value.__class__ is str:
                return change(value)
            if value is MISSING or value is None:
                return MISSING
            return change(text_of(value))

        return Built("one", change_case, fast_type=str, fast=change)

    return build


def _miss(reader: _Params, what: str) -> Callable[[Any], Any]:
    if reader.has("default"):
        fallback = reader.params["default"]
        return lambda value: fallback

    def fail(value: Any) -> Any:
        raise RuleFailure(f"{show(value)} is not in {what}, and the rule has no default")

    return fail


def _code_map(reader: _Params, context: BuildContext) -> Built:
    codes = reader.any("map", required=True)
    if codes is not None and not isinstance(codes, dict):
        reader.problems.append("map must be an object of source codes to target values")
        codes = {}
    codes = codes or {}
    on_miss = _miss(reader, "the code map")

    def code_map(value: Any) -> Any:
        if value.__class__ is str:
            key = value
        elif value is MISSING or value is None:
            return MISSING
        else:
            key = text_of(value)
        found = codes.get(key, MISSING)
        if found is MISSING:
            return on_miss(value)
        return found

    return Built("one", code_map, fast_type=str, fast=_table(codes, reader).__getitem__)


def _lookup(reader: _Params, context: BuildContext) -> Built:
    name = reader.text("table", required=True, non_empty=True)
    entries: Mapping[str, str] = {}
    if name is not None and context.lookups is not None:
        if name not in context.lookups:
            reader.problems.append(f"unknown lookup table {name!r}")
        else:
            entries = context.lookups[name]
    on_miss = _miss(reader, f"the lookup table {name!r}")

    def lookup(value: Any) -> Any:
        if value.__class__ is str:
            key = value
        elif value is MISSING or value is None:
            return MISSING
        else:
            key = text_of(value)
        found = entries.get(key, MISSING)
        if found is MISSING:
            return on_miss(value)
        return found

    return Built("one", lookup, fast_type=str, fast=_table(entries, reader).__getitem__)


def _arithmetic(reader: _Params, context: BuildContext) -> Built:
    op = reader.choice("op", ("+", "-", "*", "/"), required=True)
    operand = None
    if reader.has("operand"):
        try:
            raw = reader.params["operand"]
            if isinstance(raw, bool):
                raise ValueError
            operand = number_from_data(raw)
        except ValueError:
            reader.problems.append("operand must be a number")
    places = reader.integer("places", low=0, high=MAX_PLACES)
    rounding = ROUNDINGS[reader.choice("rounding", tuple(ROUNDINGS), "half_up") or "half_up"]
    as_text = reader.choice("as", ("number", "string"), "number") == "string"
    exponent = None if places is None else Decimal(1).scaleb(-places)
    operation = {
        "+": NUMBERS.add,
        "-": NUMBERS.subtract,
        "*": NUMBERS.multiply,
        "/": NUMBERS.divide,
    }.get(op or "+")
    if op is not None and not context.source_paths and operand is None:
        reader.problems.append("arithmetic needs a source or an operand")

    divide = op == "/"
    create = NUMBERS.create_decimal
    longest = MAX_NUMBER_CHARS * 2  # as number_from_data reads text

    def arithmetic(values: list) -> Any:
        """The common case: every value a number or text holding one, finite, no division
        by zero, no error: the numbers as number_from_data reads them, combined in order.
        Anything else goes to checked_arithmetic, which computes it again and says what
        is wrong (the result is the same either way)."""
        result = None
        try:
            for value in values:
                cls = value.__class__
                if cls is str:
                    if len(value) > longest or "_" in value:
                        return checked_arithmetic(values)
                    number = create(value)
                    if not number.is_finite():
                        return checked_arithmetic(values)
                elif cls is float:
                    if value - value != 0:  # not finite
                        return checked_arithmetic(values)
                    # The shortest text of a float has at most 17 digits and an exponent
                    # well inside NUMBERS, so Decimal() reads it as create() would (nothing
                    # to round), only faster.
                    number = Decimal(repr(value))
                elif cls is int:
                    number = create(value)
                else:
                    return checked_arithmetic(values)
                if result is None:
                    result = number
                elif divide and not number:
                    return checked_arithmetic(values)
                else:
                    result = operation(result, number)
            if operand is not None:
                if result is None:
                    result = operand
                elif divide and not operand:
                    return checked_arithmetic(values)
                else:
                    result = operation(result, operand)
            if result is None:
                return MISSING
            if exponent is not None:
                result = result.quantize(exponent, rounding, NUMBERS)
        except DecimalException:
            return checked_arithmetic(values)
        if as_text:
            return decimal_text(result)
        if result == result.to_integral_value():
            return int(result)
        return float(result)

    def checked_arithmetic(values: list) -> Any:
        result = None
        try:
            for value in values:
                cls = value.__class__
                if cls is str or cls is float or cls is int:
                    # The common case, one number: combined here without the loop below.
                    try:
                        number = number_from_data(value)
                    except ValueError as exc:
                        raise RuleFailure(str(exc))
                    if result is None:
                        result = number
                    elif divide and number.is_zero():
                        raise RuleFailure(f"division by zero ({decimal_text(result)} / 0)")
                    else:
                        result = operation(result, number)
                    continue
                if value is MISSING or value is None:
                    return MISSING
                elif cls is list:
                    numbers = [number_of(item) for item in value if item is not None]
                else:
                    numbers = (number_of(value),)
                for number in numbers:
                    if result is None:
                        result = number
                    elif divide and number.is_zero():
                        raise RuleFailure(f"division by zero ({decimal_text(result)} / 0)")
                    else:
                        result = operation(result, number)
            if operand is not None:
                if result is None:
                    result = operand
                elif divide and operand.is_zero():
                    raise RuleFailure(f"division by zero ({decimal_text(result)} / 0)")
                else:
                    result = operation(result, operand)
            if result is None:
                return MISSING
            if exponent is not None:
                result = result.quantize(exponent, rounding, NUMBERS)
        except DecimalException:
            raise RuleFailure("the result is out of the range of numbers")
        if as_text:
            return decimal_text(result)
        return json_number(result)

    return Built("many", arithmetic)


def _safe_pattern(pattern: Any, problems: list[str]) -> re.Pattern | None:
    if not isinstance(pattern, str) or not pattern:
        problems.append("matches must be a non-empty regular expression")
        return None
    if len(pattern) > MAX_PATTERN_CHARS:
        problems.append(f"the regular expression is longer than {MAX_PATTERN_CHARS} characters")
        return None
    if _NESTED_REPEAT.search(pattern):
        problems.append(
            f"the regular expression {pattern!r} repeats a repetition (like (a+)+), "
            "which can take exponential time; simplify it"
        )
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        problems.append(f"the regular expression {pattern!r} is invalid: {exc}")
        return None


def _conditional(reader: _Params, context: BuildContext) -> Built:
    cases = reader.any("cases", required=True)
    problems = reader.problems
    canonical = {}
    for index, text in enumerate(context.source_paths):
        with contextlib.suppress(PathError):
            canonical[format_path(parse_path(text))] = index

    def result_of(spec: dict, value_key: str, from_key: str, where: str):
        """(constant, source index): what a case or the else gives."""
        if value_key in spec and from_key in spec:
            problems.append(f"{where}: give {value_key} or {from_key}, not both")
        if from_key in spec:
            try:
                index = canonical.get(format_path(parse_path(spec[from_key])))
            except PathError as exc:
                problems.append(f"{where}: {from_key}: {exc}")
                return None, None
            if index is None:
                problems.append(f"{where}: {from_key} must be one of the rule's source paths")
            return None, index
        return spec.get(value_key), None

    tests: list[tuple[str, Any, Any, int | None]] = []
    if cases is not None and (not isinstance(cases, list) or not cases):
        problems.append("cases must be a non-empty list")
        cases = []
    for number, case in enumerate((cases or [])[:MAX_CASES], start=1):
        where = f"case {number}"
        if not isinstance(case, dict):
            problems.append(f"{where} must be an object")
            continue
        conditions = [key for key in ("equals", "in", "matches", "missing") if key in case]
        unknown = sorted(set(case) - {"equals", "in", "matches", "missing", "then", "then_from"})
        if unknown:
            problems.append(f"{where}: unknown key {unknown[0]!r}")
        if len(conditions) != 1:
            problems.append(f"{where} needs exactly one of equals, in, matches or missing")
            continue
        if "then" not in case and "then_from" not in case:
            problems.append(f"{where} needs then or then_from")
        constant, index = result_of(case, "then", "then_from", where)
        condition = conditions[0]
        expected = case[condition]
        if condition == "in" and not isinstance(expected, list):
            problems.append(f"{where}: in must be a list")
            continue
        if condition == "missing" and not isinstance(expected, bool):
            problems.append(f"{where}: missing must be true or false")
            continue
        if condition == "matches":
            expected = _safe_pattern(expected, problems)
            if expected is None:
                continue
        tests.append((condition, expected, constant, index))
    has_else = reader.has("else") or reader.has("else_from")
    else_constant, else_index = result_of(reader.params, "else", "else_from", "else")

    def pick(constant: Any, index: int | None, values: list) -> Any:
        if index is not None:
            value = values[index]
            return value if value is not None else MISSING
        if isinstance(constant, list | dict):
            return copy_module.deepcopy(constant)
        return constant

    def conditional(values: list) -> Any:
        tested = values[0]
        for condition, expected, constant, index in tests:
            if _holds(condition, expected, tested):
                return pick(constant, index, values)
        if has_else:
            return pick(else_constant, else_index, values)
        return MISSING

    return Built("many", conditional)


def _holds(condition: str, expected: Any, value: Any) -> bool:
    """Whether a conditional case's condition holds for the tested value."""
    if condition == "missing":
        return (value is MISSING or value is None or value == "") is expected
    if value is MISSING or value is None:
        return False
    if condition == "equals":
        return _same(value, expected)
    if condition == "in":
        return any(_same(value, option) for option in expected)
    return _matches(expected, value)


def _matches(pattern: re.Pattern, value: Any) -> bool:
    if value is MISSING or value is None or isinstance(value, list | dict):
        return False
    text = to_text(value)
    if len(text) > MAX_MATCH_CHARS:
        raise RuleFailure(f"the value is longer than {MAX_MATCH_CHARS:,} characters to match")
    return pattern.search(text) is not None


def _expression(reader: _Params, context: BuildContext) -> Built:
    text = reader.text("expression", required=True, non_empty=True)
    try:
        parsed = parse_expression(text) if text else None
    except ExpressionError as exc:
        reader.problems.append(f"expression: {exc}")
        parsed = None
    if parsed is None:
        return Built("record", lambda record, root: MISSING)
    evaluate = parsed.evaluate

    def expression(record: Any, root: Any) -> Any:
        try:
            value = evaluate(record, root)
        except ExpressionError as exc:
            raise RuleFailure(f"expression: {exc}")
        if value is None:
            return MISSING
        return json_value(value)

    return Built("record", expression, parsed)


@dataclass(frozen=True)
class Kind:
    min_sources: int
    max_sources: int | None
    params: frozenset[str]
    build: Callable[[_Params, BuildContext], Built]


KINDS: dict[str, Kind] = {
    "copy": Kind(1, 1, frozenset(), _copy),
    "constant": Kind(0, 0, frozenset({"value"}), _constant),
    "default": Kind(1, 1, frozenset({"value"}), _default),
    "cast": Kind(1, 1, frozenset({"to", "format", "places"}), _cast),
    "date_format": Kind(1, 1, frozenset({"from", "to", "from_tz", "to_tz"}), _date_reformat),
    "concat": Kind(1, None, frozenset({"separator", "skip_empty"}), _concat),
    "split": Kind(1, 1, frozenset({"separator", "index"}), _split),
    "substring": Kind(1, 1, frozenset({"start", "length"}), _substring),
    "pad": Kind(1, 1, frozenset({"width", "fill", "side"}), _pad),
    "trim": Kind(1, 1, frozenset({"side", "chars"}), _trim),
    "upper": Kind(1, 1, frozenset(), _case(str.upper)),
    "lower": Kind(1, 1, frozenset(), _case(str.lower)),
    "code_map": Kind(1, 1, frozenset({"map", "default"}), _code_map),
    "lookup": Kind(1, 1, frozenset({"table", "default"}), _lookup),
    "arithmetic": Kind(
        0, None, frozenset({"op", "operand", "places", "rounding", "as"}), _arithmetic
    ),
    "conditional": Kind(1, None, frozenset({"cases", "else", "else_from"}), _conditional),
    "expression": Kind(0, None, frozenset({"expression"}), _expression),
}


def source_count_problem(kind: str, count: int) -> str | None:
    """Why a kind cannot take this many source paths, or None."""
    spec = KINDS.get(kind)
    if spec is None:
        return None
    if spec.min_sources <= count and (spec.max_sources is None or count <= spec.max_sources):
        return None
    plural = "s" if spec.min_sources > 1 else ""
    if spec.max_sources == 0:
        wanted = "no source path"
    elif spec.max_sources is None:
        wanted = f"at least {spec.min_sources} source path{plural}"
    elif spec.min_sources == spec.max_sources:
        wanted = f"exactly {spec.min_sources} source path{plural}"
    else:
        wanted = f"{spec.min_sources} to {spec.max_sources} source paths"
    return f"{kind} takes {wanted}, not {count}"


def unknown_kind_problem(kind: Any) -> str | None:
    if kind in KINDS:
        return None
    return f"unknown rule kind {kind!r}; the kinds are {', '.join(KINDS)}"


def build(kind: str, params: Any, context: BuildContext) -> tuple[Built | None, list[str]]:
    """The compiled rule and the problems of its params (kind and source count are checked
    by :func:`unknown_kind_problem` and :func:`source_count_problem`)."""
    spec = KINDS.get(kind)
    if spec is None:
        return None, []
    problems: list[str] = []
    reader = _Params(params, set(spec.params), problems)
    built = spec.build(reader, context)
    return built, problems


def row_problems(rule: Any) -> dict[str, list[str]]:
    """Field -> messages for one row on its own (paths, kind, params; no schema or tables)."""
    errors: dict[str, list[str]] = {}
    try:
        parse_path(rule.target_path)
    except PathError as exc:
        errors.setdefault("target_path", []).append(str(exc))
    sources = rule.source_paths
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        errors.setdefault("source_paths", []).append("Source paths must be a list of paths.")
        sources = []
    for text in sources:
        try:
            parse_path(text)
        except PathError as exc:
            errors.setdefault("source_paths", []).append(f"{text}: {exc}")
    problem = unknown_kind_problem(rule.kind)
    if problem:
        errors.setdefault("kind", []).append(problem)
        return errors
    problem = source_count_problem(rule.kind, len(sources))
    if problem:
        errors.setdefault("source_paths", []).append(problem)
    _, problems = build(rule.kind, rule.params, BuildContext(source_paths=list(sources)))
    if problems:
        errors.setdefault("params", []).extend(problems)
    return errors
