"""Date and time formats of mapping rules: checked once, then used for every record.

A format is ``"iso"`` (ISO 8601: read with ``datetime.fromisoformat``, which takes a date,
a date-time and an offset or ``Z``; written with ``isoformat()``), ``"iso_date"``
(``YYYY-MM-DD``), or a ``strftime`` pattern such as ``"%d.%m.%Y %H:%M"``. Time zones are
IANA names (``Europe/Berlin``). A value read without an offset is taken to be in the
``from_tz`` zone (UTC when none is given) as soon as a zone matters; ``to_tz`` converts
before writing.
"""

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ISO = "iso"
ISO_DATE = "iso_date"
MAX_FORMAT_CHARS = 100
MAX_DATE_TEXT_CHARS = 100

# strftime directives that read and write the same way on every platform.
_DIRECTIVES = frozenset("aAwdbBmyYHIpMSfzZjUWGuVcxX%")
_SAMPLE = datetime(2024, 11, 28, 13, 45, 30, 123456, tzinfo=UTC)


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
    if not isinstance(text, str):
        raise ValueError(f"expected a date as text, got {type(text).__name__}")
    if len(text) > MAX_DATE_TEXT_CHARS:
        raise ValueError("the date text is too long")
    value = text.strip()
    if fmt in (ISO, ISO_DATE):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date")
        return parsed
    try:
        return datetime.strptime(value, fmt)  # zones: convert()
    except ValueError:
        raise ValueError(f"{text!r} does not match the format {fmt!r}")


def write(value: datetime, fmt: str) -> str:
    if fmt == ISO:
        return value.isoformat()
    if fmt == ISO_DATE:
        return value.date().isoformat()
    return value.strftime(fmt)


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
