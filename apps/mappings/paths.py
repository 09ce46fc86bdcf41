"""Field paths of mapping rules: ``customer.id``, ``lines[*].sku``, ``lines[0].qty``.

Syntax: names joined by dots; ``[*]`` (every element of an array), ``[n]`` (element n,
counted from 0; negative counts from the end, source paths only) and ``["odd key"]`` (a name
with characters a plain name cannot hold, such as spaces or dots) after any step. A plain
name is letters, digits and ``_ - @ # $ :`` — so the XML converter's ``@currency`` and
``#text`` are plain names. A leading ``$.`` is accepted and ignored.

A path compiles once into a getter or a setter closure; reading never raises (a missing
step gives :data:`MISSING`), and ``[*]``/``[n]`` on a value that is not an array treat it
as an array of one (XML has no arrays: a repeated element read once is a single object).
"""

import re
from collections.abc import Callable
from typing import Any

MAX_PATH_CHARS = 500
MAX_PATH_STEPS = 32


class _Missing:
    __slots__ = ()

    def __repr__(self):
        return "MISSING"

    def __bool__(self):
        return False


MISSING: Any = _Missing()


class _Wildcard:
    __slots__ = ()

    def __repr__(self):
        return "[*]"


WILDCARD: Any = _Wildcard()

Step = str | int | _Wildcard
Path = tuple[Step, ...]


class PathError(ValueError):
    """A path that cannot be read; the message says where."""


_NAME = re.compile(r"[\w@#$:\-]+")
_INDEX = re.compile(r"\[\s*(\*|-?\d{1,9})\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\]""")
_UNESCAPE = re.compile(r"\\(.)")
_PLAIN = re.compile(r"[\w@#$:\-]+")


def parse_path(text: Any) -> Path:
    """The steps of a path; PathError says what is wrong and at which character."""
    if not isinstance(text, str):
        raise PathError("a path must be text")
    source = text.strip()
    if not source:
        raise PathError("the path is empty")
    if len(source) > MAX_PATH_CHARS:
        raise PathError(f"the path is longer than {MAX_PATH_CHARS} characters")
    if source == "$":
        raise PathError("the path names the whole document; name a field")
    position = 2 if source.startswith("$.") else 1 if source.startswith("$[") else 0
    steps: list[Step] = []
    expect_name = True
    while position < len(source):
        char = source[position]
        if char == "[":
            match = _INDEX.match(source, position)
            if match:
                index = match.group(1)
                steps.append(WILDCARD if index == "*" else int(index))
            else:
                match = _QUOTED.match(source, position)
                if not match:
                    raise PathError(
                        f"at character {position + 1}: expected [*], [number] or "
                        f'["name"] in {source!r}'
                    )
                raw = match.group(1) if match.group(1) is not None else match.group(2)
                steps.append(_UNESCAPE.sub(r"\1", raw))
            position = match.end()
            expect_name = False
        elif char == "." and not expect_name:
            position += 1
            expect_name = True
            if position >= len(source):
                raise PathError(f"the path {source!r} ends with a dot")
        elif expect_name:
            match = _NAME.match(source, position)
            if not match:
                raise PathError(
                    f"at character {position + 1}: {char!r} cannot start a name in {source!r}"
                )
            steps.append(match.group(0))
            position = match.end()
            expect_name = False
        else:
            raise PathError(f"at character {position + 1}: unexpected {char!r} in {source!r}")
        if len(steps) > MAX_PATH_STEPS:
            raise PathError(f"the path has more than {MAX_PATH_STEPS} steps")
    if not steps:
        raise PathError("the path is empty")
    return tuple(steps)


def format_path(steps: Path) -> str:
    """The canonical text of a path (what problems and exports show)."""
    parts: list[str] = []
    for step in steps:
        if step is WILDCARD:
            parts.append("[*]")
        elif isinstance(step, int):
            parts.append(f"[{step}]")
        elif _PLAIN.fullmatch(step):
            parts.append(f".{step}" if parts else step)
        else:
            escaped = step.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'["{escaped}"]')
    return "".join(parts)


def with_indexes(steps: Path, indexes: tuple[int, ...]) -> str:
    """The path text with its wildcards replaced by concrete indexes (for messages)."""
    filled: list[Step] = []
    remaining = list(indexes)
    for step in steps:
        if step is WILDCARD and remaining:
            filled.append(remaining.pop(0))
        else:
            filled.append(step)
    return format_path(tuple(filled))


def wildcard_count(steps: Path) -> int:
    return sum(1 for step in steps if step is WILDCARD)


def split_at_wildcards(steps: Path) -> list[Path]:
    """``a.b[*].c[*].d`` -> ``[(a, b), (c,), (d,)]``: the parts between the wildcards."""
    parts: list[list[Step]] = [[]]
    for step in steps:
        if step is WILDCARD:
            parts.append([])
        else:
            parts[-1].append(step)
    return [tuple(part) for part in parts]


def _same_step(x: Step, y: Step) -> bool:
    if x is WILDCARD:
        return y is WILDCARD or isinstance(y, int)
    if y is WILDCARD:
        return isinstance(x, int)
    return type(x) is type(y) and x == y


def overlaps(a: Path, b: Path) -> bool:
    """Whether one path is the other or lies inside it (an index matches a wildcard)."""
    return all(_same_step(x, y) for x, y in zip(a, b, strict=False))


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _step(value: Any, step: str | int) -> Any:
    if isinstance(step, str):
        if isinstance(value, dict):
            return value.get(step, MISSING)
        return MISSING
    if not isinstance(value, list):
        if value is None or value is MISSING:
            return MISSING
        value = [value]
    try:
        return value[step]
    except IndexError:
        return MISSING


def make_getter(steps: Path) -> Callable[[Any], Any]:
    """A function reading the path from a tree: the value, or MISSING.

    With wildcards it returns the list of every value found (flattened over all
    wildcards; missing ones left out), or MISSING when the first array is missing.
    """
    if not steps:
        return lambda value: value
    if WILDCARD not in steps:
        if all(isinstance(step, str) for step in steps):
            return _key_getter(steps)

        def get_indexed(value: Any) -> Any:
            for step in steps:
                value = _step(value, step)
                if value is MISSING:
                    return MISSING
            return value

        return get_indexed

    where = steps.index(WILDCARD)
    head = make_getter(steps[:where])
    rest_has_wildcard = WILDCARD in steps[where + 1 :]
    tail = make_getter(steps[where + 1 :])

    def get_all(value: Any) -> Any:
        array = head(value)
        if array is MISSING or array is None:
            return MISSING
        if not isinstance(array, list):
            array = [array]
        found: list[Any] = []
        for item in array:
            item_value = tail(item)
            if item_value is MISSING:
                continue
            if rest_has_wildcard:
                found.extend(item_value)
            else:
                found.append(item_value)
        return found

    return get_all


def _key_getter(keys: tuple[str, ...]) -> Callable[[Any], Any]:
    # Specialised closures: these run once per rule per record, so they avoid loops.
    if len(keys) == 1:
        (a,) = keys

        def get1(value: Any) -> Any:
            if value.__class__ is dict:
                return value.get(a, MISSING)
            return MISSING

        return get1
    if len(keys) == 2:
        a, b = keys

        def get2(value: Any) -> Any:
            if value.__class__ is dict:
                value = value.get(a, MISSING)
                if value.__class__ is dict:
                    return value.get(b, MISSING)
            return MISSING

        return get2

    def get_n(value: Any) -> Any:
        for key in keys:
            if value.__class__ is not dict:
                return MISSING
            value = value.get(key, MISSING)
        return value

    return get_n


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


class WriteConflict(Exception):
    """Something already written where the path needs an object or an array."""


def _container(parent: Any, step: str | int, next_step: str | int) -> Any:
    """The child of ``parent`` at ``step``, created as an object or array for ``next_step``."""
    wanted = list if isinstance(next_step, int) else dict
    if isinstance(step, str):
        child = parent.get(step)
        if child is None:
            child = parent[step] = wanted()
    else:
        while len(parent) <= step:
            parent.append(None)
        child = parent[step]
        if child is None:
            child = parent[step] = wanted()
    if not isinstance(child, wanted):
        raise WriteConflict(
            f"there is already a value that is not {'an array' if wanted is list else 'an object'}"
        )
    return child


def make_setter(steps: Path) -> Callable[[Any, Any], None]:
    """A function writing a value at the path (no wildcards) into a tree of dicts and lists,
    creating the objects and arrays on the way. Raises WriteConflict."""
    if not steps:
        raise ValueError("a setter needs at least one step")
    if WILDCARD in steps:
        raise ValueError("make_setter takes a path without wildcards")
    if any(isinstance(step, int) and step < 0 for step in steps):
        raise ValueError("target paths cannot count from the end")
    if len(steps) == 1 and isinstance(steps[0], str):
        (key,) = steps

        def set1(tree: dict, value: Any) -> None:
            tree[key] = value

        return set1

    *parents, last = steps
    pairs = list(zip(parents, [*parents[1:], last], strict=True))

    def set_n(tree: Any, value: Any) -> None:
        node = tree
        for step, next_step in pairs:
            node = _container(node, step, next_step)
        if isinstance(last, str):
            if not isinstance(node, dict):
                raise WriteConflict("there is already a value that is not an object")
            node[last] = value
        else:
            while len(node) <= last:
                node.append(None)
            node[last] = value

    return set_n


def make_object_opener(steps: tuple[str, ...]) -> Callable[[dict], dict]:
    """A function returning the object at a path of names in a tree, creating the objects
    on the way. Raises WriteConflict when something else is there."""
    if len(steps) == 1:  # the common case, without a loop
        (key,) = steps

        def open1(tree: dict) -> dict:
            child = tree.get(key)
            if child is None:
                child = tree[key] = {}
            elif child.__class__ is not dict:
                raise WriteConflict("there is already a value that is not an object")
            return child

        return open1

    def open_object(tree: dict) -> dict:
        node = tree
        for key in steps:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif child.__class__ is not dict:
                raise WriteConflict("there is already a value that is not an object")
            node = child
        return node

    return open_object


def make_array_opener(steps: Path) -> Callable[[Any], list]:
    """A function returning the array at the path in a tree, created empty when missing.
    Raises WriteConflict when something else is there."""
    if not steps:
        raise ValueError("an array path needs at least one step")
    if len(steps) == 1 and isinstance(steps[0], str):
        (key,) = steps

        def open1(tree: dict) -> list:
            array = tree.get(key)
            if array is None:
                array = tree[key] = []
            elif array.__class__ is not list:
                raise WriteConflict("there is already a value that is not an array")
            return array

        return open1
    *parents, last = steps
    pairs = list(zip(parents, [*parents[1:], last], strict=True))

    def open_n(tree: Any) -> list:
        node = tree
        for step, next_step in pairs:
            node = _container(node, step, next_step)
        return _container_at(node, last)

    return open_n


def _container_at(node: Any, last: str | int) -> list:
    if isinstance(last, str):
        array = node.get(last)
        if array is None:
            array = node[last] = []
    else:
        while len(node) <= last:
            node.append(None)
        array = node[last]
        if array is None:
            array = node[last] = []
    if not isinstance(array, list):
        raise WriteConflict("there is already a value that is not an array")
    return array
