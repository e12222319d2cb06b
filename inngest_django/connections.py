"""Connection upkeep for long-lived worker threads: drop broken or expired connections only."""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper


def sqlite_immediate(conn: BaseDatabaseWrapper) -> bool:
    """Return True if `conn` is SQLite with transaction_mode IMMEDIATE (write lock at BEGIN)."""
    options = conn.settings_dict.get("OPTIONS", {})
    immediate = str(options.get("transaction_mode", "")).upper() == "IMMEDIATE"
    return conn.vendor == "sqlite" and immediate


def refresh_connections() -> None:
    """Close this thread's connections that broke or outlived CONN_MAX_AGE; keep healthy ones.

    Django's close_old_connections() reads CONN_MAX_AGE = 0 (its default) as "close after every
    request". A worker round or a run pass is not a request: reconnecting for each would cost
    more than the work (about 10 ms a connection on PostgreSQL), so here 0 means "no limit".
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or conn.in_atomic_block:
            continue
        if conn.errors_occurred:
            if not conn.is_usable():
                conn.close()
                continue
            conn.errors_occurred = False
        max_age = conn.settings_dict.get("CONN_MAX_AGE") or 0
        if max_age > 0 and conn.close_at is not None and time.monotonic() >= conn.close_at:
            conn.close()


def open_aliases() -> set[str]:
    """Return the aliases of this thread's open connections."""
    return {conn.alias for conn in connections.all(initialized_only=True) if conn.connection}


def close_opened_since(before: set[str]) -> None:
    """Close this thread's connections opened since `open_aliases()` returned `before`."""
    for conn in connections.all(initialized_only=True):
        if conn.alias not in before and not conn.in_atomic_block:
            conn.close()


def open_connections() -> list[BaseDatabaseWrapper]:
    """Return this thread's connection wrappers, to close them once the thread has ended."""
    return list(connections.all(initialized_only=True))


def close_for_ended_threads(wrappers: Iterable[BaseDatabaseWrapper]) -> None:
    """Close connections that threads which have ended left open."""
    for wrapper in wrappers:
        # Django guards a connection against use from another thread; its owner is gone.
        wrapper.inc_thread_sharing()
        try:
            wrapper.close()
        finally:
            wrapper.dec_thread_sharing()
