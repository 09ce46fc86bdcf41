"""CSV export that spreadsheets cannot turn into formulas (RFC 4180 quoting)."""

import csv
from collections.abc import Callable, Iterable

from django.http import StreamingHttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\x00")


def safe_cell(value) -> str:
    """Text for one cell; a leading formula character is neutralised with a quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    def write(self, value):
        return value


def csv_response(
    filename: str, columns: list[tuple[str, Callable]], rows: Iterable
) -> StreamingHttpResponse:
    """Streams rows as CSV; ``columns`` are (header, getter) pairs."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")

    def generate():
        yield "\ufeff" + writer.writerow([header for header, _ in columns])
        for row in rows:
            yield writer.writerow([safe_cell(getter(row)) for _, getter in columns])

    response = StreamingHttpResponse(generate(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
