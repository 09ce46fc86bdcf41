"""Credentials at rest: JSON documents encrypted with Fernet, keys rotatable.

``settings.PONTIS_SECRET_KEYS`` is a list of Fernet keys (url-safe base64 strings).
The first key encrypts; every key in the list may decrypt (``MultiFernet``). To
rotate: put a new key first, re-encrypt stored tokens with :func:`rotate_token`
(:func:`needs_rotation` tells which ones), then drop the old key.

Plaintext never leaves this module except as the return value of
:func:`decrypt_json`; error messages never quote a token or a key.
"""

from __future__ import annotations

import binascii
import json
import threading

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = [
    "SecretError",
    "decrypt_json",
    "encrypt_json",
    "needs_rotation",
    "rotate_token",
]


class SecretError(Exception):
    """A secret could not be encrypted, decrypted or rotated."""


_lock = threading.Lock()
_cache: tuple[tuple[str, ...], MultiFernet, Fernet] | None = None


def _configured_keys() -> tuple[str, ...]:
    keys = getattr(settings, "PONTIS_SECRET_KEYS", None) or ()
    if isinstance(keys, str | bytes):
        keys = [keys]
    normalised = []
    for key in keys:
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        key = str(key).strip()
        if key:
            normalised.append(key)
    return tuple(normalised)


def _fernets() -> tuple[MultiFernet, Fernet]:
    """The cached (MultiFernet over all keys, Fernet of the primary key); rebuilt on change."""
    global _cache
    keys = _configured_keys()
    cached = _cache
    if cached is not None and cached[0] == keys:
        return cached[1], cached[2]
    if not keys:
        raise SecretError("No encryption key is configured (settings.PONTIS_SECRET_KEYS is empty).")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError, binascii.Error):
            raise SecretError(
                f"PONTIS_SECRET_KEYS entry #{position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from None
    multi = MultiFernet(fernets)
    with _lock:
        _cache = (keys, multi, fernets[0])
    return multi, fernets[0]


def _token_bytes(token: str | bytes) -> bytes:
    if isinstance(token, bytes):
        return token
    if not isinstance(token, str):
        raise SecretError(f"An encrypted secret must be a string, not {type(token).__name__}.")
    return token.encode("ascii", "replace")


def encrypt_json(data: dict) -> str:
    """Encrypts a JSON-serialisable dict with the primary key; returns the Fernet token."""
    if not isinstance(data, dict):
        raise SecretError(f"Secrets are stored as a JSON object, not {type(data).__name__}.")
    try:
        plaintext = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise SecretError(f"The secret is not JSON-serialisable: {exc}") from None
    multi, _ = _fernets()
    return multi.encrypt(plaintext).decode("ascii")


def decrypt_json(token: str) -> dict:
    """Decrypts a token made by :func:`encrypt_json` with any configured key."""
    multi, _ = _fernets()
    try:
        plaintext = multi.decrypt(_token_bytes(token))
    except InvalidToken:
        raise SecretError(
            "The stored secret cannot be decrypted with any configured key: it was encrypted "
            "with a key that is no longer in PONTIS_SECRET_KEYS, or it was altered. "
            "Re-enter the credential."
        ) from None
    try:
        data = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SecretError("The decrypted secret is not a JSON document.") from None
    if not isinstance(data, dict):
        raise SecretError("The decrypted secret is not a JSON object.")
    return data


def needs_rotation(token: str) -> bool:
    """True when the token was not encrypted with the primary (first) key.

    A token that no configured key can decrypt also needs attention and returns True.
    """
    _, primary = _fernets()
    raw = _token_bytes(token)
    try:
        primary.decrypt(raw)
    except InvalidToken:
        return True
    return False


def rotate_token(token: str) -> str:
    """Re-encrypts a token with the primary key (keeping its original timestamp)."""
    multi, _ = _fernets()
    try:
        return multi.rotate(_token_bytes(token)).decode("ascii")
    except InvalidToken:
        raise SecretError(
            "The stored secret cannot be rotated: no configured key decrypts it "
            "(its key was removed from PONTIS_SECRET_KEYS, or it was altered)."
        ) from None
