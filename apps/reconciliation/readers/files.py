"""File sources: an uploaded CSV or XLSX file (``DataSource.file``).

CSV: UTF-8 with or without a byte-order mark; the delimiter is the one of comma, semicolon
and tab that the header line holds most (option ``delimiter`` overrides it). The file is
streamed — csv.reader over a text wrapper of the stored file, a bounded line at a time —
so a file of millions of rows reads in constant memory. The first non-blank line is the
header; every record must have as many cells as the header (blank lines are skipped).
Values are the cells' texts.

XLSX: the first worksheet, through the hardened reader of mapping sheets
(:func:`apps.mappings.sheets.check_xlsx_zip` and :func:`~apps.mappings.sheets.xlsx_rows`:
zip bombs, macros and encryption refused before inflating, openpyxl read-only mode,
formulas not evaluated). The first non-blank row is the header; values are cell texts
(dates ISO, whole numbers without ".0").

Either way a requested column missing from the header is a ReadError that names it and
the columns there are; bad bytes, ragged rows and broken quoting name their line.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator
from operator import itemgetter
from pathlib import PurePath
from typing import Any

from apps.reconciliation.readers.base import Reader, ReadError, resolve_columns, window_test

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx",)
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
OPTIONS = ("delimiter",)
MAX_LINE_CHARS = 1024 * 1024  # one physical line of a CSV
MAX_XLSX_BYTES = 20 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"


class FileReader(Reader):
    kind = "file"
    label = "Uploaded file (CSV or XLSX)"

    def check(self) -> None:
        if self.dataset:
            raise ReadError("a file source reads the whole file; leave the dataset empty")
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise ReadError(
                f"unknown option {', '.join(map(str, unknown))}; the option is delimiter"
            )
        delimiter = self.options.get("delimiter")
        if delimiter not in (None, "") and delimiter not in DELIMITERS:
            raise ReadError("delimiter must be one of: comma (,), semicolon (;), tab, pipe (|)")
        self.delimiter = delimiter or None
        if not self.source.file:
            raise ReadError("the data source has no file; upload a CSV or XLSX file")
        self.name = self.source.file_name or PurePath(self.source.file.name).name
        suffix = PurePath(self.name.lower()).suffix
        if suffix in CSV_SUFFIXES:
            self.format = "csv"
        elif suffix in XLSX_SUFFIXES:
            self.format = "xlsx"
        elif suffix in ("", ".dat"):
            self.format = ""  # decided by the first bytes
        else:
            raise ReadError(f"only CSV and XLSX files can be read, not {suffix}")
        self._file: Any = None
        self._rows: Iterator[Any] | None = None
        self._line_of = lambda: 0  # the current line or row, set by the row source

    def open(self) -> None:
        self._open_rows()
        self._indexes = resolve_columns(self.columns, self.header, self._where)
        self._window_index = None
        if self.window is not None:
            (self._window_index,) = resolve_columns([self.window.column], self.header, self._where)

    def _open_rows(self) -> None:
        """Opens the file and reads its header; the records follow from ``self._rows``."""
        try:
            self._file = self.source.file.open("rb")
        except (FileNotFoundError, OSError):
            raise ReadError(
                f"the file {self.name} is missing from storage; upload it again"
            ) from None
        if not self.format:
            self._file.seek(0)
            self.format = "xlsx" if self._file.read(4) == _ZIP_MAGIC else "csv"
            self._file.seek(0)
        # The header now, so that a missing column is known before any record is read.
        self._rows = self._xlsx_rows() if self.format == "xlsx" else self._csv_rows()
        self.header, self._where = next(self._rows)

    def close(self) -> None:
        rows, self._rows = self._rows, None
        if rows is not None:
            rows.close()
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def read(self, size: int) -> Iterator[list[tuple]]:
        if self._rows is None:
            raise RuntimeError("the file was read already")
        return self._batches(self._rows, size)

    def count_hint(self) -> int | None:
        """CSV: the number of lines after the header (a quoted line break counts twice)."""
        if self.format != "csv":
            return None
        storage, name = self.source.file.storage, self.source.file.name
        lines, last = 0, b"\n"
        with storage.open(name, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        if last != b"\n":
            lines += 1
        return max(lines - 1, 0)

    # -- records -----------------------------------------------------------------------

    def _batches(self, rows: Iterator[list[str]], size: int) -> Iterator[list[tuple]]:
        """Batches of tuples of the requested cells (the header was read by open())."""
        indexes, window_index = self._indexes, self._window_index
        pick = itemgetter(*indexes) if len(indexes) > 1 else (lambda row, i=indexes[0]: (row[i],))
        inside = None
        if self.window is not None:
            # Asked only for an error message, while the bad row is the current one.
            inside = window_test(self.window, lambda: f"line {self._line_of()} of {self.name}")
        batch: list[tuple] = []
        for cells in rows:
            if inside is not None and not inside(cells[window_index]):
                continue
            batch.append(pick(cells))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    # -- CSV ---------------------------------------------------------------------------

    def _csv_rows(self) -> Iterator[Any]:
        """Yields (header, where) first, then the records' cell lists."""
        file = self._file
        file.seek(0)
        start = file.read(4)
        file.seek(0)
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ReadError(f"{self.name} is UTF-16 text; save it as UTF-8 CSV")
        text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="", errors="strict")
        text._CHUNK_SIZE = 64 * 1024
        skipped = 0
        reader = None
        self._line_of = lambda: (reader.line_num if reader is not None else 0) + skipped
        try:
            lines = _bounded_lines(text, self.name)
            first = None
            for line in lines:
                if line.strip():
                    first = line
                    break
                skipped += 1
            if first is None:
                raise ReadError(f"{self.name} is empty; it needs a header line")
            if "\x00" in first:
                raise ReadError(
                    f"{self.name} holds NUL characters: UTF-16 without a byte-order mark? "
                    "Save it as UTF-8 CSV"
                )
            delimiter = self.delimiter or sniff_delimiter(first)
            reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
            header = [name.strip() for name in next(reader)]
            yield header, f"the header of {self.name}"
            width = len(header)
            for cells in reader:
                if len(cells) != width:
                    if not cells or (len(cells) == 1 and not cells[0].strip()):
                        continue  # a blank line
                    raise ReadError(
                        f"line {reader.line_num + skipped} of {self.name}: {len(cells)} "
                        f"cells, but the header has {width}"
                    )
                yield cells
        except UnicodeDecodeError:
            line, byte = _first_bad_byte(self.source.file.storage, self.source.file.name)
            raise ReadError(
                f"{self.name} is not UTF-8 text: byte 0x{byte:02x} on line {line} "
                "(save it as UTF-8)"
            ) from None
        except csv.Error as exc:
            number = (reader.line_num if reader is not None else 0) + skipped
            raise ReadError(f"line {number} of {self.name}: {exc}") from None
        finally:
            if not text.closed:
                text.detach()  # the stored file is closed by close()

    # -- XLSX --------------------------------------------------------------------------

    def _xlsx_rows(self) -> Iterator[Any]:
        from apps.mappings.sheets import SheetError, xlsx_rows

        file = self._file
        file.seek(0)
        data = file.read(MAX_XLSX_BYTES + 1)
        if len(data) > MAX_XLSX_BYTES:
            raise ReadError(
                f"{self.name} is larger than {MAX_XLSX_BYTES // (1024 * 1024)} MB; "
                "save the sheet as CSV"
            )
        number = 0
        self._line_of = lambda: number
        try:
            rows = xlsx_rows(data)
            header: list[str] | None = None
            for number, cells in rows:  # noqa: B007 - read by _line_of
                if not any(cell.strip() for cell in cells):
                    continue
                if header is None:
                    header = [cell.strip() for cell in cells]
                    while header and not header[-1]:
                        header.pop()
                    yield header, f"the header (row {number}) of {self.name}"
                    width = len(header)
                    continue
                if len(cells) < width:
                    cells = cells + [""] * (width - len(cells))
                yield cells
            if header is None:
                raise ReadError(f"{self.name} is empty; it needs a header row")
        except SheetError as exc:
            raise ReadError(f"{self.name}: {' '.join(exc.messages)}") from None

    # -- for the registry --------------------------------------------------------------

    @classmethod
    def test_connection(cls, source: Any) -> str:
        reader = cls(source, "", {}, ["_"])
        try:
            reader._open_rows()
            header = reader.header
        finally:
            reader.close()
        shown = ", ".join(header[:10])
        if len(header) > 10:
            shown += f" and {len(header) - 10} more"
        return f"Read {reader.name} ({reader.format.upper()}): {len(header)} columns: {shown}"


def _bounded_lines(text: io.TextIOWrapper, name: str) -> Iterator[str]:
    """The physical lines of the text, each at most MAX_LINE_CHARS long (else ReadError)."""
    readline = text.readline
    number = 0
    while True:
        line = readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
            raise ReadError(
                f"line {number} of {name} is longer than {MAX_LINE_CHARS:,} characters; "
                "is it a CSV file?"
            )
        yield line


def sniff_delimiter(line: str) -> str:
    """Comma, semicolon or tab: whichever the header line holds most outside quotes."""
    outside = "".join(part for index, part in enumerate(line.split('"')) if index % 2 == 0)
    counts = {delimiter: outside.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _first_bad_byte(storage: Any, name: str) -> tuple[int, int]:
    """(line, byte) of the first byte that is not UTF-8 in the stored file, read again in
    chunks with an incremental decoder."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    line = 1
    first = True
    with storage.open(name, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if first:
                first = False
                if chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[len(codecs.BOM_UTF8) :]
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # exc.object is the decoder's pending bytes (never a line break) + chunk.
                return line + exc.object.count(b"\n", 0, exc.start), exc.object[exc.start]
            if not chunk:
                return line, 0
            line += chunk.count(b"\n")
