"""Date and time formats of mapping rules: checked once, then used for every record.

A format is ``"iso"`` (ISO 8601: read with ``datetime.fromisoformat``, which takes a date,
a date-time and an offset or ``Z``; written with ``isoformat()``), ``"iso_date"``
(``YYYY-MM-DD``), or a ``strftime`` pattern such as ``"%d.%m.%Y %H:%M"``. Time zones are
IANA names (``Europe/Berlin``). A value read without an offset is taken to be in the
``from_tz`` zone (UTC when none is given) as soon as a zone matters; ``to_tz`` converts
before writing.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from operator import attrgetter, methodcaller
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ISO = "iso"
ISO_DATE = "iso_date"
MAX_FORMAT_CHARS = 100
MAX_DATE_TEXT_CHARS = 100

# strftime directives that read and write the same way on every platform.
_DIRECTIVES = frozenset("aAwdbBmyYHIpMSfzZjUWGuVcxX%")
_SAMPLE = datetime(2024, 11, 28, 13, 45, 30, 123456, tzinfo=UTC)

# The numeric directives read and written without strptime and strftime (see reader() and
# writer()): the regular expressions are those of CPython's _strptime, the attributes those
# strftime writes, zero-padded to two digits (the year has four from the year 1000).
_NUMERIC = {
    "Y": (r"(?P<Y>\d\d\d\d)", "year"),
    "m": (r"(?P<m>1[0-2]|0[1-9]|[1-9])", "month"),
    "d": (r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])", "day"),
    "H": (r"(?P<H>2[0-3]|[0-1]\d|\d)", "hour"),
    "M": (r"(?P<M>[0-5]\d|\d)", "minute"),
    "S": (r"(?P<S>6[0-1]|[0-5]\d|\d)", "second"),
}
_FIELD_ORDER = "YmdHMS"  # datetime's positional arguments
_REGEX_CHARS = frozenset("\\.^$*+?(){}[]|")


class DateFormatError(ValueError):
    """A format or time zone that cannot be used; the message says why."""


def check_format(fmt: object) -> str:
    """The format if it can be used both to read and to write; DateFormatError otherwise."""
    if not isinstance(fmt, str) or not fmt:
        raise DateFormatError('a date format must be "iso", "iso_date" or a strftime pattern')
    if fmt in (ISO, ISO_DATE):
        return fmt
    if len(fmt) > MAX_FORMAT_CHARS:
        raise DateFormatError(f"the date format is longer than {MAX_FORMAT_CHARS} characters")
    directives = 0
    index = 0
    while index < len(fmt):
        if fmt[index] == "%":
            if index + 1 >= len(fmt):
                raise DateFormatError(f"the date format {fmt!r} ends with a lone %")
            code = fmt[index + 1]
            if code not in _DIRECTIVES:
                raise DateFormatError(
                    f"the date format {fmt!r} uses %{code}, which is not a date directive"
                )
            if code != "%":
                directives += 1
            index += 2
        else:
            index += 1
    if not directives:
        raise DateFormatError(
            f'the date format {fmt!r} has no directives such as %Y or %d; use "iso" for ISO 8601'
        )
    try:
        datetime.strptime(_SAMPLE.strftime(fmt), fmt)  # only a round-trip test
    except Exception:  # a repeated directive is a re.error, a clash a ValueError
        raise DateFormatError(
            f"the date format {fmt!r} cannot read back what it writes (a repeated directive?)"
        )
    return fmt


@lru_cache(maxsize=256)
def zone(name: object) -> tzinfo:
    """The time zone of an IANA name; DateFormatError when there is none."""
    if not isinstance(name, str) or not name.strip():
        raise DateFormatError("a time zone must be an IANA name such as Europe/Berlin")
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise DateFormatError(f"unknown time zone {name!r}")


def parse(text: object, fmt: str) -> datetime:
    """A date-time read from text in a checked format; ValueError says why it does not fit."""
    return reader(fmt)(text)


def write(value: datetime, fmt: str) -> str:
    return writer(fmt)(value)


def _directives(fmt: str) -> list[str] | None:
    """The directive letters of a strftime pattern (``%%`` left out), or None when the
    pattern ends with a lone ``%``."""
    found = []
    index = 0
    while index < len(fmt):
        if fmt[index] == "%":
            if index + 1 >= len(fmt):
                return None
            if fmt[index + 1] != "%":
                found.append(fmt[index + 1])
            index += 2
        else:
            index += 1
    return found


def _numeric_fields(fmt: str) -> str | None:
    """The directives of a pattern in datetime's argument order when they are the year,
    month and day, optionally followed by the hour, minute and second, each once (the
    patterns read and written here without strptime and strftime); None otherwise."""
    found = _directives(fmt)
    if found is None or len(set(found)) != len(found):
        return None
    fields = "".join(sorted(found, key=lambda code: _FIELD_ORDER.find(code)))
    if len(fields) < 3 or fields != _FIELD_ORDER[: len(fields)]:
        return None
    return fields


def _strptime_pattern(fmt: str) -> re.Pattern:
    """The regular expression strptime reads ``fmt`` with (for numeric directives only):
    regex characters escaped, runs of whitespace matching any whitespace, ignoring case."""
    parts = []
    index = 0
    while index < len(fmt):
        char = fmt[index]
        if char == "%":
            code = fmt[index + 1]
            parts.append("%" if code == "%" else _NUMERIC[code][0])
            index += 2
        elif char.isspace():
            while index < len(fmt) and fmt[index].isspace():
                index += 1
            parts.append(r"\s+")
        else:
            parts.append("\\" + char if char in _REGEX_CHARS else char)
            index += 1
    return re.compile("".join(parts), re.IGNORECASE)


@lru_cache(maxsize=256)
def reader(fmt: str) -> Callable[[object], datetime]:
    """The function :func:`parse` applies for a format, compiled once: a numeric pattern
    (``%d.%m.%Y %H:%M``) is matched with strptime's own regular expression, without the
    per-call work of ``datetime.strptime``; other patterns go to strptime."""

    def check(text: object) -> str:
        if not isinstance(text, str):
            raise ValueError(f"expected a date as text, got {type(text).__name__}")
        if len(text) > MAX_DATE_TEXT_CHARS:
            raise ValueError("the date text is too long")
        return text.strip()

    if fmt in (ISO, ISO_DATE):
        from_iso = datetime.fromisoformat

        def read_iso(text: object) -> datetime:
            value = check(text)
            try:
                return from_iso(value)
            except ValueError:
                raise ValueError(f"{text!r} is not an ISO 8601 date")

        return read_iso

    fields = _numeric_fields(fmt)
    if fields is None:
        strptime = datetime.strptime

        def read_pattern(text: object) -> datetime:
            value = check(text)
            try:
                return strptime(value, fmt)  # zones: convert()
            except ValueError:
                raise ValueError(f"{text!r} does not match the format {fmt!r}")

        return read_pattern

    match = _strptime_pattern(fmt).match

    def read_numeric(text: object) -> datetime:
        value = check(text)
        found = match(value)
        if found is not None and found.end() == len(value):
            try:
                return datetime(*map(int, found.group(*fields)))
            except ValueError:  # a day or second the calendar does not have
                pass
        raise ValueError(f"{text!r} does not match the format {fmt!r}")

    return read_numeric


@lru_cache(maxsize=256)
def writer(fmt: str) -> Callable[[datetime], str]:
    """The function :func:`write` applies for a format, compiled once: a numeric pattern
    is filled in with ``%`` formatting (what strftime writes, from the year 1000 on)."""
    if fmt == ISO:
        return methodcaller("isoformat")
    if fmt == ISO_DATE:
        return lambda value: value.date().isoformat()
    found = _directives(fmt)
    if found is None or not found or not set(found) <= set(_NUMERIC):
        return lambda value: value.strftime(fmt)
    template = []
    index = 0
    while index < len(fmt):
        if fmt[index] == "%":
            code = fmt[index + 1]
            template.append("%%" if code == "%" else ("%d" if code == "Y" else "%02d"))
            index += 2
        else:
            template.append(fmt[index])
            index += 1
    text = "".join(template)
    fields = attrgetter(*(_NUMERIC[code][1] for code in found))  # one name: an int

    def write_numeric(value: datetime) -> str:
        if value.year >= 1000:  # below, how %Y pads depends on the platform's strftime
            return text % fields(value)
        return value.strftime(fmt)

    return write_numeric


def convert(value: datetime, from_zone: tzinfo | None, to_zone: tzinfo | None) -> datetime:
    """A value moved into ``to_zone``; a value without an offset is first placed in
    ``from_zone`` (UTC when None) when a zone is asked for."""
    if to_zone is None and from_zone is None:
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=from_zone or UTC)
    if to_zone is not None:
        value = value.astimezone(to_zone)
    return value


def reformat(
    text: object,
    from_fmt: str,
    to_fmt: str,
    from_zone: tzinfo | None = None,
    to_zone: tzinfo | None = None,
) -> str:
    """Text in ``from_fmt`` rewritten in ``to_fmt`` (formats checked beforehand)."""
    return write(convert(parse(text, from_fmt), from_zone, to_zone), to_fmt)
