"""Event API keys: issue one (shown once), check one in constant time, limit names, revoke one."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from . import clock
from .models import EventKey
from .names import MAX_NAME_LENGTH, matches_nothing

PREFIX_LENGTH = 8
MIN_KEY_LENGTH = 32
# Characters that travel in a URL path unescaped.
_KEY_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


def digest_of(raw_key: str) -> str:
    """Return the SHA-256 hex digest stored for `raw_key`."""
    # Keys are 256 random bits, so a fast hash is enough; a slow one would only cost requests.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def clean_prefixes(prefixes: Iterable[str]) -> list[str]:
    """Return event-name prefixes stripped, without blanks or repeats, in their order.

    Raises:
        ValueError: a prefix is not a string, is longer than an event name may be, or holds a
            NUL, which no event name does.
    """
    cleaned: list[str] = []
    for prefix in prefixes:
        if not isinstance(prefix, str):
            raise ValueError(f"An event name prefix must be a string, not {prefix!r}")
        prefix = prefix.strip()
        if len(prefix) > MAX_NAME_LENGTH:
            raise ValueError(f"An event name prefix is at most {MAX_NAME_LENGTH} characters long")
        if matches_nothing(prefix):
            raise ValueError("An event name prefix must not contain a NUL character")
        if prefix and prefix not in cleaned:
            cleaned.append(prefix)
    return cleaned


def issue_key(
    name: str, *, raw_key: str | None = None, event_prefixes: Iterable[str] = ()
) -> tuple[EventKey, str]:
    """Create a key named `name`; return its row and the raw key, which is never stored.

    `raw_key` registers a key made elsewhere (a secret store, a deployment variable) instead
    of a random one. `event_prefixes` limits the event names the key may send: each must start
    with one of them (none given: any name).

    Raises:
        ValueError: `raw_key` is too short, has characters a URL path would escape, or is
            registered already; or a prefix is not a string or too long.
    """
    prefixes = clean_prefixes(event_prefixes)
    if raw_key is None:
        raw_key = secrets.token_urlsafe(32)
    elif len(raw_key) < MIN_KEY_LENGTH or not _KEY_CHARACTERS.fullmatch(raw_key):
        raise ValueError(
            f"An event key needs at least {MIN_KEY_LENGTH} characters, each a letter, digit, "
            "'-' or '_'"
        )
    elif EventKey.objects.filter(digest=digest_of(raw_key)).exists():
        raise ValueError("This event key is registered already")
    row = EventKey.objects.create(
        name=name,
        prefix=raw_key[:PREFIX_LENGTH],
        digest=digest_of(raw_key),
        event_prefixes=prefixes,
    )
    return row, raw_key


def authenticate(raw_key: str) -> EventKey | None:
    """Return the live key matching `raw_key`, or None if it is unknown or revoked."""
    if not raw_key or matches_nothing(raw_key):
        return None
    wanted = digest_of(raw_key)
    # Look up by the short prefix, then compare whole digests without an early exit.
    candidates = EventKey.objects.filter(prefix=raw_key[:PREFIX_LENGTH], revoked_at__isnull=True)
    for row in candidates:
        if hmac.compare_digest(row.digest, wanted):
            EventKey.objects.filter(pk=row.pk).update(last_used_at=clock.now())
            return row
    return None


def allows_name(key: EventKey, name: str) -> bool:
    """Return True if `key` may send an event called `name`."""
    prefixes = key.event_prefixes
    if not prefixes:
        return True
    # A row edited by hand to hold anything but a list of strings allows nothing, not everything.
    if not isinstance(prefixes, list):
        return False
    return any(isinstance(prefix, str) and name.startswith(prefix) for prefix in prefixes)


def revoke(key_id: int) -> bool:
    """Revoke a key; return False if it does not exist or was revoked already."""
    return bool(
        EventKey.objects.filter(pk=key_id, revoked_at__isnull=True).update(revoked_at=clock.now())
    )
