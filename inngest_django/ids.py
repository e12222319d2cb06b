"""Identifiers: ULIDs for events and runs, random tokens for leases."""

from __future__ import annotations

import secrets
import threading

from ulid import ULID

_lock = threading.Lock()
_last = 0


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


def new_token() -> str:
    """Return a random lease token."""
    return secrets.token_hex(16)
