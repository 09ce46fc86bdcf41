"""Masking of captured payloads before they are stored as evidence.

Everything a test run or reconciliation captures (headers, bodies, parsed JSON)
passes through here first. Three entry points:

* :func:`mask_headers` — credential headers are masked by name.
* :func:`mask_text` — known secret values and detector hits inside free text.
* :func:`mask_payload` — parsed JSON: configured JSON paths, sensitive key names,
  and :func:`mask_text` on every string (keys included).

Replacement is :data:`MASK` (``"[masked]"``). Two detectors keep a hint, the rest
replace the whole hit:

=====================  ===========================================  ===========================
Detector               Matches                                      Becomes
=====================  ===========================================  ===========================
known secrets          exact credential values (>= 4 characters),   ``[masked]``
                       also JSON-escaped and URL-encoded forms
key/value pairs        ``password=…``, ``"token": "…"``, ``secret:   key kept, value ``[masked]``
                       …`` (password, passwd, passphrase, pwd,
                       secret, token, api key, access key, private
                       key, credential)
URL credentials        ``https://user:pass@host``                   ``https://user:[masked]@host``
bearer tokens          ``Bearer <token of >= 8 chars>``             ``Bearer [masked]``
basic credentials      ``Basic <base64 of user:password>``          ``Basic [masked]``
JWTs                   ``eyJ….eyJ….signature``                      ``[masked]``
e-mail addresses       ``jane.doe@example.com``                     ``[masked]@example.com``
IBANs                  compact or in groups of four, valid          ``[masked]``
                       ISO 7064 mod-97 check digits
card numbers           13–19 digits, compact or in groups of >= 3  ``[masked]1111`` (last four)
                       split by single spaces/dashes, passing the
                       Luhn check, not all zeros
US SSN                 ``123-45-6789`` (valid area/group/serial)    ``[masked]``
UK NINO                ``AB123456C`` / ``AB 12 34 56 C`` (valid     ``[masked]``
                       prefix letters, suffix A–D)
Dutch BSN              9 digits (or 8, zero-padded) passing the     label kept, ``[masked]``
                       11-check, only after a ``BSN`` label
=====================  ===========================================  ===========================

Digit runs that merely look like card numbers but fail the Luhn check (order
numbers, timestamps) are left alone; a digit run that happens to pass it is
masked — for evidence, masking too much is the safe side.

JSON paths (:func:`compile_json_path`) support ``$``, ``.name``, ``['name']``,
``[0]`` (negative indexes count from the end), ``*`` / ``[*]`` wildcards and
``..`` recursive descent (``$..password``, ``$..items[*].card``). A path without
a leading ``$`` is read as relative to the root (``items[*].card``).

Nothing here raises on odd data: bytes are decoded with replacement, non-string
keys are kept, nesting of any depth is walked iteratively, circular references
are cut with :data:`MASK`, and unknown scalar types are passed through.
``None`` is never masked (it carries nothing).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "Masker",
    "compile_json_path",
    "iban_valid",
    "is_sensitive_header",
    "is_sensitive_key",
    "luhn_valid",
    "mask_headers",
    "mask_json",
    "mask_payload",
    "mask_text",
]

MASK = "[masked]"

MIN_SECRET_LENGTH = 4

# --------------------------------------------------------------------------- names

_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
_SENSITIVE_HEADER_PARTS = ("token", "secret", "password", "api-key", "apikey", "api_key", "session")
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})

# Keys are compared lower-cased with "-", "_", ".", " " removed.
_SENSITIVE_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "credential",
    "privatekey",
    "accesskey",
    "cookie",
)
_SENSITIVE_KEYS_EXACT = frozenset(
    {
        "pwd",
        "pin",
        "cvv",
        "cvc",
        "session",
        "sessionid",
        "ssn",
        "bsn",
        "nino",
        "nationalid",
        "nationalidnumber",
        "socialsecuritynumber",
        "nationalinsurancenumber",
        "bsnnummer",
        "burgerservicenummer",
    }
)
_KEY_NORMALISE = str.maketrans("", "", "-_. ")


@lru_cache(maxsize=4096)
def is_sensitive_key(name: str) -> bool:
    """True for JSON keys whose value is masked by name (password, api_key, ssn, ...)."""
    normalised = name.lower().translate(_KEY_NORMALISE)
    if normalised in _SENSITIVE_KEYS_EXACT:
        return True
    return any(part in normalised for part in _SENSITIVE_KEY_PARTS)


@lru_cache(maxsize=1024)
def is_sensitive_header(name: str) -> bool:
    """True for headers whose value is masked (case-insensitive)."""
    lowered = name.strip().lower()
    if lowered in _SENSITIVE_HEADERS:
        return True
    return any(part in lowered for part in _SENSITIVE_HEADER_PARTS)


# ----------------------------------------------------------------------- checksums


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check on a string of digits (separators ignored)."""
    digits = [ord(c) - 48 for c in number if "0" <= c <= "9"]
    if len(digits) < 2:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 shape plus the ISO 7064 mod-97 check (spaces ignored)."""
    compact = "".join(iban.split()).upper()
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    if not (compact[:2].isalpha() and compact[2:4].isdigit()):
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        numeric = "".join(str(int(c, 36)) for c in rearranged)
    except ValueError:
        return False
    return int(numeric) % 97 == 1


def _bsn_valid(number: str) -> bool:
    digits = number.zfill(9)
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    return (total - int(digits[8])) % 11 == 0


def _ssn_valid(area: str, group: str, serial: str) -> bool:
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


# -------------------------------------------------------------------------- regexes
# Every pattern that starts with a repeated character class is anchored with a
# negative look-behind of that class, so it is only tried at the start of a run
# and stays linear on long inputs (base64 blobs, digit runs).

_PAIR_KEY = (
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credentials?)"
)
# "password": "value"   'token': 'value'   (JSON, Python reprs)
_QUOTED_PAIR_RE = re.compile(
    r"(?P<head>(?P<q>[\"'])[A-Za-z0-9_.-]*" + _PAIR_KEY + r"[A-Za-z0-9_.-]*(?P=q)"
    r"\s*[:=]\s*(?P<vq>[\"']))(?P<value>(?:\\.|(?!(?P=vq))[^\\])*)(?P=vq)",
    re.IGNORECASE | re.DOTALL,
)
# {\"password\": \"value\"}   (JSON serialised inside a JSON string)
_ESCAPED_PAIR_RE = re.compile(
    r"(?P<head>\\(?P<q>[\"'])[A-Za-z0-9_.-]*" + _PAIR_KEY + r"[A-Za-z0-9_.-]*\\(?P=q)"
    r"\s*[:=]\s*\\(?P<vq>[\"']))(?P<value>(?:(?!\\(?P=vq)).)*)\\(?P=vq)",
    re.IGNORECASE | re.DOTALL,
)
# password=value   token: value   (query strings, form bodies, logs, YAML)
_PLAIN_PAIR_RE = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<head>[A-Za-z0-9_.-]*" + _PAIR_KEY + r"[A-Za-z0-9_.-]*"
    r"[\"']?[ \t]*(?:=|:[ \t]*))(?P<value>[^\s&;,\"'<>{}\[\]]+)",
    re.IGNORECASE,
)
# Authorization: <scheme> <credentials>   (header lines quoted in logs or bodies)
_AUTHORIZATION_RE = re.compile(
    r"(?<![A-Za-z0-9_-])(?P<head>(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:[A-Za-z][A-Za-z0-9-]*[ \t]+)?)(?P<value>[^\s\"',;&\[]+)",
    re.IGNORECASE,
)
_URL_CREDENTIALS_RE = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:)(?P<value>[^/\s@]+)(?=@)"
)
_BEARER_RE = re.compile(
    r"\b(?P<head>[Bb][Ee][Aa][Rr][Ee][Rr]\s+)(?P<value>[A-Za-z0-9._~+/-]{8,}=*)"
)
_BASIC_RE = re.compile(r"\b(?P<head>[Bb][Aa][Ss][Ii][Cc]\s+)(?P<value>[A-Za-z0-9+/]{4,}={0,2})")
_JWT_RE = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@"
    r"(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63})(?![A-Za-z0-9-])"
)
_IBAN_RE = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE | re.ASCII,
)
# Maximal runs of digits with single space/dash separators; _mask_card picks the windows.
_CARD_RE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,}(?!\d)", re.ASCII)
_SSN_RE = re.compile(r"(?<![\d-])(?P<a>\d{3})-(?P<g>\d{2})-(?P<s>\d{4})(?![\d-])", re.ASCII)
_NINO_RE = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])",
    re.ASCII,
)
_BSN_RE = re.compile(
    r"(?P<head>\bbsn\b[\"']?\s*[:=#]?\s*[\"']?)(?P<value>\d{8,9})(?!\d)", re.IGNORECASE | re.ASCII
)
_DIGIT_GROUP_RE = re.compile(r"\d+", re.ASCII)
# Every match of a pair pattern contains one of these words (case-insensitive).
_PAIR_HINT_RE = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)
_TWO_DIGITS_RE = re.compile(r"\d\d", re.ASCII)
# The shape of ASCII text for _digit_detectors_may_match: digits become 9, upper-case
# letters A, lower-case letters a; everything else stays as it is.
_ASCII_SHAPE = bytes.maketrans(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    b"9" * 10 + b"A" * 26 + b"a" * 26,
)


def _digit_detectors_may_match(text: str) -> bool:
    """False only when _IBAN_RE, _CARD_RE, _SSN_RE, _NINO_RE and _BSN_RE all cannot match.

    Their digits are ASCII, so in ASCII text each needs a shape that substring tests find:
    two letters and two digits (IBAN, 2 digits or more; NINO, upper-case letters and an
    optional space, 6 digits), eight digits in a row (BSN), ``999-99-9999`` (SSN), thirteen
    digits once spaces and dashes are left out (card). Other text: two digits in a row.
    """
    if not text.isascii():
        return _TWO_DIGITS_RE.search(text) is not None
    if len(text) < 9:  # the shortest match is a NINO, AB123456C
        return False
    # bytes.translate is the fast one; "in" is faster on str than on bytes.
    shape = text.encode("ascii").translate(_ASCII_SHAPE).decode("ascii")
    digits = shape.count("9")
    if digits < 2:
        return False
    if "AA99" in shape or "AA 99" in shape or "aa99" in shape or "Aa99" in shape or "aA99" in shape:
        return True
    if digits < 8:
        return False
    if "99999999" in shape or "999-99-9999" in shape:
        return True
    return digits >= 13 and "9999999999999" in shape.replace(" ", "").replace("-", "")


def _mask_value(match: re.Match) -> str:
    return match.group("head") + MASK


def _mask_quoted_pair(match: re.Match) -> str:
    if not match.group("value"):
        return match.group(0)
    return match.group("head") + MASK + match.group("vq")


def _mask_escaped_pair(match: re.Match) -> str:
    if not match.group("value"):
        return match.group(0)
    return match.group("head") + MASK + "\\" + match.group("vq")


def _mask_plain_pair(match: re.Match) -> str:
    if match.group("value").startswith(MASK):
        return match.group(0)
    return match.group("head") + MASK


def _mask_basic(match: re.Match) -> str:
    value = match.group("value")
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    try:
        credentials = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)
    if ":" not in credentials or not credentials.isprintable():
        return match.group(0)
    return match.group("head") + MASK


def _mask_email(match: re.Match) -> str:
    return f"{MASK}@{match.group('domain')}"


def _mask_iban(match: re.Match) -> str:
    candidate = match.group(0)
    if iban_valid(candidate):
        return MASK
    # In grouped form, trailing groups may belong to the surrounding text
    # ("BE68 5390 0754 7034 2024"): try the shorter group prefixes.
    parts = candidate.split(" ")
    for end in range(len(parts) - 1, 1, -1):
        prefix = " ".join(parts[:end])
        if iban_valid(prefix):
            return MASK + candidate[len(prefix) :]
    return candidate


def _card_digits(text: str) -> str | None:
    digits = text.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits.strip("0") and luhn_valid(digits):
        return digits
    return None


def _mask_card(match: re.Match) -> str:
    """Masks Luhn-valid windows of whole digit groups (13–19 digits) in a digit run.

    Cards written with separators use groups of three or more digits (4-4-4-4,
    4-6-5, 4-4-4-4-3), so a window never includes a shorter group: lists of small
    numbers ("1 2 3 4 ...") are never read as a card.
    """
    candidate = match.group(0)
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP_RE.finditer(candidate)]
    pieces, position, first = [], 0, 0
    while first < len(groups):
        best, total = None, 0
        for last in range(first, len(groups)):
            size = groups[last][1] - groups[last][0]
            total += size
            if total > 19 or size < 3:
                break
            if total >= 13:
                digits = _card_digits(candidate[groups[first][0] : groups[last][1]])
                if digits:
                    best = (last, digits)
        if best is None:
            first += 1
            continue
        last, digits = best
        pieces += [candidate[position : groups[first][0]], MASK + digits[-4:]]
        position, first = groups[last][1], last + 1
    if not pieces:
        return candidate
    pieces.append(candidate[position:])
    return "".join(pieces)


def _mask_ssn(match: re.Match) -> str:
    if _ssn_valid(match.group("a"), match.group("g"), match.group("s")):
        return MASK
    return match.group(0)


def _mask_bsn(match: re.Match) -> str:
    if _bsn_valid(match.group("value")):
        return match.group("head") + MASK
    return match.group(0)


# ----------------------------------------------------------------------- mask_text


def _secret_variants(secrets: Iterable[Any] | None) -> tuple[str, ...]:
    """Exact secret values plus their JSON-escaped and URL-encoded forms, longest first."""
    if not secrets:
        return ()
    if isinstance(secrets, str | bytes):
        secrets = (secrets,)
    try:
        values = tuple(secrets)
    except TypeError:
        return ()
    try:
        return _cached_variants(values)  # a run masks thousands of bodies with one set
    except TypeError:  # an unhashable value
        return _variants(values)


@lru_cache(maxsize=256)
def _cached_variants(values: tuple) -> tuple[str, ...]:
    return _variants(values)


def _variants(values: tuple) -> tuple[str, ...]:
    variants: set[str] = set()
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        text = _to_text(value)
        if len(text) < MIN_SECRET_LENGTH:
            continue
        variants.add(text)
        variants.add(json.dumps(text)[1:-1])
        variants.add(json.dumps(text, ensure_ascii=False)[1:-1])
        variants.add(quote(text, safe=""))
        variants.add(quote_plus(text, safe=""))
    variants = {v for v in variants if len(v) >= MIN_SECRET_LENGTH}
    return tuple(sorted(variants, key=lambda v: (-len(v), v)))


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break evidence capture
        return MASK


def _ascii_pair_hint(lowered: str) -> bool:
    """_PAIR_HINT_RE on lower-cased ASCII text, answered exactly by substring tests."""
    return (
        "pass" in lowered
        or "pwd" in lowered
        or "secret" in lowered
        or "token" in lowered
        or "key" in lowered
        or "credential" in lowered
    )


def _mask_text(text: str, variants: tuple[str, ...]) -> str:
    for variant in variants:
        if variant in text:
            text = text.replace(variant, MASK)
    if len(text) < 5:
        return text

    # Each detector runs only when the text can hold a match, so that the common string
    # (a name, a date, a SKU) costs substring tests only.
    unchanged = text
    if text.isascii():
        # For ASCII text, "in" on the lower-cased text answers _PAIR_HINT_RE exactly.
        lowered = text.lower()
        pair_hint = _ascii_pair_hint(lowered)
    else:
        # Unicode case-insensitive matching is wider than str.lower() (ſ matches s).
        lowered = None
        pair_hint = _PAIR_HINT_RE.search(text) is not None
    if pair_hint:
        if "'" in text or '"' in text:
            if "\\" in text:
                text = _ESCAPED_PAIR_RE.sub(_mask_escaped_pair, text)
            text = _QUOTED_PAIR_RE.sub(_mask_quoted_pair, text)
        if "=" in text or ":" in text:
            text = _PLAIN_PAIR_RE.sub(_mask_plain_pair, text)
    has_at = "@" in text
    if has_at and "://" in text:
        text = _URL_CREDENTIALS_RE.sub(_mask_value, text)
    if lowered is None or text is not unchanged:
        lowered = text.lower()
    if "authorization" in lowered:
        text = _AUTHORIZATION_RE.sub(_mask_value, text)
    if "bearer" in lowered:
        text = _BEARER_RE.sub(_mask_value, text)
    if "basic" in lowered:
        text = _BASIC_RE.sub(_mask_basic, text)
    if "eyJ" in text:
        text = _JWT_RE.sub(MASK, text)
    if has_at:
        text = _EMAIL_RE.sub(_mask_email, text)
    if _digit_detectors_may_match(text):
        text = _IBAN_RE.sub(_mask_iban, text)
        text = _CARD_RE.sub(_mask_card, text)
        if "-" in text:
            text = _SSN_RE.sub(_mask_ssn, text)
        text = _NINO_RE.sub(MASK, text)
        if "bsn" in lowered:
            text = _BSN_RE.sub(_mask_bsn, text)
    return text


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Masks known secret values and detector hits (see the module docstring) in ``text``.

    ``bytes`` are decoded as UTF-8 with replacement; ``None`` becomes ``""``; other
    values are converted with ``str()``.
    """
    return _mask_text(_to_text(text), _secret_variants(secrets))


# -------------------------------------------------------------------- mask_headers


_COOKIE_PAIR_RE = re.compile(r"(?P<lead>(?:^|[;,])[ \t]*)(?P<name>[^=;,\s]+)=(?P<value>[^;,]*)")
_COOKIE_ATTRIBUTES = frozenset(
    {"path", "domain", "expires", "max-age", "samesite", "priority", "secure", "httponly"}
)


def _mask_cookies(value: str) -> str:
    """``a=1; b=2`` → ``a=[masked]; b=[masked]``; Set-Cookie attributes are kept.

    Several Set-Cookie values merged with commas are handled too.
    """

    def replace(match: re.Match) -> str:
        if match.group("name").lower() in _COOKIE_ATTRIBUTES:
            return match.group(0)
        return f"{match.group('lead')}{match.group('name')}={MASK}"

    masked, count = _COOKIE_PAIR_RE.subn(replace, value)
    if not count and value.strip():
        return MASK
    return masked


def _mask_header_value(name: str, value: Any, variants: tuple[str, ...]) -> Any:
    if isinstance(value, list | tuple):
        masked_items = [_mask_header_value(name, item, variants) for item in value]
        return tuple(masked_items) if isinstance(value, tuple) else masked_items
    text = _to_text(value)
    lowered = name.strip().lower()
    if lowered in _AUTH_HEADERS:
        scheme, sep, _ = text.strip().partition(" ")
        return f"{scheme} {MASK}" if sep and scheme.isalpha() else MASK
    if lowered in ("cookie", "set-cookie"):
        return _mask_cookies(text)
    if is_sensitive_header(lowered):
        return MASK
    return _mask_text(text, variants)


def mask_headers(headers, secrets: Iterable[str] = ()):
    """Masks credential headers; other values pass through :func:`mask_text`.

    A mapping comes back as a new ``dict`` (same order), a list of pairs as a new
    list of tuples. Names and values come back as ``str`` (bytes are decoded).
    ``Authorization`` keeps its scheme (``Bearer [masked]``); ``Cookie`` and
    ``Set-Cookie`` keep cookie names and Set-Cookie attributes.
    """
    variants = _secret_variants(secrets)
    if headers is None:
        return {}
    if isinstance(headers, Mapping) or hasattr(headers, "items"):
        try:
            items = list(headers.items())
        except Exception:
            return {}
        masked = {}
        for name, value in items:
            text_name = _to_text(name)
            masked[text_name] = _mask_header_value(text_name, value, variants)
        return masked
    masked_pairs = []
    try:
        pairs = list(headers)
    except TypeError:
        return []
    for pair in pairs:
        try:
            name, value = pair
        except (TypeError, ValueError):
            masked_pairs.append(MASK)
            continue
        text_name = _to_text(name)
        masked_pairs.append((text_name, _mask_header_value(text_name, value, variants)))
    return masked_pairs


# ----------------------------------------------------------------------- JSON paths

_Step = tuple  # ("name", str) | ("index", int) | ("wild",) | ("descend", step)


def _parse_bracket(path: str, i: int) -> tuple[_Step, int]:
    end_of = len(path)
    j = i + 1
    while j < end_of and path[j] == " ":
        j += 1
    if j < end_of and path[j] in "'\"":
        quote_char = path[j]
        j += 1
        chars = []
        while j < end_of and path[j] != quote_char:
            if path[j] == "\\" and j + 1 < end_of:
                j += 1
            chars.append(path[j])
            j += 1
        if j >= end_of:
            raise ValueError(f"Unterminated quoted name in JSON path {path!r}.")
        j += 1
        step: _Step = ("name", "".join(chars))
    else:
        close = path.find("]", j)
        if close < 0:
            raise ValueError(f"Missing ']' in JSON path {path!r}.")
        content = path[j:close].strip()
        j = close
        if content == "*":
            step = ("wild",)
        elif re.fullmatch(r"-?\d+", content):
            step = ("index", int(content))
        else:
            raise ValueError(
                f"Unsupported selector [{content}] in JSON path {path!r}: "
                "use [*], [<index>] or ['name']."
            )
    while j < end_of and path[j] == " ":
        j += 1
    if j >= end_of or path[j] != "]":
        raise ValueError(f"Missing ']' in JSON path {path!r}.")
    return step, j + 1


def _parse_name(path: str, i: int) -> tuple[_Step, int]:
    j = i
    while j < len(path) and path[j] not in ".[]":
        j += 1
    name = path[i:j]
    if not name:
        raise ValueError(f"Empty name at position {i} in JSON path {path!r}.")
    return (("wild",) if name == "*" else ("name", name)), j


def compile_json_path(path: str) -> tuple[_Step, ...]:
    """Parses a JSON path into steps; raises ``ValueError`` naming the problem.

    Steps are ``("name", str)``, ``("index", int)``, ``("wild",)`` and
    ``("descend", step)``. Use it to validate configured paths when they are saved.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError("A JSON path must be a non-empty string such as $.customer.email.")
    return _compile_json_path(path.strip())


@lru_cache(maxsize=512)
def _compile_json_path(path: str) -> tuple[_Step, ...]:
    text = path
    if text.startswith("$"):
        i = 1
    elif text.startswith((".", "[")):
        i = 0
    else:
        text = "." + text
        i = 0
    steps: list[_Step] = []
    while i < len(text):
        if text.startswith("..", i):
            i += 2
            if i < len(text) and text[i] == "[":
                inner, i = _parse_bracket(text, i)
            else:
                inner, i = _parse_name(text, i)
            steps.append(("descend", inner))
        elif text[i] == ".":
            step, i = _parse_name(text, i + 1)
            steps.append(step)
        elif text[i] == "[":
            step, i = _parse_bracket(text, i)
            steps.append(step)
        else:
            raise ValueError(f"Unexpected {text[i]!r} at position {i} in JSON path {path!r}.")
    return tuple(steps)


def _step_matches(step: _Step, key: Any, is_list: bool, length: int) -> bool:
    kind = step[0]
    if kind == "wild":
        return True
    if kind == "index":
        if not is_list:
            return False
        index = step[1]
        return key == (index if index >= 0 else length + index)
    if kind == "name":
        if is_list:
            return False
        return key == step[1] if isinstance(key, str) else _to_text(key) == step[1]
    return False


def _advance(paths, states, key, is_list, length):
    """Follows one edge (key or index) from ``states``; returns (new states, matched)."""
    advanced = []
    matched = False
    for path_index, step_index in states:
        steps = paths[path_index]
        step = steps[step_index]
        if step[0] == "descend":
            advanced.append((path_index, step_index))
            hit = _step_matches(step[1], key, is_list, length)
        else:
            hit = _step_matches(step, key, is_list, length)
        if hit:
            if step_index + 1 == len(steps):
                matched = True
            else:
                advanced.append((path_index, step_index + 1))
    return tuple(dict.fromkeys(advanced)), matched


# --------------------------------------------------------------------- mask_payload

_EXIT = object()
_CARD_SIZED_INT = 10**12  # ints this large are read as digits: they may be card numbers
_PLAIN_JSON_MAX_DEPTH = 100


class _NotPlainJson(Exception):
    """The fast walk met something only the general walk handles."""


def _mask_plain_json(
    data: Any,
    text_cache: dict[str, str],
    mask_and_remember,
    keys: dict[str, tuple[str, bool]] | None = None,
) -> Any:
    """:func:`mask_payload` without JSON paths, for plain JSON as ``json.loads`` returns it.

    Recursive, with no per-node bookkeeping: exact ``dict`` (``str`` keys) and ``list``
    containers and ``str``/``int``/``float``/``bool``/``None`` values only, at most
    :data:`_PLAIN_JSON_MAX_DEPTH` deep (which also stops circular references). Anything else
    raises :class:`_NotPlainJson` and the caller walks the data again the general way, so
    the result is always the general walk's. Strings are looked up in ``text_cache`` first;
    ``mask_and_remember`` masks (and caches) the others. ``keys`` remembers each key's masked
    form and sensitivity (a :class:`Masker` keeps it across payloads).
    """
    cached = text_cache.get
    sensitive_key = is_sensitive_key
    card_sized = _CARD_SIZED_INT
    max_depth = _PLAIN_JSON_MAX_DEPTH
    mask = MASK
    if keys is None:
        keys = {}  # key -> (masked key, sensitive)

    def number(value: int) -> Any:
        try:
            digits = str(value)
        except ValueError:  # too many digits: the general walk raises it
            raise _NotPlainJson from None
        masked = cached(digits) or mask_and_remember(digits)
        return value if masked == digits else masked

    def walk_dict(mapping: dict, depth: int) -> dict:
        if depth > max_depth:
            raise _NotPlainJson
        masked: dict = {}
        for key, value in mapping.items():
            known = keys.get(key) if type(key) is str else None
            if known is None:
                if type(key) is not str:
                    raise _NotPlainJson
                known = keys[key] = (cached(key) or mask_and_remember(key), sensitive_key(key))
            new_key, sensitive = known
            if new_key in masked:
                suffix = 2
                while f"{new_key} ({suffix})" in masked:
                    suffix += 1
                new_key = f"{new_key} ({suffix})"
            if sensitive:
                masked[new_key] = None if value is None else mask
                continue
            kind = type(value)
            if kind is str:
                masked[new_key] = cached(value) or mask_and_remember(value)
            elif kind is dict:
                masked[new_key] = walk_dict(value, depth + 1)
            elif kind is list:
                masked[new_key] = walk_list(value, depth + 1)
            elif kind is int:
                is_small = -card_sized < value < card_sized
                masked[new_key] = value if is_small else number(value)
            elif value is None or kind is float or kind is bool:
                masked[new_key] = value
            else:
                raise _NotPlainJson
        return masked

    def walk_list(items: list, depth: int) -> list:
        if depth > max_depth:
            raise _NotPlainJson
        masked: list = []
        append = masked.append
        for value in items:
            kind = type(value)
            if kind is str:
                append(cached(value) or mask_and_remember(value))
            elif kind is dict:
                append(walk_dict(value, depth + 1))
            elif kind is list:
                append(walk_list(value, depth + 1))
            elif kind is int:
                append(value if -card_sized < value < card_sized else number(value))
            elif value is None or kind is float or kind is bool:
                append(value)
            else:
                raise _NotPlainJson
        return masked

    if type(data) is dict:
        return walk_dict(data, 0)
    if type(data) is list:
        return walk_list(data, 0)
    raise _NotPlainJson  # a scalar at the root: nothing to gain


# Keys in JSON text without escapes: no string there holds a quote, so every `"…":` is a key.
_JSON_KEY_RE = re.compile(r'"([^"]*)"\s*:')


def mask_json(data: Any, text: str, secrets: Iterable[str] = ()) -> Any:
    """:func:`mask_payload` of ``data``, which is ``json.loads(text)``; see :meth:`Masker.json`."""
    return Masker(secrets).json(data, text)


class Masker:
    """Masking with one set of secrets, for many payloads (a test run's thousands of
    responses): the secrets' variants are worked out once, and the masked form of each
    short string and key is remembered across payloads, up to CACHE_SIZE of them.

    Every method returns what the module's function of the same job returns.
    """

    CACHE_SIZE = 50_000

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = tuple(secrets or ())
        self.variants = _secret_variants(self.secrets)
        self.texts: dict[str, str] = {}
        self.keys: dict[str, tuple[str, bool]] = {}

    def text(self, value: str) -> str:
        return self.texts.get(value) or self._mask_and_remember(_to_text(value))

    def headers(self, headers):
        return mask_headers(headers, self.secrets)

    def payload(self, data: Any) -> Any:
        """:func:`mask_payload` without JSON paths."""
        if len(self.texts) > self.CACHE_SIZE:
            self.texts.clear()
            self.keys.clear()
        try:
            return _mask_plain_json(data, self.texts, self._mask_and_remember, self.keys)
        except (_NotPlainJson, RecursionError):
            return mask_payload(data, secrets=self.secrets)

    def json(self, data: Any, text: str) -> Any:
        """:func:`mask_payload` of ``data``, which is ``json.loads(text)``.

        When the text itself shows that nothing in it can be masked, ``data`` is returned
        as it is, without walking it. That holds for ASCII text without backslashes (so
        every string and key of ``data`` appears in ``text`` verbatim) in which no secret
        occurs, no detector's pre-test passes (a match in one string is a match in the
        whole text), and no key is a sensitive name. Any other text gets the walk.
        """
        if (
            "\\" in text
            or "@" in text
            or "eyJ" in text
            or not text.isascii()
            or any(variant in text for variant in self.variants)
        ):
            return self.payload(data)
        lowered = text.lower()
        if (
            _ascii_pair_hint(lowered)
            or "authorization" in lowered
            or "bearer" in lowered
            or "basic" in lowered
            or _digit_detectors_may_match(text)
            or any(is_sensitive_key(key) for key in set(_JSON_KEY_RE.findall(text)))
        ):
            return self.payload(data)
        return data

    def _mask_and_remember(self, value: str) -> str:
        masked = _mask_text(value, self.variants)
        if len(value) <= 256:
            self.texts[value] = masked
        return masked


def mask_payload(data: Any, json_paths: Iterable[str] = (), secrets: Iterable[str] = ()) -> Any:
    """Returns a masked copy of parsed JSON; the input is never mutated.

    Values at ``json_paths`` and under sensitive key names are replaced whole by
    :data:`MASK` (``None`` stays ``None``); every other string, dict keys included,
    goes through :func:`mask_text`. Tuples, sets and frozensets keep their type;
    other containers are walked like lists when they are ``list`` subclasses.
    Raises ``ValueError`` only for a malformed JSON path (a configuration error).
    """
    if isinstance(json_paths, str):
        json_paths = (json_paths,)
    paths = tuple(compile_json_path(p) for p in (json_paths or ()))
    variants = _secret_variants(secrets)
    text_cache: dict[str, str] = {}
    advance_cache: dict[tuple, tuple] = {}

    def mask_and_remember(value: str) -> str:
        masked = _mask_text(value, variants)
        if len(value) <= 256:
            text_cache[value] = masked
        return masked

    def masked_text(value: str) -> str:
        return text_cache.get(value) or mask_and_remember(value)

    if not paths:
        try:
            return _mask_plain_json(data, text_cache, mask_and_remember)
        except (_NotPlainJson, RecursionError):
            pass  # the general walk below; strings already masked stay in text_cache

    root_states: tuple = tuple((index, 0) for index in range(len(paths)) if paths[index])
    root_matched = any(not steps for steps in paths)

    holder: list[Any] = [None]
    # Frames: (value, states, matched, container, key); _EXIT frames close a container.
    stack: list[tuple] = [(data, root_states, root_matched, holder, 0)]
    in_progress: set[int] = set()
    conversions: list[tuple] = []  # (container, key, type) to turn lists back into tuples/sets

    while stack:
        frame = stack.pop()
        if frame[0] is _EXIT:
            in_progress.discard(frame[1])
            continue
        value, states, matched, container, slot = frame
        if value is None:
            container[slot] = None
            continue
        if matched:
            container[slot] = MASK
            continue
        if isinstance(value, str):
            container[slot] = masked_text(value)
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            container[slot] = masked_text(_to_text(value))
            continue
        if isinstance(value, bool | float):
            container[slot] = value
            continue
        if isinstance(value, int):
            # A card number sent as a JSON number is still a card number.
            if abs(value) >= _CARD_SIZED_INT:
                digits = str(value)
                masked = masked_text(digits)
                container[slot] = value if masked == digits else masked
            else:
                container[slot] = value
            continue

        if isinstance(value, Mapping):
            if id(value) in in_progress:
                container[slot] = MASK
                continue
            try:
                items = list(value.items())
            except Exception:
                container[slot] = MASK
                continue
            in_progress.add(id(value))
            stack.append((_EXIT, id(value)))
            new_dict: dict = {}
            container[slot] = new_dict
            children = []
            for key, child in items:
                if isinstance(key, bytes | bytearray | memoryview):
                    key = _to_text(key)
                if isinstance(key, str):
                    new_key = masked_text(key)
                    if new_key in new_dict:
                        suffix = 2
                        while f"{new_key} ({suffix})" in new_dict:
                            suffix += 1
                        new_key = f"{new_key} ({suffix})"
                    sensitive = is_sensitive_key(key)
                else:
                    new_key = key
                    sensitive = False
                new_dict[new_key] = None  # keeps the original key order
                if states:
                    try:
                        cache_key = (states, type(key), key)
                        result = advance_cache.get(cache_key)
                    except TypeError:
                        cache_key, result = None, None
                    if result is None:
                        result = _advance(paths, states, key, False, 0)
                        if cache_key is not None:
                            advance_cache[cache_key] = result
                    child_states, child_matched = result
                else:
                    child_states, child_matched = (), False
                children.append(
                    (child, child_states, child_matched or sensitive, new_dict, new_key)
                )
            stack.extend(reversed(children))
            continue

        if isinstance(value, list | tuple | set | frozenset):
            if id(value) in in_progress:
                container[slot] = MASK
                continue
            in_progress.add(id(value))
            stack.append((_EXIT, id(value)))
            elements = list(value)
            new_list: list = [None] * len(elements)
            container[slot] = new_list
            if not isinstance(value, list):
                conversions.append((container, slot, type(value)))
            is_sequence = isinstance(value, list | tuple)
            length = len(elements)
            children = []
            for index, child in enumerate(elements):
                if states and is_sequence:
                    child_states, child_matched = _advance(paths, states, index, True, length)
                else:
                    child_states, child_matched = (), False
                children.append((child, child_states, child_matched, new_list, index))
            stack.extend(reversed(children))
            continue

        # Decimal, datetime, UUID and friends carry no free text worth scanning.
        container[slot] = value

    for container, slot, kind in reversed(conversions):
        items = container[slot]
        try:
            container[slot] = kind(items)
        except TypeError:  # unhashable members cannot go back into a set
            container[slot] = items
    return holder[0]
