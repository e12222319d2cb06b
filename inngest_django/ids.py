"""Identifiers: ULIDs for events and runs, seeded ULIDs for the Event API, lease tokens."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading

from ulid import ULID

_lock = threading.Lock()
_last = 0

_SEED_MILLIS = re.compile(r"[0-9]{1,15}")
_SEED_ENTROPY_BYTES = 10
_MAX_ULID_MILLIS = (1 << 48) - 1


def new_id() -> str:
    """Return a new ULID string, greater than every one this process made before.

    ULIDs made in the same millisecond would otherwise order at random, and ids order events
    and equal-time runs first in, first out.
    """
    global _last
    with _lock:
        value = max(int(ULID()), _last + 1)
        _last = value
    return str(ULID.from_int(value))


def seeded_id(seed: str, index: int) -> str | None:
    """Return the ULID Inngest derives from an event-id seed and an index, or None if malformed.

    `seed` is the `x-inngest-event-id-seed` header, `"<unix_ms>,<base64 of 10 bytes>"`: the
    ULID's time is `unix_ms` and its entropy those bytes, with `index` added to bytes 6..9 read
    as a big-endian unsigned 32-bit number (wrapping), as Inngest's `SeededIDFromString` does.
    """
    millis_text, comma, entropy_text = seed.partition(",")
    if not comma or "," in entropy_text or not _SEED_MILLIS.fullmatch(millis_text):
        return None
    millis = int(millis_text)
    if not 0 < millis <= _MAX_ULID_MILLIS:
        return None
    try:
        entropy = base64.b64decode(entropy_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(entropy) != _SEED_ENTROPY_BYTES:
        return None
    counter = (int.from_bytes(entropy[6:], "big") + index) % (1 << 32)
    raw = millis.to_bytes(6, "big") + entropy[:6] + counter.to_bytes(4, "big")
    return str(ULID.from_bytes(raw))


def new_token() -> str:
    """Return a random lease token."""
    return secrets.token_hex(16)
