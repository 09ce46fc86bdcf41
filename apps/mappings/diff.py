"""Structural differences between two JSON trees: what a mapping test shows when it fails."""

from dataclasses import dataclass
from typing import Any

from apps.mappings.paths import format_path

MAX_DIFFERENCES = 200


@dataclass(frozen=True)
class Difference:
    """One place where the trees differ. ``change``: added (only in actual), removed (only
    in expected), changed (both, different values or types)."""

    path: str
    change: str
    expected: Any = None
    actual: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "expected": self.expected,
            "actual": self.actual,
        }


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b and (a is None) == (b is None)


def structural_diff(expected: Any, actual: Any, limit: int = MAX_DIFFERENCES) -> list[Difference]:
    """Differences, depth first (objects by key, arrays by index), at most ``limit``.

    Numbers compare by value (``1`` equals ``1.0``); ``true`` never equals ``1``.
    """
    found: list[Difference] = []
    pending: list[tuple[tuple, Any, Any]] = [((), expected, actual)]
    while pending and len(found) < limit:
        steps, left, right = pending.pop()
        where = format_path(steps) if steps else "$"
        if isinstance(left, dict) and isinstance(right, dict):
            children = []
            for key in left:
                if key in right:
                    children.append(((*steps, key), left[key], right[key]))
                else:
                    found.append(Difference(format_path((*steps, key)), "removed", left[key]))
            for key in right:
                if key not in left:
                    found.append(Difference(format_path((*steps, key)), "added", None, right[key]))
            pending.extend(reversed(children))
        elif isinstance(left, list) and isinstance(right, list):
            children = [
                ((*steps, index), left[index], right[index])
                for index in range(min(len(left), len(right)))
            ]
            for index in range(len(right), len(left)):
                found.append(Difference(format_path((*steps, index)), "removed", left[index]))
            for index in range(len(left), len(right)):
                found.append(Difference(format_path((*steps, index)), "added", None, right[index]))
            pending.extend(reversed(children))
        elif (
            isinstance(left, dict | list)
            or isinstance(right, dict | list)
            or not _same_scalar(left, right)
        ):
            found.append(Difference(where, "changed", left, right))
    return found[:limit]
