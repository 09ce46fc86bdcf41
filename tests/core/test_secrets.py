"""Credentials at rest: Fernet encryption with rotatable keys (apps.core.secrets)."""

import json

import pytest
from cryptography.fernet import Fernet

from apps.core import secrets
from apps.core.secrets import (
    SecretError,
    decrypt_json,
    encrypt_json,
    needs_rotation,
    rotate_token,
)

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
CREDENTIAL = {"username": "svc-erp", "password": "Tr0ub4dor&3-very-secret", "scopes": ["read"]}


@pytest.fixture
def one_key(settings):
    settings.PONTIS_SECRET_KEYS = [OLD_KEY]
    return settings


def test_round_trip(one_key):
    token = encrypt_json(CREDENTIAL)
    assert isinstance(token, str)
    assert decrypt_json(token) == CREDENTIAL


def test_round_trip_unicode_and_nesting(one_key):
    data = {"name": "Zoë Ångström", "nested": {"list": [1, 2.5, None, True]}, "empty": ""}
    assert decrypt_json(encrypt_json(data)) == data


def test_ciphertext_contains_no_plaintext(one_key):
    token = encrypt_json(CREDENTIAL)
    for fragment in ("svc-erp", "Tr0ub4dor", "password", "username", json.dumps(CREDENTIAL)):
        assert fragment not in token
    # Two encryptions of the same value differ (random IV), so equal secrets are not revealed.
    assert encrypt_json(CREDENTIAL) != token


def test_rotation_with_two_keys(settings):
    settings.PONTIS_SECRET_KEYS = [OLD_KEY]
    old_token = encrypt_json(CREDENTIAL)
    unrotated = encrypt_json({"token": "never-rotated"})
    assert not needs_rotation(old_token)

    # A new key is put first: old tokens still decrypt, but need rotation.
    settings.PONTIS_SECRET_KEYS = [NEW_KEY, OLD_KEY]
    assert decrypt_json(old_token) == CREDENTIAL
    assert needs_rotation(old_token)

    rotated = rotate_token(old_token)
    assert rotated != old_token
    assert not needs_rotation(rotated)
    assert decrypt_json(rotated) == CREDENTIAL
    # The rotated token is encrypted with the new key alone.
    assert json.loads(Fernet(NEW_KEY).decrypt(rotated.encode())) == CREDENTIAL

    # New encryptions use the new key.
    fresh = encrypt_json({"a": 1})
    assert not needs_rotation(fresh)

    # The old key is removed: rotated tokens still decrypt, un-rotated ones fail clearly.
    settings.PONTIS_SECRET_KEYS = [NEW_KEY]
    assert decrypt_json(rotated) == CREDENTIAL
    with pytest.raises(SecretError, match="no longer in PONTIS_SECRET_KEYS"):
        decrypt_json(unrotated)
    with pytest.raises(SecretError, match="no configured key"):
        rotate_token(unrotated)
    assert needs_rotation(unrotated)


def test_cache_follows_settings_changes(settings):
    settings.PONTIS_SECRET_KEYS = [OLD_KEY]
    token = encrypt_json({"x": 1})
    settings.PONTIS_SECRET_KEYS = [NEW_KEY]
    with pytest.raises(SecretError):
        decrypt_json(token)
    settings.PONTIS_SECRET_KEYS = [OLD_KEY]
    assert decrypt_json(token) == {"x": 1}


def test_cache_is_reused_while_settings_are_unchanged(one_key):
    encrypt_json({"x": 1})
    first = secrets._cache
    encrypt_json({"x": 2})
    assert secrets._cache is first


@pytest.mark.parametrize("position", [10, 40, 80, -5])
def test_tampered_token_raises(one_key, position):
    token = encrypt_json(CREDENTIAL)
    chars = list(token)
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(SecretError, match="cannot be decrypted"):
        decrypt_json("".join(chars))


@pytest.mark.parametrize("garbage", ["", "not-a-token", "gAAAAA", "💥"])
def test_garbage_token_raises(one_key, garbage):
    with pytest.raises(SecretError):
        decrypt_json(garbage)


def test_error_message_does_not_leak_token(one_key):
    token = encrypt_json(CREDENTIAL)
    with pytest.raises(SecretError) as excinfo:
        decrypt_json(token[:-4] + "AAAA")
    assert token[:20] not in str(excinfo.value)
    assert OLD_KEY not in str(excinfo.value)


def test_no_keys_configured(settings):
    settings.PONTIS_SECRET_KEYS = []
    with pytest.raises(SecretError, match="No encryption key"):
        encrypt_json({"a": 1})


def test_invalid_key_configured(settings):
    settings.PONTIS_SECRET_KEYS = [OLD_KEY, "too-short"]
    with pytest.raises(SecretError, match="entry #2 is not a valid Fernet key"):
        encrypt_json({"a": 1})


@pytest.mark.parametrize("bad", [["a"], "text", {"a": object()}])
def test_encrypt_rejects_non_json_objects(one_key, bad):
    with pytest.raises(SecretError):
        encrypt_json(bad)


def test_decrypt_rejects_non_object_payload(one_key):
    token = Fernet(OLD_KEY).encrypt(b"[1, 2]").decode()
    with pytest.raises(SecretError, match="not a JSON object"):
        decrypt_json(token)
