"""Masking of evidence payloads (apps.core.masking): detectors, headers, JSON paths."""

import copy
import json
import random
import sys
import time
from collections import OrderedDict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.masking import (
    MASK,
    compile_json_path,
    iban_valid,
    is_sensitive_key,
    luhn_valid,
    mask_headers,
    mask_payload,
    mask_text,
)

M = MASK


def test_mask_constant():
    assert MASK == "[masked]"


# ------------------------------------------------------------------------ checksums


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "378282246310005",
        "6011111111111117",
        "4222222222222",
        "6304000000000000000",
    ],
)
def test_luhn_valid(number):
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4111111111111112", "1234567812345678", "5500000000000005", "7", "", "²³"]
)
def test_luhn_invalid(number):
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "iban",
    [
        "GB82WEST12345698765432",
        "GB82 WEST 1234 5698 7654 32",
        "NL91ABNA0417164300",
        "DE89370400440532013000",
        "FR1420041010050500013M02606",
        "BE68539007547034",
        "CH9300762011623852957",
        "NO9386011117947",
        "nl91abna0417164300",
    ],
)
def test_iban_valid(iban):
    assert iban_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "GB82WEST12345698765431",
        "NL92ABNA0417164300",
        "DE89370400440532013001",
        "XX00ABCDEFGHIJKLM",
        "NL91ABNA",
        "NL91-ABNA-0417-1643-00",
        "",
    ],
)
def test_iban_invalid(iban):
    assert not iban_valid(iban)


# ------------------------------------------------------------------------ detectors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Card numbers: Luhn-valid digit runs keep their last four digits.
        ("card 4111111111111111 ok", f"card {M}1111 ok"),
        ("card 4111 1111 1111 1111.", f"card {M}1111."),
        ("card 5500-0000-0000-0004", f"card {M}0004"),
        ("amex 378282246310005", f"amex {M}0005"),
        ("visa13 4222222222222", f"visa13 {M}2222"),
        ("nineteen 6304000000000000000", f"nineteen {M}0000"),
        ('{"pan":"6011111111111117"}', f'{{"pan":"{M}1117"}}'),
        ("amex 3782 822463 10005", f"amex {M}0005"),
        ("19: 6304 0000 0000 0000 000", f"19: {M}0000"),
        # Neighbouring numbers are not swallowed into the card.
        ("qty 2 4111 1111 1111 1111", f"qty 2 {M}1111"),
        ("4111 1111 1111 1111 2024", f"{M}1111 2024"),
        ("ids 12 34 4111-1111-1111-1111 56 78", f"ids 12 34 {M}1111 56 78"),
        ("two 4111111111111111 5500000000000004", f"two {M}1111 {M}0004"),
        # E-mail addresses keep their domain.
        ("mail jane.doe@example.com now", f"mail {M}@example.com now"),
        ("a+tag@sub.example.co.uk, b_c@x.io.", f"{M}@sub.example.co.uk, {M}@x.io."),
        ("<Jane.O'Neil@Example.ORG>", f"<Jane.O'{M}@Example.ORG>"),
        # IBANs (valid mod-97 only), compact or grouped, whole value masked.
        ("iban GB82WEST12345698765432", f"iban {M}"),
        ("IBAN: GB82 WEST 1234 5698 7654 32 paid", f"IBAN: {M} paid"),
        ("to NL91ABNA0417164300.", f"to {M}."),
        ("BE68 5390 0754 7034 EUR", f"{M} EUR"),
        ("fr FR1420041010050500013M02606", f"fr {M}"),
        # National ids.
        ("ssn 123-45-6789", f"ssn {M}"),
        ("NINO AB123456C", f"NINO {M}"),
        ("NINO AB 12 34 56 C.", f"NINO {M}."),
        ("BSN: 111222333", f"BSN: {M}"),
        ('{"bsn": "123456782"}', f'{{"bsn": "{M}"}}'),
        # Bearer / Basic / JWT.
        ("Authorization: Bearer abc.def-ghi123", f"Authorization: Bearer {M}"),
        ("use bearer 0123456789abcdef please", f"use bearer {M} please"),
        ("Basic dXNlcjpwYXNz", f"Basic {M}"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig-NATURE_x end",
            f"jwt {M} end",
        ),
        ("alg none eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", f"alg none {M}"),
        ("Authorization: Token xyz789", f"Authorization: Token {M}"),
        # password=... / "password": "..." pairs keep the key.
        ("login?user=jane&password=hunter2&next=/", f"login?user=jane&password={M}&next=/"),
        ('{"password": "hunter2", "user": "j"}', f'{{"password": "{M}", "user": "j"}}'),
        ('{"password": "a\\"b", "n": 1}', f'{{"password": "{M}", "n": 1}}'),
        ("{'client_secret': 'abc'}", f"{{'client_secret': '{M}'}}"),
        ('{\\"api_key\\": \\"k-123\\"}', f'{{\\"api_key\\": \\"{M}\\"}}'),
        ('"access_token" : 12345', f'"access_token" : {M}'),
        ("db_password: s3cr3t\nhost: db", f"db_password: {M}\nhost: db"),
        ("PASSWORD=Secret!", f"PASSWORD={M}"),
        # Credentials in URLs.
        ("dsn https://svc:pa55w0rd@db.example.com/x", f"dsn https://svc:{M}@db.example.com/x"),
    ],
)
def test_detectors_positive(text, expected):
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # Luhn-failing digit runs (order numbers) stay.
        "order 4111111111111112",
        "order 1234567812345678",
        "order 1234 5678 1234 5678",
        "ref 0000000000000000",
        "too long 41111111111111111111111",
        "short 411111111111",
        "counting 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "phone +31 6 1234 5678",
        # Invalid IBAN checksums stay.
        "iban GB82WEST12345698765431",
        "iban NL92ABNA0417164300",
        # Not e-mail addresses.
        "user at example dot com",
        "@mention and foo@bar",
        # Not national ids.
        "ssn 000-12-3456",
        "ssn 666-12-3456",
        "ssn 900-12-3456",
        "ssn 123-00-6789",
        "ssn 123-45-0000",
        "date 2024-01-15",
        "NINO DA123456C",
        "NINO GB123456A",
        "NINO AB123456E",
        "BSN: 123456789",
        "id 111222333 without label",
        # Not tokens.
        "the bearer of this card",
        "Bearer short",
        "Basic information about the account",
        "eyJhbGciOiJIUzI1NiJ9 alone",
        # Plain business text.
        "Customer C-10042 ordered 3 items for 129.95 EUR on 2024-01-15T10:30:00+02:00",
        "password reset requested",
        "",
        "abc",
    ],
)
def test_detectors_negative(text):
    assert mask_text(text) == text


def test_several_detectors_in_one_text():
    text = (
        "Jane <jane@example.com> paid with 4111-1111-1111-1111 from "
        "NL91ABNA0417164300, ssn 123-45-6789, token=abcdef"
    )
    assert mask_text(text) == (
        f"Jane <{M}@example.com> paid with {M}1111 from {M}, ssn {M}, token={M}"
    )


def test_mask_text_is_idempotent():
    text = "mail jane@example.com card 4111111111111111 password=x Bearer abcdefgh12345"
    once = mask_text(text)
    assert mask_text(once) == once


# -------------------------------------------------------------------- known secrets


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("the key is sup3r-s3cret! ok", ["sup3r-s3cret!"], f"the key is {M} ok"),
        ("prefixsup3rs3cretsuffix", ["sup3rs3cret"], f"prefix{M}suffix"),
        ("two: abcd and abcd", ["abcd"], f"two: {M} and {M}"),
        ("short abc stays", ["abc", "", None], "short abc stays"),
        ("q=sup3r%20s3cret%21", ["sup3r s3cret!"], f"q={M}"),
        ("q=sup3r+s3cret", ["sup3r s3cret"], f"q={M}"),
        ('{"v": "pa\\"ss"}', ['pa"ss'], f'{{"v": "{M}"}}'),
        ("longer wins: abcdefgh", ["abcd", "abcdefgh"], f"longer wins: {M}"),
        ("bytes secret ok", [b"secret"], f"bytes {M} ok"),
        ("numeric 123456 pin", [123456], f"numeric {M} pin"),
        ("single string secret hunter22", "hunter22", f"single string secret {M}"),
    ],
)
def test_known_secrets(text, secrets, expected):
    assert mask_text(text, secrets) == expected


# -------------------------------------------------------------------- odd input


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"mail jane@example.com \xff", f"mail {M}@example.com \ufffd"),
        (None, ""),
        (12345, "12345"),
        ("lone surrogate \ud800 jane@example.com", f"lone surrogate \ud800 {M}@example.com"),
        (
            "superscripts ²³ and arabic digits ٤١١١١١١١١١١١١١١١",
            "superscripts ²³ and arabic digits ٤١١١١١١١١١١١١١١١",
        ),
    ],
)
def test_mask_text_odd_input(value, expected):
    assert mask_text(value) == expected


# ----------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Authorization", "Bearer abc.def", f"Bearer {M}"),
        ("authorization", "Basic Zm9vOmJhcg==", f"Basic {M}"),
        ("AUTHORIZATION", "rawtokenwithoutscheme", M),
        ("Proxy-Authorization", "Digest username=x", f"Digest {M}"),
        ("Cookie", "sessionid=abc; csrftoken=def", f"sessionid={M}; csrftoken={M}"),
        ("set-cookie", "sessionid=abc; Path=/; HttpOnly", f"sessionid={M}; Path=/; HttpOnly"),
        (
            "Set-Cookie",
            "a=1; Path=/, b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure",
            f"a={M}; Path=/, b={M}; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure",
        ),
        ("Set-Cookie", "sid=; Max-Age=0", f"sid={M}; Max-Age=0"),
        ("Cookie", "opaque-value-without-name", M),
        ("X-API-Key", "k-123", M),
        ("x-api-key", "k-123", M),
        ("X-Auth-Token", "t", M),
        ("X-Client-Secret", "s", M),
        ("X-Password", "p", M),
        ("Partner-Api-Key", "p", M),
        ("X-ApiKey", "p", M),
        ("X-Session-Id", "s", M),
        ("X-Customer-Email", "jane@example.com", f"{M}@example.com"),
        ("Content-Type", "application/json", "application/json"),
        ("X-Request-Id", "4f1c-22", "4f1c-22"),
    ],
)
def test_mask_headers_by_name(name, value, expected):
    assert mask_headers({name: value}) == {name: expected}
    assert mask_headers([(name, value)]) == [(name, expected)]


def test_mask_headers_keeps_shape_and_order_and_does_not_mutate():
    headers = {"Content-Type": "application/json", "Authorization": "Bearer x", "Accept": "*/*"}
    original = dict(headers)
    masked = mask_headers(headers)
    assert list(masked) == ["Content-Type", "Authorization", "Accept"]
    assert masked["Authorization"] == f"Bearer {M}"
    assert headers == original

    pairs = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Accept", "*/*")]
    assert mask_headers(pairs) == [
        ("Set-Cookie", f"a={M}"),
        ("Set-Cookie", f"b={M}"),
        ("Accept", "*/*"),
    ]


def test_mask_headers_bytes_secrets_and_odd_input():
    assert mask_headers([(b"authorization", b"Bearer abc")]) == [("authorization", f"Bearer {M}")]
    assert mask_headers({"X-Echo": "value sup3rs3cret"}, secrets=["sup3rs3cret"]) == {
        "X-Echo": f"value {M}"
    }
    assert mask_headers({"Cookie": ["a=1", "b=2"]}) == {"Cookie": [f"a={M}", f"b={M}"]}
    assert mask_headers(None) == {}
    assert mask_headers([("only-one",), "x"]) == [M, M]
    assert mask_headers(OrderedDict([("Authorization", "Bearer y")])) == {
        "Authorization": f"Bearer {M}"
    }


# ---------------------------------------------------------------------- JSON paths


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", ()),
        ("$.a.b", (("name", "a"), ("name", "b"))),
        ("$.items[*].card", (("name", "items"), ("wild",), ("name", "card"))),
        ("$..password", (("descend", ("name", "password")),)),
        ("$..items[*].card", (("descend", ("name", "items")), ("wild",), ("name", "card"))),
        ("$['a b'][0].c", (("name", "a b"), ("index", 0), ("name", "c"))),
        ('$["x.y"]', (("name", "x.y"),)),
        ("$.a.*", (("name", "a"), ("wild",))),
        ("$..*", (("descend", ("wild",)),)),
        ("$..[0]", (("descend", ("index", 0)),)),
        ("items[-1]", (("name", "items"), ("index", -1))),
        (" $.a ", (("name", "a"),)),
    ],
)
def test_compile_json_path(path, steps):
    assert compile_json_path(path) == steps


@pytest.mark.parametrize(
    "path", ["", "   ", "$.", "$.a..", "$[", "$[abc]", "$['x'", "$.a]", "$a", None, 5]
)
def test_compile_json_path_rejects_malformed(path):
    with pytest.raises(ValueError):
        compile_json_path(path)


ORDER = {
    "id": "O-1",
    "customer": {"name": "Jane", "phone": "+31 6 1234 5678", "address": {"city": "Utrecht"}},
    "items": [
        {"sku": "A-1", "card": "1234", "meta": {"card": "x"}},
        {"sku": "B-2", "card": "5678"},
    ],
    "payments": [{"auth": {"code": "A1"}}, {"auth": {"code": "B2"}}],
    "notes": None,
}


@pytest.mark.parametrize(
    ("paths", "changes"),
    [
        (["$.id"], {("id",): M}),
        (["$.customer.phone"], {("customer", "phone"): M}),
        (["$.customer"], {("customer",): M}),
        (["$.customer.address.city"], {("customer", "address", "city"): M}),
        (["$['customer']['name']"], {("customer", "name"): M}),
        (["$.items[*].card"], {("items", 0, "card"): M, ("items", 1, "card"): M}),
        (["$.items[1].card"], {("items", 1, "card"): M}),
        (["$.items[-1].sku"], {("items", 1, "sku"): M}),
        (
            ["$..card"],
            {("items", 0, "card"): M, ("items", 1, "card"): M, ("items", 0, "meta", "card"): M},
        ),
        (
            ["$..auth.code"],
            {("payments", 0, "auth", "code"): M, ("payments", 1, "auth", "code"): M},
        ),
        (["$.payments[*].*"], {("payments", 0, "auth"): M, ("payments", 1, "auth"): M}),
        (["$..items[*].sku"], {("items", 0, "sku"): M, ("items", 1, "sku"): M}),
        (["$.notes"], {}),  # None is never masked
        (["$.missing", "$.items[7].card", "$.id.deeper"], {}),
        (["$.customer.name", "$.id"], {("customer", "name"): M, ("id",): M}),
    ],
)
def test_mask_payload_json_paths(paths, changes):
    expected = copy.deepcopy(ORDER)
    for location, value in changes.items():
        target = expected
        for step in location[:-1]:
            target = target[step]
        target[location[-1]] = value
    before = copy.deepcopy(ORDER)
    assert mask_payload(ORDER, paths) == expected
    assert before == ORDER


def test_mask_payload_root_path_masks_everything():
    assert mask_payload({"a": 1}, ["$"]) == M
    assert mask_payload(None, ["$"]) is None


def test_mask_payload_accepts_single_path_string():
    assert mask_payload({"a": "x", "b": "y"}, "$.a") == {"a": M, "b": "y"}


def test_mask_payload_rejects_malformed_path():
    with pytest.raises(ValueError, match="JSON path"):
        mask_payload({"a": 1}, ["$["])


# -------------------------------------------------------------------- by key name


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "db_password",
        "passwd",
        "secret",
        "client_secret",
        "clientSecret",
        "token",
        "access_token",
        "refreshToken",
        "api_key",
        "apiKey",
        "API-KEY",
        "authorization",
        "Authorization",
        "credentials",
        "private_key",
        "ssn",
        "bsn",
        "cvv",
        "pin",
    ],
)
def test_sensitive_keys(key):
    assert is_sensitive_key(key)
    assert mask_payload({key: "value", "other": "v"}) == {key: M, "other": "v"}


@pytest.mark.parametrize("key", ["name", "email", "sku", "businessName", "keyboard", "passenger"])
def test_non_sensitive_keys(key):
    assert not is_sensitive_key(key)


def test_sensitive_keys_mask_whole_values_but_keep_none():
    data = {
        "password": None,
        "token": {"value": "abc", "expires": 3600},
        "secret": ["a", "b"],
        "api_key": 12345,
        "nested": [{"Authorization": "Bearer x"}],
    }
    assert mask_payload(data) == {
        "password": None,
        "token": M,
        "secret": M,
        "api_key": M,
        "nested": [{"Authorization": M}],
    }


# ------------------------------------------------------------------ mask_payload


def test_mask_payload_runs_detectors_and_secrets_on_all_strings():
    data = {
        "customer": {"email": "jane@example.com", "note": "card 4111111111111111"},
        "lines": ["IBAN NL91ABNA0417164300", "call me", 42, 1.5, True, None],
        "echo": "upstream said: s3cr3t-value!",
        "jane@example.com": "key with an e-mail",
    }
    assert mask_payload(data, secrets=["s3cr3t-value!"]) == {
        "customer": {"email": f"{M}@example.com", "note": f"card {M}1111"},
        "lines": [f"IBAN {M}", "call me", 42, 1.5, True, None],
        "echo": f"upstream said: {M}",
        f"{M}@example.com": "key with an e-mail",
    }


def test_mask_payload_masks_card_numbers_sent_as_json_numbers():
    assert mask_payload({"pan": 4111111111111111, "order": 4111111111111112, "n": 7}) == {
        "pan": f"{M}1111",
        "order": 4111111111111112,
        "n": 7,
    }


def test_mask_payload_does_not_mutate_input():
    data = {
        "password": "p",
        "items": [{"card": "4111111111111111", "tags": ("a@b.com", "x")}],
        "set": {"jane@example.com"},
    }
    snapshot = copy.deepcopy(data)
    result = mask_payload(data, ["$.items[*].tags[0]"])
    assert data == snapshot
    assert result is not data
    assert result["items"] is not data["items"]
    assert result["items"][0]["tags"] == (M, "x")
    assert result["set"] == {f"{M}@example.com"}


def test_mask_payload_key_collisions_are_kept_apart():
    data = {"a@example.com": 1, "b@example.com": 2}
    assert mask_payload(data) == {f"{M}@example.com": 1, f"{M}@example.com (2)": 2}


def test_mask_payload_odd_input_never_raises():
    data = {
        1: "jane@example.com",
        None: [b"\xff card 4111111111111111"],
        (1, 2): {"x"},
        b"password": "bytes key",
        "decimal": Decimal("1.50"),
        "object": object,
    }
    result = mask_payload(data, ["$.1"])
    assert result[1] == M
    assert result[None] == [f"\ufffd card {M}1111"]
    assert result[(1, 2)] == {"x"}
    assert result["password"] == M
    assert result["decimal"] == Decimal("1.50")
    assert result["object"] is object


def test_mask_payload_deep_nesting_beyond_recursion_limit():
    depth = sys.getrecursionlimit() * 5
    data = cursor = {}
    for _ in range(depth):
        cursor["child"] = {}
        cursor = cursor["child"]
    cursor["password"] = "deep"
    cursor["email"] = "jane@example.com"
    result = mask_payload(data, ["$..child.email"])
    for _ in range(depth):
        result = result["child"]
    assert result == {"password": M, "email": M}

    nested_list = leaf = []
    for _ in range(depth):
        inner = []
        leaf.append(inner)
        leaf = inner
    leaf.append("jane@example.com")
    masked = mask_payload(nested_list)
    for _ in range(depth):
        masked = masked[0]
    assert masked == [f"{M}@example.com"]


def test_mask_payload_circular_reference_is_cut():
    data = {"name": "loop"}
    data["self"] = data
    assert mask_payload(data) == {"name": "loop", "self": M}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("jane@example.com", f"{M}@example.com"),
        (b"jane@example.com", f"{M}@example.com"),
        (42, 42),
        (None, None),
        ([], []),
        ({}, {}),
    ],
)
def test_mask_payload_scalars_at_root(data, expected):
    assert mask_payload(data) == expected


def _large_body() -> dict:
    rng = random.Random(7)
    results = []
    for index in range(180):
        results.append(
            {
                "id": f"C-{10000 + index}",
                "name": f"Customer {index}",
                "email": f"user{index}@example.com",
                "note": "Delivered to the loading dock, signed by the night shift. " * 2,
                "amount": f"{rng.random() * 1000:.2f}",
                "card": "4111111111111111",
                "created_at": "2024-01-15T10:30:00+02:00",
                "tags": ["priority", "b2b"],
                "count": index,
            }
        )
    return {"count": len(results), "results": results}


def test_mask_payload_is_fast_on_a_50kb_body():
    body = _large_body()
    assert len(json.dumps(body)) >= 50_000
    mask_payload(body, ["$.results[*].card", "$..password"])  # warm caches
    start = time.perf_counter()
    masked = mask_payload(body, ["$.results[*].card", "$..password"], secrets=["s3cr3t!!"])
    elapsed = time.perf_counter() - start
    assert masked["results"][3]["email"] == f"{M}@example.com"
    assert masked["results"][3]["card"] == M
    assert elapsed < 0.25, f"masking a 50 KB body took {elapsed * 1000:.0f} ms"


def test_mask_text_is_linear_on_pathological_text():
    text = "A" * 60_000 + "@x" + "1" * 60_000 + " a.b" * 10_000 + " password" * 2000 + "://"
    start = time.perf_counter()
    mask_text(text)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------ properties

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["jane@example.com", "4111 1111 1111 1111", "Bearer abcdefgh1234"])
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(["password", "items", "card"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)
_secrets = st.text(alphabet="XYZ#%0123456789", min_size=4, max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=_json_values,
    paths=st.lists(st.sampled_from(["$..card", "$.items[*]", "$[0]", "$.*.password"]), max_size=2),
)
def test_mask_payload_never_raises_and_never_mutates(data, paths):
    snapshot = copy.deepcopy(data)
    masked = mask_payload(data, paths)
    assert data == snapshot
    json.dumps(masked)  # still JSON-serialisable


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=40), after=st.text(max_size=40), secret=_secrets)
def test_known_secret_never_survives(before, after, secret):
    masked = mask_text(before + secret + after, [secret])
    assert secret not in masked


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_mask_text_never_raises(text):
    assert isinstance(mask_text(text), str)
