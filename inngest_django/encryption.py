"""Encryption at rest: Fernet keys from ENCRYPTION_KEYS, sealed values and keyed hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .conf import app_settings
from .exceptions import DecryptionError

# A sealed JSON value is stored as {"$sealed": "<Fernet token>"}; a sealed text as
# "$sealed:<Fernet token>". Anything else is a value written while encryption was off, and a
# clear value of either shape is stored escaped: ESCAPE_MARK and its JSON (or text) in place of
# the token. Fernet tokens are URL-safe base64, so no token starts with the mark.
SEALED_KEY = "$sealed"
SEALED_PREFIX = "$sealed:"
ESCAPE_MARK = ":"
HASH_PREFIX = "hmac-sha256:"
_HASH_CONTEXT = b"inngest-django key hash"


@dataclass(frozen=True)
class Keyring:
    """The configured keys: a MultiFernet (first encrypts, all decrypt) and their hash keys."""

    fernet: Any
    primary: Any
    hash_keys: tuple[bytes, ...]


@lru_cache(maxsize=4)
def _keyring(keys: tuple[str, ...]) -> Keyring:
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError:  # pragma: no cover - the settings check reports it first
        raise ImproperlyConfigured(
            "INNGEST_DJANGO['ENCRYPTION_KEYS'] is set but the cryptography package is not "
            "installed; pip install 'inngest-django[encryption]'"
        ) from None
    fernets = [Fernet(key.encode("ascii")) for key in keys]
    # A hash key of its own per Fernet key, so a keyed hash reveals nothing about the key.
    hash_keys = tuple(
        hmac.new(base64.urlsafe_b64decode(key), _HASH_CONTEXT, hashlib.sha256).digest()
        for key in keys
    )
    return Keyring(fernet=MultiFernet(fernets), primary=fernets[0], hash_keys=hash_keys)


def enabled() -> bool:
    """Return True if ENCRYPTION_KEYS is set: payloads are sealed and keys hashed."""
    return bool(app_settings.ENCRYPTION_KEYS)


def keyring() -> Keyring:
    """Return the configured keys; ImproperlyConfigured if encryption is off."""
    keys = app_settings.ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured(
            "encryption at rest is off: INNGEST_DJANGO['ENCRYPTION_KEYS'] is empty"
        )
    return _keyring(tuple(keys))


def encrypt(text: str) -> str:
    """Return a Fernet token of `text` under the first key."""
    return keyring().fernet.encrypt(text.encode()).decode("ascii")


def decrypt(token: str, *, where: str) -> str:
    """Return the text of a token under any configured key; DecryptionError if none fits."""
    if not app_settings.ENCRYPTION_KEYS:
        raise DecryptionError(
            where, reason="the value is sealed but ENCRYPTION_KEYS is empty (encryption is off)"
        )
    from cryptography.fernet import InvalidToken

    try:
        return keyring().fernet.decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError, TypeError):
        raise DecryptionError(where) from None


def is_current(token: str) -> bool:
    """Return True if `token` was sealed with the first (newest) key."""
    from cryptography.fernet import InvalidToken

    try:
        keyring().primary.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError, ValueError, TypeError):
        return False
    return True


def is_sealed(stored: Any) -> bool:
    """Return True if a stored JSON value is in the sealed shape."""
    return isinstance(stored, dict) and len(stored) == 1 and isinstance(stored.get(SEALED_KEY), str)


def _compact(value: Any, encoder: type[json.JSONEncoder] | None) -> str:
    return json.dumps(value, cls=encoder, separators=(",", ":"), ensure_ascii=False)


def seal(value: Any, *, encoder: type[json.JSONEncoder] | None = None) -> dict[str, str]:
    """Return the sealed shape of a JSON value: its compact JSON, encrypted."""
    return {SEALED_KEY: encrypt(_compact(value, encoder))}


def to_stored(value: Any, *, encoder: type[json.JSONEncoder] | None = None) -> Any:
    """Return a JSON value as stored: sealed while encryption is on, else clear or escaped.

    None (SQL NULL) stays None. A clear value in the sealed shape is escaped, so that it reads
    back as itself rather than as a value to decrypt.
    """
    if value is None:
        return None
    if enabled():
        return seal(value, encoder=encoder)
    if is_sealed(value):
        return {SEALED_KEY: ESCAPE_MARK + _compact(value, encoder)}
    return value


def unseal(stored: Any, *, where: str, decoder: type[json.JSONDecoder] | None = None) -> Any:
    """Return the JSON value behind a stored one; clear values are returned as they are."""
    if not is_sealed(stored):
        return stored
    token = stored[SEALED_KEY]
    if token.startswith(ESCAPE_MARK):
        return json.loads(token[len(ESCAPE_MARK) :], cls=decoder)
    return json.loads(decrypt(token, where=where), cls=decoder)


def seal_text(text: str) -> str:
    """Return a text sealed as "$sealed:<token>"; the empty text stays empty."""
    return SEALED_PREFIX + encrypt(text) if text else text


def text_to_stored(text: str) -> str:
    """Return a text as stored: sealed while encryption is on, else clear or escaped."""
    if not text:
        return text
    if enabled():
        return seal_text(text)
    if text.startswith(SEALED_PREFIX):
        return SEALED_PREFIX + ESCAPE_MARK + text
    return text


def unseal_text(stored: str, *, where: str) -> str:
    """Return the text behind a stored one; clear texts are returned as they are."""
    if not stored.startswith(SEALED_PREFIX):
        return stored
    token = stored[len(SEALED_PREFIX) :]
    if token.startswith(ESCAPE_MARK):
        return token[len(ESCAPE_MARK) :]
    return decrypt(token, where=where)


def keyed_hash(text: str, *, hash_key: bytes | None = None) -> str:
    """Return HMAC-SHA256 of `text` under the first key's hash key, as "hmac-sha256:<hex>"."""
    key = hash_key if hash_key is not None else keyring().hash_keys[0]
    return HASH_PREFIX + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def keyed_hashes(text: str) -> list[str]:
    """Return the keyed hash of `text` under every configured key, the first key's first."""
    return [keyed_hash(text, hash_key=key) for key in keyring().hash_keys]


def hash_if_enabled(text: str) -> str:
    """Return the keyed hash of a flow-control or match key when encryption is on."""
    if not text or not enabled():
        return text
    return keyed_hash(text)
