"""The expression language of mapping rules: small, safe and deterministic.

Parsed by a hand-written tokenizer and recursive-descent parser into this module's own node
classes, and interpreted by walking them. Nothing here uses Python's ``eval``, ``exec``,
``compile`` or ``ast``; a name can only ever reach data, never a Python object.

The language
------------
* Literals: numbers (``12``, ``0.5``, ``1e3``; exact decimals), text (``"a"`` or ``'a'``, with
  ``\\"``, ``\\'``, ``\\\\``, ``\\n``, ``\\t``), ``true``, ``false``, ``null``.
* Fields: a bare name reads the current record (the array element the rule works on, or the
  whole payload): ``sku``, ``customer.id``, ``lines[0].qty``, ``lines[-1]``, ``lines[*].amount``
  (a list), ``record["odd key"]``. ``source`` is the whole payload (``source.header.currency``)
  and ``record`` the current record. A missing field is ``null``. Names may hold letters,
  digits and ``_``, and start with ``@`` or ``#`` (XML attributes and text); names starting
  with ``__`` are refused.
* Operators, loosest first: ``if c then a else b``; ``or``; ``and``; ``not``; comparisons
  ``==`` (or ``=``), ``!=``, ``<``, ``<=``, ``>``, ``>=`` (not chained); ``&`` (joins text;
  ``null`` is empty); ``+`` ``-``; ``*`` ``/`` ``%``; unary ``-``. ``+`` adds numbers or joins
  two texts. Conditions use truthiness: ``null``, ``false``, ``""``, ``0`` and empty lists are
  false. Values of different types are never equal.
* Functions: see :data:`FUNCTIONS`. Positions in ``substr`` count from 0; ``round`` rounds
  half up (``round(2.5) = 3``).

Limits: :data:`MAX_EXPRESSION_CHARS` characters, :data:`MAX_DEPTH` nesting levels,
:data:`MAX_STEPS` evaluation steps per evaluation, :data:`MAX_STRING_CHARS` characters of
text, and numbers of at most 34 significant digits with an exponent of at most ±999
(there is no power operator). Every error is an :class:`ExpressionError` with a position.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from functools import lru_cache
from typing import Any, NamedTuple

from apps.mappings import dates
from apps.mappings.paths import MISSING, WILDCARD, make_getter

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPRESSION_CHARS",
    "MAX_STEPS",
    "MAX_STRING_CHARS",
    "NUMBERS",
    "Expression",
    "ExpressionError",
    "number_from_data",
    "parse",
    "to_text",
]

MAX_EXPRESSION_CHARS = 2_000
MAX_DEPTH = 50
MAX_STEPS = 10_000
MAX_STRING_CHARS = 100_000
MAX_NUMBER_CHARS = 40
MAX_ROUND_PLACES = 20
_TOO_LONG = f"the text would be longer than {MAX_STRING_CHARS:,} characters"

# Every number operation runs in this context: bounded precision and exponent, and
# overflow, invalid operations and division by zero raise instead of giving Infinity/NaN.
NUMBERS = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    Emin=-999,
    Emax=999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated. ``position`` counts from 0."""

    def __init__(self, message: str, position: int | None = None):
        self.message = message
        self.position = position
        where = f" (at character {position + 1})" if position is not None else ""
        super().__init__(message + where)


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def number_from_data(value: Any) -> Decimal:
    """A JSON number, or text holding one, as a Decimal in :data:`NUMBERS`.

    Raises ValueError for anything else (NaN and infinities included) and for numbers out
    of range.
    """
    cls = value.__class__
    try:
        if cls is str:
            # Decimal also reads "1_000", "NaN" and "Infinity"; text numbers are plain.
            if len(value) <= MAX_NUMBER_CHARS * 2 and "_" not in value:
                number = NUMBERS.create_decimal(value)
                if number.is_finite():
                    return number
        elif cls is float:
            if value - value == 0:  # finite
                return NUMBERS.create_decimal(repr(value))
        elif cls is int:
            return NUMBERS.create_decimal(value)
        elif cls is Decimal and value.is_finite():
            return NUMBERS.plus(value)
    except Overflow:
        raise ValueError(f"{_show(value)} is out of the range of numbers")
    except InvalidOperation:
        pass
    raise ValueError(f"{_show(value)} is not a number")


def decimal_text(value: Decimal) -> str:
    return format(value, "f")


def to_text(value: Any) -> str:
    """Text of a scalar value as a rule writes it; ValueError for objects and arrays."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return ""
    if cls is bool:
        return "true" if value else "false"
    if cls is Decimal:
        return decimal_text(value)
    if cls is int:
        return str(value)
    if cls is float:
        return decimal_text(Decimal(repr(value)))
    if cls is list:
        raise ValueError("a list is not text")
    if cls is dict:
        raise ValueError("an object is not text")
    raise ValueError(f"a {cls.__name__} is not text")


def _from_data(value: Any) -> Any:
    cls = value.__class__
    if cls is int or cls is float:
        try:
            return number_from_data(value)
        except ValueError:
            raise ExpressionError(
                f"the field holds {value!r}, which is not a usable number"
            ) from None
    if value is MISSING:
        return None
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    cls = value.__class__
    if cls is bool:
        return "a boolean"
    if cls is Decimal or cls is int or cls is float:
        return "a number"
    if cls is str:
        return "text"
    if cls is list:
        return "a list"
    if cls is dict:
        return "an object"
    return "a value"


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value) if not isinstance(value, Decimal) else decimal_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if value.__class__ is Decimal:
        return not value.is_zero()
    if value.__class__ in (str, list, dict):
        return len(value) > 0
    return bool(value)


def _checked_text(value: str, position: int) -> str:
    if len(value) > MAX_STRING_CHARS:
        raise ExpressionError(_TOO_LONG, position)
    return value


def _text_of(value: Any, position: int) -> str:
    try:
        return to_text(value)
    except ValueError as exc:
        raise ExpressionError(str(exc), position)


def _number_of(value: Any, position: int, what: str) -> Decimal:
    if value.__class__ is Decimal:
        return value
    raise ExpressionError(f"{what} needs a number, not {_type_name(value)}", position)


def _whole(value: Any, position: int, what: str, low: int, high: int) -> int:
    number = _number_of(value, position, what)
    if number != number.to_integral_value() or not (low <= number <= high):
        raise ExpressionError(f"{what} needs a whole number from {low} to {high:,}", position)
    return int(number)


# --------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------

NUMBER, STRING, NAME, OP, END = "number", "text", "name", "operator", "end"


class Token(NamedTuple):
    kind: str
    value: Any
    position: int
    text: str


_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_TWO_CHAR_OPS = ("==", "!=", "<=", ">=")
_ONE_CHAR_OPS = "<>=+-*/%&()[],."
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
KEYWORDS = frozenset({"and", "or", "not", "if", "then", "else", "true", "false", "null"})
ROOTS = frozenset({"source", "record"})


def _is_name_start(char: str) -> bool:
    return char == "_" or char == "@" or char == "#" or char.isalpha()


def _is_name_char(char: str) -> bool:
    return char == "_" or char.isalnum()


def tokenize(text: str) -> list[Token]:
    """The tokens of an expression, ending with an END token."""
    tokens: list[Token] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char in " \t\r\n":
            index += 1
        elif char in "0123456789" or (
            char == "." and index + 1 < length and text[index + 1] in "0123456789"
        ):
            match = _NUMBER.match(text, index)
            literal = match.group(0)
            if len(literal) > MAX_NUMBER_CHARS:
                raise ExpressionError(
                    f"a number has more than {MAX_NUMBER_CHARS} characters", index
                )
            try:
                value = NUMBERS.create_decimal(literal)
            except DecimalException:
                raise ExpressionError(f"the number {literal} is out of range", index)
            tokens.append(Token(NUMBER, value, index, literal))
            index = match.end()
        elif char in "\"'":
            start = index
            index += 1
            parts: list[str] = []
            while True:
                if index >= length:
                    raise ExpressionError("the text is not closed with " + char, start)
                current = text[index]
                if current == char:
                    index += 1
                    break
                if current == "\\":
                    if index + 1 >= length:
                        raise ExpressionError("the text is not closed with " + char, start)
                    escaped = _ESCAPES.get(text[index + 1])
                    if escaped is None:
                        raise ExpressionError(f"unknown escape \\{text[index + 1]} in text", index)
                    parts.append(escaped)
                    index += 2
                else:
                    parts.append(current)
                    index += 1
            tokens.append(Token(STRING, "".join(parts), start, text[start:index]))
        elif _is_name_start(char):
            start = index
            index += 1
            while index < length and _is_name_char(text[index]):
                index += 1
            name = text[start:index]
            if name.startswith("__"):
                raise ExpressionError(f"names starting with __ are not allowed ({name})", start)
            if name in ("@", "#"):
                raise ExpressionError(f"{name} must be followed by a name", start)
            tokens.append(Token(NAME, name, start, name))
        elif text.startswith(_TWO_CHAR_OPS, index):
            operator = text[index : index + 2]
            tokens.append(Token(OP, operator, index, operator))
            index += 2
        elif char in _ONE_CHAR_OPS:
            tokens.append(Token(OP, char, index, char))
            index += 1
        else:
            raise ExpressionError(f"unexpected character {char!r}", index)
    tokens.append(Token(END, None, length, "the end"))
    return tokens


# --------------------------------------------------------------------------------------
# Nodes and their evaluation
# --------------------------------------------------------------------------------------


class _Env:
    __slots__ = ("record", "source", "steps")

    def __init__(self, record: Any, source: Any):
        self.record = record
        self.source = source
        self.steps = 0


def _tick(env: _Env, position: int, count: int = 1) -> None:
    env.steps += count
    if env.steps > MAX_STEPS:
        raise ExpressionError(f"the expression took more than {MAX_STEPS:,} steps", position)


class Node:
    __slots__ = ("position", "depth")

    def children(self) -> tuple[Node, ...]:
        return ()

    def _set_depth(self) -> None:
        self.depth = 1 + max((child.depth for child in self.children()), default=0)
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression nests deeper than {MAX_DEPTH} levels", self.position
            )

    def evaluate(self, env: _Env) -> Any:  # pragma: no cover - every node overrides it
        raise NotImplementedError


class Literal(Node):
    __slots__ = ("value",)

    def __init__(self, value: Any, position: int):
        self.value = value
        self.position = position
        self.depth = 1

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        return self.value


class Field(Node):
    """A reference into the data: ``root`` is "record" or "source"."""

    __slots__ = ("root", "steps", "_get")

    def __init__(self, root: str, steps: tuple, position: int):
        self.root = root
        self.steps = steps
        self.position = position
        self.depth = 1
        self._get = make_getter(steps)

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        value = self._get(env.record if self.root == "record" else env.source)
        return _from_data(value)


class Negate(Node):
    __slots__ = ("operand",)

    def __init__(self, operand: Node, position: int):
        self.operand = operand
        self.position = position
        self._set_depth()

    def children(self):
        return (self.operand,)

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        value = self.operand.evaluate(env)
        if value is None:
            return None
        return NUMBERS.minus(_number_of(value, self.position, "-"))


class Not(Node):
    __slots__ = ("operand",)

    def __init__(self, operand: Node, position: int):
        self.operand = operand
        self.position = position
        self._set_depth()

    def children(self):
        return (self.operand,)

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        return not _truthy(self.operand.evaluate(env))


class Logical(Node):
    """``and`` / ``or``, short-circuit, giving a boolean."""

    __slots__ = ("operator", "left", "right")

    def __init__(self, operator: str, left: Node, right: Node, position: int):
        self.operator = operator
        self.left = left
        self.right = right
        self.position = position
        self._set_depth()

    def children(self):
        return (self.left, self.right)

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        left = _truthy(self.left.evaluate(env))
        if self.operator == "and":
            return left and _truthy(self.right.evaluate(env))
        return left or _truthy(self.right.evaluate(env))


class Conditional(Node):
    __slots__ = ("condition", "then", "otherwise")

    def __init__(self, condition: Node, then: Node, otherwise: Node, position: int):
        self.condition = condition
        self.then = then
        self.otherwise = otherwise
        self.position = position
        self._set_depth()

    def children(self):
        return (self.condition, self.then, self.otherwise)

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        if _truthy(self.condition.evaluate(env)):
            return self.then.evaluate(env)
        return self.otherwise.evaluate(env)


def _add(left: Any, right: Any, position: int) -> Any:
    if left.__class__ is Decimal and right.__class__ is Decimal:
        return NUMBERS.add(left, right)
    if left.__class__ is str and right.__class__ is str:
        if len(left) + len(right) > MAX_STRING_CHARS:
            raise ExpressionError(_TOO_LONG, position)
        return left + right
    raise ExpressionError(
        f"cannot add {_type_name(left)} and {_type_name(right)}; use & to join text", position
    )


def _numeric(name: str, operation: Callable[[Decimal, Decimal], Decimal]):
    def apply(left: Any, right: Any, position: int) -> Decimal:
        a = _number_of(left, position, name)
        b = _number_of(right, position, name)
        if name in ("/", "%") and b.is_zero():
            raise ExpressionError("division by zero", position)
        return operation(a, b)

    return apply


def _join(left: Any, right: Any, position: int) -> str:
    a = _text_of(left, position)
    b = _text_of(right, position)
    if len(a) + len(b) > MAX_STRING_CHARS:
        raise ExpressionError(_TOO_LONG, position)
    return a + b


def _equal(left: Any, right: Any) -> bool:
    if left.__class__ is not right.__class__:
        return False
    return left == right


def _ordered(name: str, compare: Callable[[Any, Any], bool]):
    def apply(left: Any, right: Any, position: int) -> bool:
        if (left.__class__ is Decimal and right.__class__ is Decimal) or (
            left.__class__ is str and right.__class__ is str
        ):
            return compare(left, right)
        raise ExpressionError(
            f"cannot compare {_type_name(left)} with {_type_name(right)} using {name}", position
        )

    return apply


_BINARY: dict[str, Callable[[Any, Any, int], Any]] = {
    "+": _add,
    "-": _numeric("-", NUMBERS.subtract),
    "*": _numeric("*", NUMBERS.multiply),
    "/": _numeric("/", NUMBERS.divide),
    "%": _numeric("%", NUMBERS.remainder),
    "&": _join,
    "==": lambda a, b, p: _equal(a, b),
    "!=": lambda a, b, p: not _equal(a, b),
    "<": _ordered("<", lambda a, b: a < b),
    "<=": _ordered("<=", lambda a, b: a <= b),
    ">": _ordered(">", lambda a, b: a > b),
    ">=": _ordered(">=", lambda a, b: a >= b),
}
_NULL_PROPAGATING = frozenset({"+", "-", "*", "/", "%"})
_ORDERING = frozenset({"<", "<=", ">", ">="})


class Binary(Node):
    __slots__ = ("operator", "left", "right", "_apply")

    def __init__(self, operator: str, left: Node, right: Node, position: int):
        self.operator = operator
        self.left = left
        self.right = right
        self.position = position
        self._apply = _BINARY[operator]
        self._set_depth()

    def children(self):
        return (self.left, self.right)

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        left = self.left.evaluate(env)
        right = self.right.evaluate(env)
        if (left is None or right is None) and self.operator in _NULL_PROPAGATING:
            return None
        if (left is None or right is None) and self.operator in _ORDERING:
            raise ExpressionError(f"cannot compare null using {self.operator}", self.position)
        try:
            return self._apply(left, right, self.position)
        except DecimalException:
            raise ExpressionError(
                f"the result of {self.operator} is out of the range of numbers", self.position
            )


class Call(Node):
    __slots__ = ("name", "arguments", "_function")

    def __init__(self, name: str, arguments: list[Node], position: int):
        self.name = name
        self.arguments = tuple(arguments)
        self.position = position
        self._function = FUNCTIONS[name].function
        self._set_depth()

    def children(self):
        return self.arguments

    def evaluate(self, env: _Env) -> Any:
        _tick(env, self.position)
        values = [argument.evaluate(env) for argument in self.arguments]
        try:
            return self._function(values, self.position, env)
        except DecimalException:
            raise ExpressionError(f"{self.name}: the number is out of range", self.position)


# --------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------


class Function(NamedTuple):
    minimum: int
    maximum: int
    signature: str
    function: Callable[[list, int, _Env], Any]


def _text_function(name: str, change: Callable[[str], str]):
    def apply(values: list, position: int, env: _Env) -> Any:
        if values[0] is None:
            return None
        return _checked_text(change(_text_of(values[0], position)), position)

    return apply


def _len(values: list, position: int, env: _Env) -> Decimal:
    value = values[0]
    if value is None:
        return Decimal(0)
    if value.__class__ in (str, list, dict):
        return Decimal(len(value))
    raise ExpressionError(f"len needs text or a list, not {_type_name(value)}", position)


def _substr(values: list, position: int, env: _Env) -> Any:
    if values[0] is None:
        return None
    text = _text_of(values[0], position)
    start = _whole(values[1], position, "substr's start", 0, MAX_STRING_CHARS)
    if len(values) > 2 and values[2] is not None:
        count = _whole(values[2], position, "substr's length", 0, MAX_STRING_CHARS)
        return text[start : start + count]
    return text[start:]


def _replace(values: list, position: int, env: _Env) -> Any:
    if values[0] is None:
        return None
    text = _text_of(values[0], position)
    old = _text_of(values[1], position)
    new = _text_of(values[2], position)
    if not old:
        raise ExpressionError("replace needs the text to look for", position)
    growth = len(new) - len(old)
    if growth > 0 and len(text) + text.count(old) * growth > MAX_STRING_CHARS:
        raise ExpressionError(_TOO_LONG, position)
    return text.replace(old, new)


def _round(values: list, position: int, env: _Env) -> Any:
    if values[0] is None:
        return None
    number = _number_of(values[0], position, "round")
    places = 0
    if len(values) > 1:
        places = _whole(values[1], position, "round's places", 0, MAX_ROUND_PLACES)
    return number.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, NUMBERS)


def _abs(values: list, position: int, env: _Env) -> Any:
    if values[0] is None:
        return None
    return NUMBERS.abs(_number_of(values[0], position, "abs"))


def _coalesce(values: list, position: int, env: _Env) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _concat(values: list, position: int, env: _Env) -> str:
    parts = [_text_of(value, position) for value in values if value is not None]
    if sum(len(part) for part in parts) > MAX_STRING_CHARS:
        raise ExpressionError(_TOO_LONG, position)
    return "".join(parts)


def _to_number(values: list, position: int, env: _Env) -> Any:
    value = values[0]
    if value is None or value.__class__ is Decimal:
        return value
    if value.__class__ is bool:
        return Decimal(int(value))
    if value.__class__ is str:
        try:
            return number_from_data(value)
        except ValueError as exc:
            raise ExpressionError(str(exc), position)
    raise ExpressionError(f"to_number cannot turn {_type_name(value)} into a number", position)


def _to_string(values: list, position: int, env: _Env) -> Any:
    if values[0] is None:
        return None
    return _text_of(values[0], position)


@lru_cache(maxsize=256)
def _checked_format(fmt: str) -> str:
    return dates.check_format(fmt)


def _date(values: list, position: int, env: _Env) -> Any:
    if values[0] is None:
        return None
    text = _text_of(values[0], position)
    try:
        formats = []
        for value in values[1:3]:
            if value.__class__ is not str:
                raise ExpressionError("date's formats must be text", position)
            formats.append(_checked_format(value))
        zones = [
            None if value is None else dates.zone(_text_of(value, position))
            for value in values[3:5]
        ]
        zones += [None] * (2 - len(zones))
        return dates.reformat(text, formats[0], formats[1], zones[0], zones[1])
    except ValueError as exc:  # DateFormatError included
        raise ExpressionError(f"date: {exc}", position)


def _items(value: Any, position: int, name: str) -> list:
    if value is None:
        return []
    if value.__class__ is not list:
        raise ExpressionError(
            f"{name} needs a list (such as lines[*].amount), not {_type_name(value)}", position
        )
    return value


def _sum(values: list, position: int, env: _Env) -> Decimal:
    items = _items(values[0], position, "sum")
    _tick(env, position, len(items))
    total = Decimal(0)
    for item in items:
        if item is None:
            continue
        if item.__class__ is bool:
            raise ExpressionError("sum: a boolean is not a number", position)
        try:
            total = NUMBERS.add(total, number_from_data(item))
        except ValueError as exc:
            raise ExpressionError(f"sum: {exc}", position)
    return total


def _count(values: list, position: int, env: _Env) -> Decimal:
    return Decimal(len(_items(values[0], position, "count")))


def _join_items(values: list, position: int, env: _Env) -> str:
    items = _items(values[0], position, "join")
    _tick(env, position, len(items))
    separator = _text_of(values[1], position) if len(values) > 1 else ""
    parts = [_text_of(_from_data(item), position) for item in items if item is not None]
    size = sum(len(part) for part in parts) + len(separator) * max(0, len(parts) - 1)
    if size > MAX_STRING_CHARS:
        raise ExpressionError(_TOO_LONG, position)
    return separator.join(parts)


FUNCTIONS: dict[str, Function] = {
    "upper": Function(1, 1, "upper(text)", _text_function("upper", str.upper)),
    "lower": Function(1, 1, "lower(text)", _text_function("lower", str.lower)),
    "trim": Function(1, 1, "trim(text)", _text_function("trim", str.strip)),
    "len": Function(1, 1, "len(text or list)", _len),
    "substr": Function(2, 3, "substr(text, start, [length])", _substr),
    "replace": Function(3, 3, "replace(text, old, new)", _replace),
    "round": Function(1, 2, "round(number, [places])", _round),
    "abs": Function(1, 1, "abs(number)", _abs),
    "coalesce": Function(1, 20, "coalesce(value, ...)", _coalesce),
    "concat": Function(1, 50, "concat(value, ...)", _concat),
    "to_number": Function(1, 1, "to_number(value)", _to_number),
    "to_string": Function(1, 1, "to_string(value)", _to_string),
    "date": Function(3, 5, "date(text, from_format, to_format, [from_zone], [to_zone])", _date),
    "sum": Function(1, 1, "sum(list)", _sum),
    "count": Function(1, 1, "count(list)", _count),
    "join": Function(1, 2, "join(list, [separator])", _join_items),
}


# --------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------

_COMPARISONS = frozenset({"==", "=", "!=", "<", "<=", ">", ">="})


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.index = 0
        self.nesting = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != END:
            self.index += 1
        return token

    def _is_op(self, value: str) -> bool:
        token = self.current
        return token.kind == OP and token.value == value

    def _is_keyword(self, value: str) -> bool:
        token = self.current
        return token.kind == NAME and token.value == value

    def _expect_op(self, value: str, why: str) -> Token:
        if not self._is_op(value):
            raise self._unexpected(f"expected {value!r} {why}")
        return self._advance()

    def _unexpected(self, expected: str = "") -> ExpressionError:
        token = self.current
        found = "the end of the expression" if token.kind == END else repr(token.text)
        message = f"{expected}, found {found}" if expected else f"unexpected {found}"
        return ExpressionError(message, token.position)

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExpressionError(
                f"the expression nests deeper than {MAX_DEPTH} levels", self.current.position
            )

    def parse(self) -> Node:
        node = self.expression()
        if self.current.kind != END:
            raise self._unexpected("expected an operator or the end of the expression")
        return node

    def expression(self) -> Node:
        self._enter()
        try:
            if self._is_keyword("if"):
                return self._conditional()
            return self._or()
        finally:
            self.nesting -= 1

    def _conditional(self) -> Node:
        position = self._advance().position
        condition = self.expression()
        if not self._is_keyword("then"):
            raise self._unexpected("expected 'then'")
        self._advance()
        then = self.expression()
        if not self._is_keyword("else"):
            raise self._unexpected("expected 'else' (every if needs one)")
        self._advance()
        otherwise = self.expression()
        return Conditional(condition, then, otherwise, position)

    def _or(self) -> Node:
        left = self._and()
        while self._is_keyword("or"):
            position = self._advance().position
            left = Logical("or", left, self._and(), position)
        return left

    def _and(self) -> Node:
        left = self._not()
        while self._is_keyword("and"):
            position = self._advance().position
            left = Logical("and", left, self._not(), position)
        return left

    def _not(self) -> Node:
        if self._is_keyword("not"):
            position = self._advance().position
            self._enter()
            try:
                return Not(self._not(), position)
            finally:
                self.nesting -= 1
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._concat()
        token = self.current
        if token.kind == OP and token.value in _COMPARISONS:
            self._advance()
            operator = "==" if token.value == "=" else token.value
            left = Binary(operator, left, self._concat(), token.position)
            following = self.current
            if following.kind == OP and following.value in _COMPARISONS:
                raise ExpressionError(
                    "comparisons cannot be chained; join them with and", following.position
                )
        return left

    def _binary_loop(self, operators: str, operand: Callable[[], Node]) -> Node:
        left = operand()
        while self.current.kind == OP and self.current.value in operators:
            token = self._advance()
            left = Binary(token.value, left, operand(), token.position)
        return left

    def _concat(self) -> Node:
        return self._binary_loop("&", self._additive)

    def _additive(self) -> Node:
        return self._binary_loop("+-", self._multiplicative)

    def _multiplicative(self) -> Node:
        return self._binary_loop("*/%", self._unary)

    def _unary(self) -> Node:
        if self._is_op("-") or self._is_op("+"):
            token = self._advance()
            self._enter()
            try:
                operand = self._unary()
            finally:
                self.nesting -= 1
            return Negate(operand, token.position) if token.value == "-" else operand
        return self._primary()

    def _primary(self) -> Node:
        token = self.current
        if token.kind == NUMBER or token.kind == STRING:
            self._advance()
            return Literal(token.value, token.position)
        if token.kind == OP and token.value == "(":
            self._advance()
            node = self.expression()
            self._expect_op(")", "to close the (")
            return node
        if token.kind == NAME:
            return self._name()
        raise self._unexpected("expected a value")

    def _name(self) -> Node:
        token = self._advance()
        name = token.value
        if name == "true" or name == "false":
            return Literal(name == "true", token.position)
        if name == "null":
            return Literal(None, token.position)
        if name == "if":
            self.index -= 1
            return self.expression()
        if name in KEYWORDS:
            raise ExpressionError(f"unexpected {name!r}", token.position)
        if self._is_op("("):
            return self._call(token)
        if name in ROOTS:
            return Field(name, self._steps(), token.position)
        return Field("record", (name, *self._steps()), token.position)

    def _call(self, token: Token) -> Node:
        function = FUNCTIONS.get(token.value)
        if function is None:
            raise ExpressionError(
                f"unknown function {token.value!r}; the functions are "
                + ", ".join(sorted(FUNCTIONS)),
                token.position,
            )
        self._advance()  # (
        arguments: list[Node] = []
        if not self._is_op(")"):
            while True:
                arguments.append(self.expression())
                if self._is_op(","):
                    self._advance()
                    continue
                break
        self._expect_op(")", f"to close the arguments of {token.value}")
        if not function.minimum <= len(arguments) <= function.maximum:
            raise ExpressionError(
                f"{token.value} takes {_arity(function)}: {function.signature}",
                token.position,
            )
        return Call(token.value, arguments, token.position)

    def _steps(self) -> tuple:
        steps: list = []
        while True:
            if self._is_op("."):
                self._advance()
                token = self.current
                if token.kind != NAME:
                    raise self._unexpected("expected a field name after '.'")
                self._advance()
                steps.append(token.value)
            elif self._is_op("["):
                self._advance()
                steps.append(self._bracket())
                self._expect_op("]", "to close the [")
            else:
                return tuple(steps)
            if len(steps) > 32:
                raise ExpressionError(
                    "a field reference has more than 32 steps", self.current.position
                )

    def _bracket(self) -> Any:
        token = self.current
        if token.kind == OP and token.value == "*":
            self._advance()
            return WILDCARD
        if token.kind == STRING:
            self._advance()
            if token.value.startswith("__"):
                raise ExpressionError("names starting with __ are not allowed", token.position)
            return token.value
        negative = False
        if token.kind == OP and token.value == "-":
            negative = True
            self._advance()
            token = self.current
        if token.kind == NUMBER and token.text.isdigit() and len(token.text) <= 9:
            self._advance()
            return -int(token.text) if negative else int(token.text)
        raise self._unexpected('expected [*], a whole number or ["name"]')


def _arity(function: Function) -> str:
    if function.minimum == function.maximum:
        count = function.minimum
        return f"{count} argument" + ("s" if count != 1 else "")
    return f"{function.minimum} to {function.maximum} arguments"


# --------------------------------------------------------------------------------------
# The public face
# --------------------------------------------------------------------------------------


class Expression:
    """A parsed expression; evaluate it as often as needed (thread-safe)."""

    __slots__ = ("text", "root")

    def __init__(self, text: str, root: Node):
        self.text = text
        self.root = root

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, record: Any = None, source: Any = None) -> Any:
        """The value of the expression for a record (bare names) in a payload (``source``).

        Numbers come back as Decimal; raises ExpressionError.
        """
        env = _Env(record, record if source is None else source)
        try:
            return self.root.evaluate(env)
        except RecursionError:  # pragma: no cover - MAX_DEPTH keeps this far away
            raise ExpressionError("the expression nests too deeply", self.root.position)

    def fields(self) -> list[tuple[str, tuple]]:
        """(root, steps) of every field the expression reads, in order."""
        found: list[tuple[str, tuple]] = []
        pending: list[Node] = [self.root]
        while pending:
            node = pending.pop()
            if isinstance(node, Field):
                found.append((node.root, node.steps))
            pending.extend(reversed(node.children()))
        return found


def parse(text: Any) -> Expression:
    """Parse an expression; ExpressionError (with a position) when it is not one."""
    if not isinstance(text, str):
        raise ExpressionError("an expression must be text")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION_CHARS:,} characters")
    if not text.strip():
        raise ExpressionError("the expression is empty")
    return Expression(text, _Parser(tokenize(text)).parse())
