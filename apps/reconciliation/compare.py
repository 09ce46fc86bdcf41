"""What "the same record" means, and the streamed comparison of two datasets.

Normalisation
-------------
Every key and compared column has a :class:`ColumnRule`; values are normalised before they
are compared, on both sides alike:

- ``NULL`` (None) equals ``NULL`` and nothing else. With ``empty_is_null`` an empty text
  (after the whitespace rules) is ``NULL`` too. Keys follow the same rule: a ``NULL`` key
  part matches a ``NULL`` key part.
- ``text`` (the default): values of other types are compared by their text. Trailing
  whitespace is ignored unless ``keep_trailing_whitespace``; ``trim`` ignores leading
  whitespace as well. ``case_insensitive`` compares lower case.
- ``number`` and ``integer``: compared by value, so ``10.10`` equals ``10.1`` and ``10``
  equals ``10.0``. ``places`` rounds both sides half away from zero first (as
  PostgreSQL's ``round``); ``tolerance`` accepts a difference up to that amount.
- Values of the typed columns below are read without surrounding whitespace, and an empty
  text is ``NULL`` (a CSV file has no other way to say it).
- ``date``: ISO dates (``2024-12-21``); a date-time counts by its UTC date.
- ``datetime``: instants. Offsets are applied (``10:00+01:00`` equals ``09:00Z``); a value
  without an offset is read as UTC. Compared to the microsecond.
- ``boolean``: true/false, t/f, yes/no, y/n, 1/0 (any case).

A value that is not what its column's type says (``"abc"`` in a number column) stops the
run with an error naming the column, the side and the value: a reconciliation that skips
data it cannot read would report a false accuracy.

Counting
--------
Each key (after normalisation) lands in exactly one of: *matched* (one row each side,
every compared column equal), *mismatched* (one row each side, some column differs;
``column_mismatches`` counts per column), *missing in target* (source only), *unexpected
in target* (target only) or *duplicate* (on both sides, and more than once on at least
one). Duplicate keys are also counted on their own per side — keys and rows — whatever
else they are: duplicates are never collapsed into one row silently. Accuracy is
matched ÷ source rows (100% when both sides are empty).

The streamed strategy
---------------------
:class:`StreamedComparison` takes normalised batches from each side, spreads them by key
hash over partitions kept in memory until :data:`SPILL_ROWS` rows are held, then written to
temporary files, and compares one partition at a time: memory stays bounded by the size of
one partition, whatever the size of the datasets.
"""

from __future__ import annotations

import csv
import heapq
import io
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from apps.core.csv_export import safe_cell

COLUMN_TYPES = ("text", "number", "integer", "date", "datetime", "boolean")
SAMPLE_SIZE = 20  # rows kept per kind of difference
PARTITIONS = 64
SPILL_ROWS = 200_000  # rows held in memory (both sides) before partitions go to disk

# Numbers are compared exactly: PostgreSQL's numeric holds up to 131,072 digits before the
# point; 1,000 significant digits is far beyond any column a reconciliation meets.
EXACT = Context(prec=1_000, Emax=1_000_000, Emin=-1_000_000)

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class ComparisonError(ValueError):
    """Data or settings that make a comparison impossible; the message says which."""


@dataclass(frozen=True)
class ColumnRule:
    """How one column is normalised before comparing (see the module docstring)."""

    type: str = "text"
    trim: bool = False
    keep_trailing_whitespace: bool = False
    case_insensitive: bool = False
    empty_is_null: bool = False
    places: int | None = None
    tolerance: Decimal | None = None

    OPTIONS = (
        "type",
        "trim",
        "keep_trailing_whitespace",
        "case_insensitive",
        "empty_is_null",
        "places",
        "tolerance",
    )

    @classmethod
    def from_dict(cls, column: str, data: Any) -> ColumnRule:
        """A rule from a job's JSON; raises ComparisonError naming the column and option."""
        if data in (None, {}):
            return cls()
        if not isinstance(data, dict):
            raise ComparisonError(f"{column}: the normalisation must be an object.")
        unknown = sorted(set(data) - set(cls.OPTIONS))
        if unknown:
            raise ComparisonError(f"{column}: unknown option {', '.join(unknown)}.")
        kind = data.get("type", "text")
        if kind not in COLUMN_TYPES:
            raise ComparisonError(f"{column}: type must be one of {', '.join(COLUMN_TYPES)}.")
        flags = {}
        for name in ("trim", "keep_trailing_whitespace", "case_insensitive", "empty_is_null"):
            value = data.get(name, False)
            if not isinstance(value, bool):
                raise ComparisonError(f"{column}: {name} must be true or false.")
            flags[name] = value
        places = data.get("places")
        if places is not None and (
            isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 12
        ):
            raise ComparisonError(f"{column}: places must be a whole number from 0 to 12.")
        tolerance = data.get("tolerance")
        if tolerance is not None:
            try:
                tolerance = Decimal(str(tolerance))
            except InvalidOperation:
                raise ComparisonError(f"{column}: tolerance must be a number.") from None
            if not tolerance.is_finite() or tolerance < 0:
                raise ComparisonError(f"{column}: tolerance must be zero or more.")
        if (places is not None or tolerance is not None) and kind not in ("number", "integer"):
            raise ComparisonError(f"{column}: places and tolerance apply to numbers only.")
        return cls(type=kind, places=places, tolerance=tolerance, **flags)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        for name in ("trim", "keep_trailing_whitespace", "case_insensitive", "empty_is_null"):
            if getattr(self, name):
                data[name] = True
        if self.places is not None:
            data["places"] = self.places
        if self.tolerance is not None:
            data["tolerance"] = str(self.tolerance)
        return data


# --------------------------------------------------------------------------------------
# Normalising values
# --------------------------------------------------------------------------------------


def canonical_number(number: Decimal) -> str:
    """``10.10`` -> ``10.1``, ``1E+2`` -> ``100``, ``-0`` -> ``0``."""
    if number == 0:
        return "0"
    return format(number.normalize(EXACT), "f")


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return canonical_number(value)
    if isinstance(value, float):
        return canonical_number(Decimal(repr(value)))
    if isinstance(value, datetime):
        return utc_instant(value).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def utc_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Refused(Exception):
    def __init__(self, message: str):
        self.message = message


def _number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        raise Refused("is not a number")
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise Refused("is not a number") from None
    if not number.is_finite():
        raise Refused("is not a finite number")
    return number


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return utc_instant(value).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return utc_instant(datetime.fromisoformat(text)).date()
    except (ValueError, OverflowError):
        raise Refused("is not an ISO date") from None


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return utc_instant(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    text = str(value).strip()
    try:
        return utc_instant(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise Refused("is not an ISO date-time") from None


def _boolean(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = text_of(value).strip().lower()
    if text in _TRUE:
        return "true"
    if text in _FALSE:
        return "false"
    raise Refused("is not true or false")


Normaliser = Callable[[Any], Any]


def normaliser(rule: ColumnRule) -> Normaliser:
    """A function from a raw value to its normal form: ``None``, text, or (for numbers
    with a tolerance) a Decimal. Raises Refused for a value of the wrong type."""

    def whitespace(text: str) -> str:
        if rule.trim:
            text = text.strip()
        elif not rule.keep_trailing_whitespace:
            text = text.rstrip()
        return text

    empty_is_null = rule.empty_is_null

    if rule.type == "text":
        lower = rule.case_insensitive

        def normalise(value):
            if value is None:
                return None
            text = whitespace(text_of(value))
            if empty_is_null and not text:
                return None
            return text.lower() if lower else text

        return normalise

    def reader(convert):
        # Typed values are read without surrounding whitespace, and an empty text is NULL
        # (a CSV file or an API cannot say NULL otherwise).
        def normalise(value):
            if value is None:
                return None
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    return None
            return convert(value)

        return normalise

    if rule.type in ("number", "integer"):
        quantum = Decimal(1).scaleb(-rule.places) if rule.places is not None else None
        keep_number = rule.tolerance is not None

        def number(value):
            result = _number(value)
            if quantum is not None:
                try:
                    result = result.quantize(quantum, rounding=ROUND_HALF_UP, context=EXACT)
                except InvalidOperation:
                    raise Refused(f"has too many digits to round to {rule.places} places") from None
            return result if keep_number else canonical_number(result)

        return reader(number)
    if rule.type == "date":
        return reader(lambda value: _date(value).isoformat())
    if rule.type == "datetime":
        return reader(lambda value: _datetime(value).isoformat(timespec="microseconds"))
    return reader(_boolean)


def values_equal(a: Any, b: Any, rule: ColumnRule) -> bool:
    """Normal forms equal (or within the tolerance)."""
    if a is None or b is None:
        return a is None and b is None
    if rule.tolerance is not None:
        return abs(a - b) <= rule.tolerance
    return a == b


# --------------------------------------------------------------------------------------
# What a comparison is asked, and what it answers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Source and target column names of the keys and compared columns, with their rules
    (one rule per pair, applied to both sides)."""

    keys: list[tuple[str, str]]
    columns: list[tuple[str, str]]
    rules: dict[str, ColumnRule]  # by source column name

    @classmethod
    def build(
        cls,
        key_columns: list[str],
        compare_columns: list[str],
        mapping: dict[str, str] | None = None,
        normalisation: dict[str, Any] | None = None,
    ) -> Plan:
        mapping = mapping or {}
        normalisation = normalisation or {}
        if not key_columns:
            raise ComparisonError("Name at least one key column.")
        names = list(key_columns) + [c for c in compare_columns if c not in key_columns]
        for name in names:
            if not isinstance(name, str) or not name:
                raise ComparisonError("Column names must be non-empty text.")
        unknown = sorted(set(normalisation) - set(names))
        if unknown:
            raise ComparisonError(
                f"Normalisation names columns that are not compared: {', '.join(unknown)}."
            )
        rules = {name: ColumnRule.from_dict(name, normalisation.get(name)) for name in names}
        for name in key_columns:
            if rules[name].tolerance is not None:
                raise ComparisonError(f"{name}: a key column cannot have a tolerance.")
        return cls(
            keys=[(name, mapping.get(name) or name) for name in key_columns],
            columns=[
                (name, mapping.get(name) or name)
                for name in compare_columns
                if name not in key_columns
            ],
            rules=rules,
        )

    def side_columns(self, side: str) -> list[str]:
        """The columns a side reads, keys first, in the plan's order."""
        index = 0 if side == "source" else 1
        return [pair[index] for pair in self.keys + self.columns]


@dataclass
class Outcome:
    """The counts, the per-column mismatch counts and a bounded sample of each kind."""

    source_rows: int = 0
    target_rows: int = 0
    matched: int = 0
    mismatched: int = 0
    missing_in_target: int = 0
    unexpected_in_target: int = 0
    duplicates: int = 0
    duplicate_source_keys: int = 0
    duplicate_source_rows: int = 0
    duplicate_target_keys: int = 0
    duplicate_target_rows: int = 0
    column_mismatches: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[dict]] = field(default_factory=dict)

    COUNTS = (
        "source_rows",
        "target_rows",
        "matched",
        "mismatched",
        "missing_in_target",
        "unexpected_in_target",
        "duplicates",
        "duplicate_source_keys",
        "duplicate_source_rows",
        "duplicate_target_keys",
        "duplicate_target_rows",
    )

    @property
    def accuracy(self) -> Decimal:
        """Matched ÷ source rows, in percent (three places)."""
        if not self.source_rows:
            return Decimal(100) if not self.target_rows else Decimal(0)
        return (Decimal(self.matched) * 100 / self.source_rows).quantize(Decimal("0.001"))

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS}


# --------------------------------------------------------------------------------------
# The streamed comparison
# --------------------------------------------------------------------------------------

SIDES = ("source", "target")


class _Sample:
    """The first ``size`` differences of one kind by key order."""

    def __init__(self, sort_key: Callable[[tuple], tuple], size: int = SAMPLE_SIZE):
        self.heap: list = []
        self.counter = 0
        self.sort_key = sort_key
        self.size = size

    def offer(self, key: tuple, item: dict) -> None:
        if self.size <= 0:
            return
        self.counter += 1
        entry = (self.sort_key(key), -self.counter, item)
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, _Reversed(entry))
        elif entry < self.heap[0].entry:
            heapq.heapreplace(self.heap, _Reversed(entry))

    def items(self) -> list[dict]:
        return [wrapped.entry[2] for wrapped in sorted(self.heap, key=lambda w: w.entry)]


class _Reversed:
    """Heap entry ordered backwards, so the heap's top is the largest kept key."""

    __slots__ = ("entry",)

    def __init__(self, entry):
        self.entry = entry

    def __lt__(self, other):
        return other.entry[:2] < self.entry[:2]


def key_order(plan: Plan) -> Callable[[tuple], tuple]:
    """Sorts normalised keys: NULL first, numbers by value, everything else by its text
    (ISO dates and instants sort in time order)."""
    numeric = [plan.rules[source].type in ("number", "integer") for source, _ in plan.keys]

    def sort_key(key: tuple) -> tuple:
        return tuple(
            (False, Decimal(0), "")
            if part is None
            else (True, Decimal(part), "")
            if is_number
            else (True, Decimal(0), part)
            for part, is_number in zip(key, numeric, strict=True)
        )

    return sort_key


class ReportWriter:
    """The difference report: one CSV row per difference (a mismatched row gives one per
    differing column), every cell escaped against formula injection like every export."""

    def __init__(self, stream, key_names: list[str]):
        self.writer = csv.writer(stream)
        self.writer.writerow(["difference", *key_names, "column", "source value", "target value"])

    def writerow(self, cells: list) -> None:
        self.writer.writerow([safe_cell(cell) for cell in cells])


KINDS = ("missing_in_target", "unexpected_in_target", "mismatched", "duplicate")


class Differences:
    """Where a comparison's differences go: a sample of each kind (the first ``sample_size``
    by normalised key) and, when a report stream is given, every difference as CSV."""

    def __init__(self, plan: Plan, report=None, *, sample_size: int = SAMPLE_SIZE):
        self.plan = plan
        self.writer = None
        if report is not None:
            self.writer = ReportWriter(report, [source for source, _ in plan.keys])
        order = key_order(plan)
        self._samples = {kind: _Sample(order, sample_size) for kind in KINDS}
        self._target_names = dict(
            zip(plan.side_columns("source"), plan.side_columns("target"), strict=True)
        )

    def record(
        self,
        kind: str,
        key: tuple,
        key_cells: list,
        source: dict | None,
        target: dict | None,
        *,
        columns: list[str] | None = None,
        counts: tuple[int, int] | None = None,
    ) -> None:
        """One difference: its kind, normalised key (for the order of samples), the key's
        shown values and each side's row as shown (None for a side without the key)."""
        item = {"key": key_cells, "source": source, "target": target}
        if columns is not None:
            item["columns"] = columns
        if counts is not None:
            item["source_count"], item["target_count"] = counts
        self._samples[kind].offer(key, item)
        writer = self.writer
        if writer is None:
            return
        if kind == "mismatched":
            for name in columns:
                writer.writerow(
                    [kind, *key_cells, name, source[name], target[self._target_names[name]]]
                )
        elif kind == "duplicate":
            writer.writerow([kind, *key_cells, "", f"{counts[0]} rows", f"{counts[1]} rows"])
        else:
            writer.writerow([kind, *key_cells, "", "", ""])

    def samples(self) -> dict[str, list[dict]]:
        return {kind: sample.items() for kind, sample in self._samples.items()}


class StreamedComparison:
    """Compares two streams of rows by key with bounded memory.

    Call :meth:`add` with batches of raw rows (tuples in :meth:`Plan.side_columns` order)
    for each side, in any order, then :meth:`finish`. ``report`` (a text stream) receives
    every difference as CSV when given.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        partitions: int = PARTITIONS,
        spill_rows: int = SPILL_ROWS,
        work_dir: str | None = None,
    ):
        self.plan = plan
        self.partitions = partitions
        self.spill_rows = spill_rows
        self.work_dir = work_dir
        self.key_count = len(plan.keys)
        self.normalisers = [
            normaliser(plan.rules[source]) for source, _ in plan.keys + plan.columns
        ]
        self.outcome = Outcome(column_mismatches={source: 0 for source, _ in plan.columns})
        self._buffers = {side: [[] for _ in range(partitions)] for side in SIDES}
        self._held = 0
        self._files: dict[tuple[str, int], str] = {}
        self._temp: tempfile.TemporaryDirectory | None = None

    # -- reading ---------------------------------------------------------------------

    def add(self, side: str, rows: Iterable[tuple]) -> int:
        """Normalises and partitions a batch of rows of a side; returns how many."""
        buffers = self._buffers[side]
        normalisers = self.normalisers
        names = self.plan.side_columns(side)
        key_count = self.key_count
        partitions = self.partitions
        added = 0
        for raw in rows:
            try:
                values = tuple(
                    normalise(value) for normalise, value in zip(normalisers, raw, strict=True)
                )
            except Refused:
                self._refuse(side, names, raw)
            except ValueError:
                raise ComparisonError(
                    f"A {side} row has {len(raw)} values; {len(names)} columns were asked for."
                ) from None
            key = values[:key_count]
            buffers[hash(key) % partitions].append((key, values[key_count:], raw))
            added += 1
        if side == "source":
            self.outcome.source_rows += added
        else:
            self.outcome.target_rows += added
        self._held += added
        if self._held >= self.spill_rows:
            self._spill()
        return added

    def _refuse(self, side: str, names: list[str], raw: tuple) -> None:
        for normalise, name, value in zip(self.normalisers, names, raw, strict=False):
            try:
                normalise(value)
            except Refused as exc:
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                raise ComparisonError(f"{side} column {name}: {shown} {exc.message}.") from None

    def _spill(self) -> None:
        if self._temp is None:
            self._temp = tempfile.TemporaryDirectory(prefix="pontis-recon-", dir=self.work_dir)
        for side, buffers in self._buffers.items():
            for index, rows in enumerate(buffers):
                if not rows:
                    continue
                path = self._files.setdefault(
                    (side, index), os.path.join(self._temp.name, f"{side}-{index}.bin")
                )
                with open(path, "ab") as handle:
                    pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
                buffers[index] = []
        self._held = 0

    def _partition(self, side: str, index: int) -> Iterator[tuple]:
        path = self._files.get((side, index))
        if path:
            with open(path, "rb") as handle:
                while True:
                    try:
                        yield from pickle.load(handle)  # noqa: S301 (our own temporary file)
                    except EOFError:
                        break
        yield from self._buffers[side][index]

    # -- comparing -------------------------------------------------------------------

    def finish(self, report: io.TextIOBase | None = None) -> Outcome:
        differences = Differences(self.plan, report)
        try:
            for index in range(self.partitions):
                self._compare_partition(index, differences)
        finally:
            if self._temp is not None:
                self._temp.cleanup()
                self._temp = None
        self.outcome.samples = differences.samples()
        return self.outcome

    def _compare_partition(self, index: int, differences: Differences) -> None:
        outcome = self.outcome
        source: dict[tuple, list] = {}
        for key, values, raw in self._partition("source", index):
            entry = source.get(key)
            if entry is None:
                source[key] = [1, values, raw]
            else:
                entry[0] += 1
        target: dict[tuple, list] = {}
        for key, values, raw in self._partition("target", index):
            entry = target.get(key)
            if entry is None:
                target[key] = [1, values, raw]
            else:
                entry[0] += 1
        for key, (count, values, raw) in source.items():
            if count > 1:
                outcome.duplicate_source_keys += 1
                outcome.duplicate_source_rows += count
            other = target.get(key)
            if other is None:
                outcome.missing_in_target += 1
                self._record(differences, "missing_in_target", key, raw, None)
                continue
            other_count, other_values, other_raw = other
            if count > 1 or other_count > 1:
                outcome.duplicates += 1
                self._record(
                    differences,
                    "duplicate",
                    key,
                    raw,
                    other_raw,
                    counts=(count, other_count),
                )
                continue
            differing = self._differing(values, other_values)
            if differing:
                outcome.mismatched += 1
                for name in differing:
                    outcome.column_mismatches[name] += 1
                self._record(differences, "mismatched", key, raw, other_raw, columns=differing)
            else:
                outcome.matched += 1
        for key, (count, _values, raw) in target.items():
            if count > 1:
                outcome.duplicate_target_keys += 1
                outcome.duplicate_target_rows += count
            if key not in source:
                outcome.unexpected_in_target += 1
                self._record(differences, "unexpected_in_target", key, None, raw)

    def _differing(self, values: tuple, others: tuple) -> list[str]:
        if values == others and not any(
            self.plan.rules[source].tolerance is not None for source, _ in self.plan.columns
        ):
            return []
        differing = []
        for (source, _), a, b in zip(self.plan.columns, values, others, strict=True):
            if not values_equal(a, b, self.plan.rules[source]):
                differing.append(source)
        return differing

    def _record(
        self,
        differences: Differences,
        kind: str,
        key: tuple,
        source_raw: tuple | None,
        target_raw: tuple | None,
        *,
        columns: list[str] | None = None,
        counts: tuple[int, int] | None = None,
    ) -> None:
        differences.record(
            kind,
            key,
            [shown_value(part) for part in (source_raw or target_raw)[: self.key_count]],
            self._row_dict("source", source_raw),
            self._row_dict("target", target_raw),
            columns=columns,
            counts=counts,
        )

    def _row_dict(self, side: str, raw: tuple | None) -> dict | None:
        if raw is None:
            return None
        return {
            name: shown_value(value)
            for name, value in zip(self.plan.side_columns(side), raw, strict=True)
        }


def shown_value(value: Any) -> Any:
    """A raw value as JSON can hold it, for samples and the report."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, datetime | date):
        return value.isoformat()
    return text_of(value)
