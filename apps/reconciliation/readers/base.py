"""What every reader shares: the error, the window, the dataset protocol and the base class."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, Protocol

from django.conf import settings

DEFAULT_BATCH_SIZE = 10_000
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 300
CONNECT_TIMEOUT_SECONDS = 10
MAX_LISTED_COLUMNS = 40  # columns named in a "not found" message


class ReadError(Exception):
    """A dataset could not be read. The message says exactly what failed, for people; it
    never contains a password or other credential."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Window:
    """Records whose ``column`` (a timestamp) lies in ``[start, end)``. A bound without a
    time zone is UTC."""

    column: str
    start: datetime
    end: datetime

    def bounds(self) -> tuple[datetime, datetime]:
        """Both bounds as aware UTC date-times."""
        return as_utc(self.start), as_utc(self.end)


class Dataset(Protocol):
    """One side's records, read in batches; use it as a context manager."""

    def __enter__(self) -> Dataset: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def batches(self, size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[tuple]]:
        """Lists of at most ``size`` tuples, values in the order of the requested columns."""
        ...

    def count_hint(self) -> int | None:
        """The number of records when it is cheap to know (roughly), else None."""
        ...


class Reader:
    """Base class of the readers (a :class:`Dataset`); one subclass per source kind.

    The constructor checks the dataset and options without connecting (a ReadError says
    what is wrong); entering the context connects and checks that the columns exist;
    :meth:`batches` streams the records; leaving the context closes everything.
    """

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""

    def __init__(
        self,
        source: Any,
        dataset: str,
        options: dict | None,
        columns: Sequence[str],
        *,
        window: Window | None = None,
    ):
        self.source = source
        self.dataset = (dataset or "").strip()
        if options is not None and not isinstance(options, dict):
            raise ReadError("the options must be a JSON object")
        self.options = dict(options or {})
        self.columns = list(columns)
        if not self.columns:
            raise ReadError("no columns to read")
        if not all(isinstance(name, str) and name for name in self.columns):
            raise ReadError("column names must be non-empty texts")
        if window is not None and not (isinstance(window.column, str) and window.column):
            raise ReadError("the window needs a timestamp column")
        self.window = window
        self._opened = False
        self.check()

    # -- the lifecycle -------------------------------------------------------------------

    def check(self) -> None:
        """Validates the dataset and options without connecting; raises ReadError."""

    def open(self) -> None:
        """Connects and checks the columns; raises ReadError."""

    def close(self) -> None:
        """Releases connections and files; safe to call more than once."""

    def read(self, size: int) -> Iterator[list[tuple]]:
        """The batches (called by :meth:`batches` once the dataset is open)."""
        raise NotImplementedError

    def __enter__(self) -> Reader:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        self._opened = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._opened = False
        self.close()

    def batches(self, size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[tuple]]:
        if not self._opened:
            raise RuntimeError("open the dataset first: with open_dataset(...) as dataset")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError("the batch size must be a positive whole number")
        return self.read(size)

    def count_hint(self) -> int | None:
        return None

    # -- for the registry ----------------------------------------------------------------

    @classmethod
    def test_connection(cls, source: Any) -> str:
        """Connects without reading a dataset; a line saying where, or ReadError."""
        raise NotImplementedError

    @classmethod
    def dataset_problems(cls, source: Any, dataset: str, options: dict | None) -> str | None:
        """What is wrong with a dataset and its options (without connecting), or None."""
        try:
            cls(source, dataset, options, ["_"])
        except ReadError as exc:
            return exc.message
        return None


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def statement_timeout() -> float:
    """PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS (seconds, default 300)."""
    value = float(
        getattr(
            settings, "PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS", DEFAULT_STATEMENT_TIMEOUT_SECONDS
        )
    )
    return value if value > 0 else float(DEFAULT_STATEMENT_TIMEOUT_SECONDS)


def seconds_text(value: float) -> str:
    """``2.0`` -> ``"2 s"``, ``1.5`` -> ``"1.5 s"``."""
    return f"{int(value)} s" if float(value).is_integer() else f"{value:g} s"


def scrub(message: str, secrets: Iterable[Any]) -> str:
    """The message with every secret value replaced by ``***`` (a last line of defence:
    messages are built not to carry them in the first place)."""
    for secret in secrets:
        if isinstance(secret, str) and secret and secret in message:
            message = message.replace(secret, "***")
    return message


def resolve_columns(wanted: Iterable[str], available: Sequence[str], where: str) -> list[int]:
    """The index in ``available`` of each wanted column: the exact name, or else the only
    name that differs from it in case alone. ReadError names a missing column and the
    columns there are."""
    exact: dict[str, list[int]] = {}
    folded: dict[str, list[int]] = {}
    for index, name in enumerate(available):
        exact.setdefault(name, []).append(index)
        folded.setdefault(name.casefold(), []).append(index)
    indexes = []
    for name in wanted:
        if name in exact:
            if len(exact[name]) > 1:
                raise ReadError(
                    f"column {name!r} appears {len(exact[name])} times in {where}; "
                    "give each column its own name"
                )
            indexes.append(exact[name][0])
            continue
        candidates = folded.get(name.casefold(), [])
        if len(candidates) == 1:
            indexes.append(candidates[0])
            continue
        if candidates:
            raise ReadError(
                f"column {name!r} is ambiguous in {where}: "
                + ", ".join(repr(available[i]) for i in candidates)
            )
        raise ReadError(f"column {name!r} is not in {where}; {describe_columns(available)}")
    return indexes


def describe_columns(available: Sequence[str]) -> str:
    if not available:
        return "it has no columns"
    shown = ", ".join(available[:MAX_LISTED_COLUMNS])
    more = len(available) - MAX_LISTED_COLUMNS
    if more > 0:
        shown += f" and {more:,} more"
    return f"its columns are: {shown}"


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def instant(value: Any) -> datetime | None:
    """A timestamp value as an aware UTC date-time; None for NULL or an empty text.
    ValueError for anything else that is not a date or an ISO date-time."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        return as_utc(datetime.fromisoformat(text))
    raise ValueError(f"{type(value).__name__} is not a timestamp")


def window_test(window: Window, where: Callable[[], str]) -> Callable[[Any], bool]:
    """For readers that filter in Python: a function telling whether a record's window
    value lies in the window. NULL lies outside; a value that is not a timestamp raises
    ReadError naming it and ``where()`` (the record)."""
    start, end = window.bounds()

    def inside(value: Any) -> bool:
        try:
            moment = instant(value)
        except ValueError:
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ReadError(
                f"{where()}: the window column {window.column!r} holds {shown}, "
                "not a date or an ISO date-time"
            ) from None
        return moment is not None and start <= moment < end

    return inside
