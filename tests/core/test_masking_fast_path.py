"""The fast paths of apps.core.masking give exactly what the straightforward code gave.

``mask_text`` skips detectors that cannot match and ``mask_payload`` walks plain JSON
recursively (falling back to the general walk for anything else); both are compared with
the implementation they replaced, kept below verbatim (only renamed; it uses the module's
detector patterns, which the fast paths left alone), on generated data full of things to
mask: e-mails, card numbers (Luhn-valid and not), IBANs (valid and not), national ids,
JWTs, bearer and basic credentials, credential pairs, URL credentials, known secrets,
sensitive key names and Unicode look-alikes. bench/masking.py times the two.
"""

import base64
import copy
import json
import string
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.masking import (
    _AUTHORIZATION_RE,
    _BASIC_RE,
    _BEARER_RE,
    _BSN_RE,
    _CARD_RE,
    _EMAIL_RE,
    _ESCAPED_PAIR_RE,
    _IBAN_RE,
    _JWT_RE,
    _NINO_RE,
    _PAIR_HINT_RE,
    _PLAIN_PAIR_RE,
    _QUOTED_PAIR_RE,
    _SSN_RE,
    _TWO_DIGITS_RE,
    _URL_CREDENTIALS_RE,
    MASK,
    Masker,
    _advance,
    _mask_basic,
    _mask_bsn,
    _mask_card,
    _mask_email,
    _mask_escaped_pair,
    _mask_iban,
    _mask_plain_pair,
    _mask_quoted_pair,
    _mask_ssn,
    _mask_value,
    _secret_variants,
    _to_text,
    compile_json_path,
    is_sensitive_key,
    mask_payload,
    mask_text,
)

# ------------------------------------------------- the reference (the code before the fast paths)


def _reference_mask_text(text: str, variants: tuple[str, ...]) -> str:
    for variant in variants:
        if variant in text:
            text = text.replace(variant, MASK)
    if len(text) < 5:
        return text

    if _PAIR_HINT_RE.search(text):
        if "'" in text or '"' in text:
            if "\\" in text:
                text = _ESCAPED_PAIR_RE.sub(_mask_escaped_pair, text)
            text = _QUOTED_PAIR_RE.sub(_mask_quoted_pair, text)
        if "=" in text or ":" in text:
            text = _PLAIN_PAIR_RE.sub(_mask_plain_pair, text)
    has_at = "@" in text
    if has_at and "://" in text:
        text = _URL_CREDENTIALS_RE.sub(_mask_value, text)
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
    if _TWO_DIGITS_RE.search(text):
        text = _IBAN_RE.sub(_mask_iban, text)
        text = _CARD_RE.sub(_mask_card, text)
        if "-" in text:
            text = _SSN_RE.sub(_mask_ssn, text)
        text = _NINO_RE.sub(MASK, text)
        if "bsn" in lowered:
            text = _BSN_RE.sub(_mask_bsn, text)
    return text


_EXIT = object()


def _reference_mask_payload(
    data: Any, json_paths: Iterable[str] = (), secrets: Iterable[str] = ()
) -> Any:
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

    def masked_text(value: str) -> str:
        cached = text_cache.get(value)
        if cached is None:
            cached = _reference_mask_text(value, variants)
            if len(value) <= 256:
                text_cache[value] = cached
        return cached

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
            if abs(value) >= 10**12:
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


def reference_mask_text(text, secrets=()):
    return _reference_mask_text(_to_text(text), _secret_variants(secrets))


def assert_identical(actual, expected):
    """Equal, with the same types and the same dict key order all the way down."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_identical(actual[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert_identical(got, want)
    else:
        assert actual == expected


# ----------------------------------------------------------------------- generators


def _luhn_check_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


@st.composite
def card_numbers(draw) -> str:
    payload = draw(st.text(string.digits, min_size=12, max_size=18))
    digits = payload + _luhn_check_digit(payload)
    if draw(st.booleans()):  # half of them fail the Luhn check
        digits = digits[:-1] + str((int(digits[-1]) + draw(st.integers(1, 9))) % 10)
    separator = draw(st.sampled_from(["", "", " ", "-"]))
    if not separator:
        return digits
    groups = []
    while digits:  # groups of 3 to 6 digits mostly (4-4-4-4, 4-3-3-3, 4-6-5), a few shorter
        size = draw(st.sampled_from([1, 2, 3, 3, 4, 4, 4, 5, 6]))
        groups.append(digits[:size])
        digits = digits[size:]
    return separator.join(groups)


@st.composite
def ibans(draw) -> str:
    country = draw(st.sampled_from(["GB", "NL", "DE", "FR", "BE", "CH", "NO", "XX"]))
    account = draw(st.text(string.ascii_uppercase + string.digits, min_size=11, max_size=30))
    numeric = "".join(str(int(c, 36)) for c in account + country + "00")
    check = 98 - int(numeric) % 97
    if draw(st.booleans()):
        check = (check + draw(st.integers(1, 96))) % 100
    iban = f"{country}{check:02d}{account}"
    if draw(st.booleans()):
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    case = draw(st.sampled_from(["upper", "upper", "lower", "mixed"]))
    if case == "lower":
        return iban.lower()
    if case == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=len(iban), max_size=len(iban)))
        return "".join(c.lower() if flip else c for c, flip in zip(iban, flips, strict=True))
    return iban


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@st.composite
def jwts(draw) -> str:
    head = _b64(json.dumps({"alg": draw(st.sampled_from(["HS256", "none"]))}).encode())
    body = _b64(json.dumps({"sub": draw(st.text(string.ascii_letters, max_size=8))}).encode())
    signature = draw(st.text(string.ascii_letters + string.digits + "-_", max_size=20))
    return f"{head}.{body}.{signature}"


@st.composite
def basic_credentials(draw) -> str:
    user = draw(st.text(string.ascii_letters, min_size=1, max_size=8))
    password = draw(st.text(string.printable.strip(), max_size=8))
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


_words = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=10)
_digits = st.text(string.digits, min_size=1, max_size=20)
_pair_keys = st.sampled_from(
    [
        "password",
        "Passwd",
        "pwd",
        "client_secret",
        "TOKEN",
        "api-key",
        "accessKey",
        "private_key",
        "credentials",
        "ſecret",
        "credentıal",
        "\u212aey",
        "passphrase",
    ]
)
_fragments = st.one_of(
    card_numbers(),
    ibans(),
    jwts(),
    basic_credentials(),
    st.builds("{}@{}.{}".format, _words, _words, st.sampled_from(["com", "io", "co.uk", "x"])),
    st.builds("Bearer {}".format, _words),
    st.builds("bearer {}{}".format, _words, _digits),
    st.builds("Authorization: {} {}".format, st.sampled_from(["Bearer", "Token", ""]), _words),
    st.builds("https://{}:{}@{}/x".format, _words, _words, _words),
    st.builds("{}={}".format, _pair_keys, _words),
    st.builds('"{}": "{}"'.format, _pair_keys, _words),
    st.builds("'{}' : '{}'".format, _pair_keys, _words),
    st.builds('{{\\"{}\\": \\"{}\\"}}'.format, _pair_keys, _words),
    st.builds(
        "{}-{}-{}".format,
        st.from_regex(r"\A[0-9]{3}\Z"),
        st.from_regex(r"\A[0-9]{2}\Z"),
        st.from_regex(r"\A[0-9]{4}\Z"),
    ),
    st.from_regex(r"\A[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-F]\Z"),
    st.builds(
        "{}{}".format,
        st.sampled_from(["BSN: ", "bsn ", '"bsn": "', "BSN#"]),
        st.from_regex(r"\A[0-9]{8,9}\Z"),
    ),
    st.sampled_from(
        [
            "2026-03-04T12:00:00Z",
            "2024-01-15 10:30:00",
            "ORD-000123",
            "SKU-01234",
            "Customer 123456",
            "12 Station Road",
            "1234 AB",
            "Cable, 12 m, grey",
            MASK,
            "GB82WEST12345698765432",
            "4111 1111 1111 1111",
            "jane.doe@example.com",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig",
            "K",
            "ſ",
            "ı",
            "İ",
            "ß",
        ]
    ),
    _digits,
    st.text(string.digits + " -", max_size=30),
    st.text(string.ascii_letters + string.digits + " -@.:/=\"'\\{}#", max_size=30),
    st.text(max_size=15),
)
_separators = st.sampled_from(["", " ", " ", "-", ", ", "\n", '"', ":", "=", "&", "/"])


@st.composite
def texts(draw) -> str:
    parts = draw(st.lists(st.tuples(_separators, _fragments), max_size=5))
    return "".join(separator + fragment for separator, fragment in parts)


_secrets = st.lists(
    st.one_of(
        st.text(string.ascii_letters + string.digits + "!#%&+ ", min_size=4, max_size=12),
        card_numbers(),
        _words,
    ),
    max_size=3,
)
_keys = st.one_of(
    texts(),
    st.sampled_from(
        [
            "password",
            "api_key",
            "Token",
            "ssn",
            "pin",
            "Authorization",
            "email",
            "card",
            "name",
            "a@example.com",
            "b@example.com",
            f"{MASK}@example.com",
            f"{MASK}@example.com (2)",
            "ſecret",
            "keyboard",
            "passenger",
        ]
    ),
)
_scalars = st.one_of(
    texts(),
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**11, max_value=10**20),
    st.integers(min_value=-(10**20), max_value=-(10**11)),
    card_numbers().map(lambda number: int(number.replace(" ", "").replace("-", ""))),
    st.floats(allow_nan=False),
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=40,
)


# ---------------------------------------------------------------------------- tests

_PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(text=texts(), secrets=_secrets)
def test_mask_text_matches_reference(text, secrets):
    assert_identical(mask_text(text, secrets), reference_mask_text(text, secrets))


@_PROPERTY
@given(data=_json, secrets=_secrets)
def test_mask_payload_matches_reference(data, secrets):
    snapshot = copy.deepcopy(data)
    assert_identical(
        mask_payload(data, secrets=secrets), _reference_mask_payload(data, secrets=secrets)
    )
    assert data == snapshot


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=_json,
    paths=st.lists(st.sampled_from(["$..card", "$.*", "$[0]", "$..password", "name"]), max_size=2),
)
def test_mask_payload_with_json_paths_matches_reference(data, paths):
    assert_identical(mask_payload(data, paths), _reference_mask_payload(data, paths))


class _Key(str):
    pass


def _odd_payloads():
    nested = cursor = {}
    for _ in range(150):  # deeper than the fast walk goes
        cursor["child"] = {"email": "jane@example.com"}
        cursor = cursor["child"]
    circular = {"name": "jane@example.com", "items": [1]}
    circular["items"].append(circular)
    return [
        nested,
        circular,
        {"a": ("jane@example.com", 4111111111111111), "b": {"x@y.io"}, "c": frozenset({"k"})},
        {"bytes": b"card 4111111111111111", 1: "jane@example.com", None: [None]},
        {"d": Decimal("1.5"), "o": object, "e": OrderedDict(password="p", email="a@b.io")},
        {_Key("email"): "jane@example.com", "email": "x"},
        [{"password": None}, {"token": {"a": 1}}, True, 2.5, 10**30, -(10**12)],
        {"a@example.com": 1, "b@example.com": 2, f"{MASK}@example.com (2)": 3},
        {"n": 10**5000},
        "jane@example.com",
        4111111111111111,
        None,
    ]


def _outcome(mask, data):
    try:
        return mask(data, secrets=["jane"])
    except ValueError as error:  # an int too long to turn into text
        return ("raised", str(error))


@pytest.mark.parametrize("data", _odd_payloads(), ids=range(len(_odd_payloads())))
def test_mask_payload_odd_input_matches_reference(data):
    assert_identical(_outcome(mask_payload, data), _outcome(_reference_mask_payload, data))


@pytest.mark.parametrize(
    "text",
    [
        "AB123456C",
        "AB 12 34 56 C",
        "ab 12 34 56 c",
        "GB82 WEST 1234 5698 7654 32",
        "gb82west12345698765432",
        "x GB82WEST12345698765432 y",
        "BSN 12345678",
        "bsn: 123456782",
        "123-45-6789",
        "ssn 123-45-6789 and 4111-1111-1111-1111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4222-222-222-222",
        "Gb82WEST12345698765432",
        "gB82 west 1234 5698 7654 32",
        "gB61 west abcd efgh ijk",  # valid, and no other shape than its first four
        "x Gb61westabcdefghijk y",
        "BSN: 10000008",  # valid, eight digits
        "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5",
        "2026-03-04T12:00:00Z",
        "2024-01-15 10:30:00.123456",
        "ſecret=hunter2",
        "credentıals: hunter2",
        "\u212aey=hunter2",
        "İ password=x",
        "Authorization: Bearer abcdefgh12345",
        "AUTHORIZATION=Basic dXNlcjpwYXNz",
        "token=4111111111111111 jane@example.com",
        "https://user:pa55@host.example/x?password=y",
        "٤١١١١١١١١١١١١١١١ and 4111111111111111",
        "Ｇ Ｂ８２ WEST12345698765432",
        "x" * 60 + "1",
    ],
)
def test_mask_text_edge_cases_match_reference(text):
    assert mask_text(text) == reference_mask_text(text)


# ----------------------------------------------------------------------- Masker

_plain_words = st.text(string.ascii_letters + " ,.:;()", max_size=12)
_plain_json = st.recursive(
    st.one_of(_plain_words, st.none(), st.booleans(), st.integers(-999, 999), st.floats(0, 1)),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.one_of(_plain_words, _keys), children, max_size=5)
    ),
    max_leaves=40,
)


@_PROPERTY
@given(data=st.one_of(_json, _plain_json), secrets=_secrets, ascii_only=st.booleans())
def test_masker_json_matches_mask_payload(data, secrets, ascii_only):
    """A Masker's json() (the text read first, the walk skipped when nothing can be masked)
    and its caches give what mask_payload gives, the first time and from the cache."""
    text = json.dumps(data, ensure_ascii=ascii_only)
    parsed = json.loads(text)
    masker = Masker(secrets)
    expected = mask_payload(parsed, secrets=secrets)
    assert_identical(masker.json(parsed, text), expected)
    assert_identical(masker.json(parsed, text), expected)
    assert_identical(masker.payload(parsed), expected)


@_PROPERTY
@given(text=texts(), secrets=_secrets)
def test_masker_text_matches_mask_text(text, secrets):
    masker = Masker(secrets)
    assert masker.text(text) == mask_text(text, secrets)
    assert masker.text(text) == mask_text(text, secrets)


def test_masker_json_returns_clean_payloads_as_they_are():
    text = '{"status": "open", "lines": [{"sku": "SKU-1", "quantity": 2}], "total": 12.5}'
    data = json.loads(text)
    assert Masker(["hunter22"]).json(data, text) is data


@pytest.mark.parametrize(
    "text",
    [
        '{"note": "call jane@example.com"}',
        '{"pin": "1234"}',
        '{"card": "4111 1111 1111 1111"}',
        '{"iban": "GB82 WEST 1234 5698 7654 32"}',
        '{"auth": "Bearer abcdefghijkl"}',
        '{"jwt": "eyJhbGciOi.eyJzdWIiOi.c2ln"}',
        '{"note": "secret=hunter22"}',
        '{"note": "\\u0061@example.com"}',
        '{"note": "uses hunter22 here"}',
        '{"API_KEY": "x"}',
    ],
)
def test_masker_json_walks_whatever_may_hold_something_to_mask(text):
    data = json.loads(text)
    masked = Masker(["hunter22"]).json(data, text)
    assert masked is not data
    assert masked == mask_payload(data, secrets=["hunter22"])
    assert masked != data


def test_masker_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(Masker, "CACHE_SIZE", 10)
    masker = Masker()
    for number in range(50):
        masker.payload({"note": f"order {number}"})
    assert len(masker.texts) <= 12
