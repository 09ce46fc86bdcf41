"""Reading one side of a reconciliation: a dataset of a data source, in batches.

::

    with open_dataset(source, dataset, options, columns, window=window) as rows:
        for batch in rows.batches(10_000):   # lists of tuples, values in `columns` order
            ...

``open_dataset`` checks the dataset and options at once (ReadError); entering the context
connects and checks that every column exists; leaving it closes the connection or file.
Values come raw (str, int, Decimal, float, date, datetime, bool, None);
:mod:`apps.reconciliation.compare` normalises them. With a :class:`Window`, only records
whose timestamp column lies in ``[start, end)`` are read (in the database for SQL sources,
record by record for the others).

Each source kind has a reader class in :data:`READERS` (kind -> class); a new kind adds
its class there. A reader class takes ``(source, dataset, options, columns, window=…)``,
is a :class:`Dataset`, and has the class methods ``test_connection(source) -> str`` and
``dataset_problems(source, dataset, options) -> str | None``. See
:mod:`~apps.reconciliation.readers.sql`, :mod:`~apps.reconciliation.readers.http` and
:mod:`~apps.reconciliation.readers.files` for what each kind reads and how.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.reconciliation.readers.base import (
    DEFAULT_BATCH_SIZE,
    Dataset,
    Reader,
    ReadError,
    Window,
    statement_timeout,
)
from apps.reconciliation.readers.files import FileReader
from apps.reconciliation.readers.http import HttpReader
from apps.reconciliation.readers.sql import (
    MySQLReader,
    PostgresReader,
    SQLiteReader,
    check_query,
    dsn_problems,
)

READERS: dict[str, type[Reader]] = {
    "postgresql": PostgresReader,
    "mysql": MySQLReader,
    "sqlite": SQLiteReader,
    "http": HttpReader,
    "file": FileReader,
}

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "READERS",
    "Dataset",
    "ReadError",
    "Reader",
    "Window",
    "check_query",
    "dataset_problems",
    "dsn_problems",
    "open_dataset",
    "statement_timeout",
    "test_connection",
]


def _reader_class(source: Any) -> type[Reader]:
    try:
        return READERS[source.kind]
    except KeyError:
        raise ReadError(f"no reader for sources of kind {source.kind!r}") from None


def open_dataset(
    source: Any,
    dataset: str,
    options: dict | None,
    columns: Sequence[str],
    *,
    window: Window | None = None,
) -> Dataset:
    """The dataset of a source, to use as a context manager; ReadError when the dataset or
    options are wrong (connection problems come when the context is entered)."""
    return _reader_class(source)(source, dataset, options, columns, window=window)


def test_connection(source: Any) -> str:
    """Connects to the source (or opens its file) and says what it found, e.g.
    "Connected to PostgreSQL 15.19 as reader on erp"; ReadError when it cannot."""
    return _reader_class(source).test_connection(source)


# Not a test for pytest to collect, whatever module imports it.
test_connection.__test__ = False


def dataset_problems(source: Any, dataset: str, options: dict | None) -> str | None:
    """What is wrong with a job side's dataset and options, without connecting; or None.
    For forms and serializers (the source's DSN is checked too, for SQL sources)."""
    try:
        return _reader_class(source).dataset_problems(source, dataset, options)
    except ReadError as exc:
        return exc.message
