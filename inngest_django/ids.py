"""Identifiers: ULIDs for events and runs, random tokens for leases."""

from __future__ import annotations

import secrets

from ulid import ULID


def new_id() -> str:
    """Return a new ULID string (time-ordered, 26 characters)."""
    return str(ULID())


def new_token() -> str:
    """Return a random lease token."""
    return secrets.token_hex(16)
