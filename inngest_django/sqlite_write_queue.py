"""WriteQueue: SQLite's writers wait on a file lock, woken as the write lock frees.

SQLite retries a writer that found its one write lock taken only after its busy handler has
slept, for 1, 2, 5, ... up to 100 ms a time, and gets it only if it is free at that moment. A
worker that commits back to back leaves it free for microseconds, so a web request's write could
wait a second or more. Here each connection of a process with this app takes an exclusive
`flock` on a file beside the database for as long as SQLite would hold its write lock (from a
write, or an IMMEDIATE `BEGIN`, to the commit or rollback), and a waiter is woken when it is
released. The file lock only orders writers: SQLite's own locks still keep the data safe, so a
writer that cannot take it in time goes on to SQLite's busy handling as before.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

# Statements that take SQLite's write lock: writes, DDL, and BEGIN IMMEDIATE or EXCLUSIVE.
_WRITE = re.compile(
    r"\s*(?:INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|VACUUM|REINDEX|ANALYZE"
    r"|BEGIN\s+(?:IMMEDIATE|EXCLUSIVE))\b",
    re.IGNORECASE,
)
_WITH_WRITE = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def takes_write_lock(sql: str) -> bool:
    """Return True if `sql` makes SQLite take its write lock."""
    if _WRITE.match(sql):
        return True
    return sql.lstrip()[:4].upper() == "WITH" and bool(_WITH_WRITE.search(sql))


def lock_path(conn: BaseDatabaseWrapper) -> str | None:
    """Return the queue's file for `conn`'s database, None for a database in memory."""
    if conn.is_in_memory_db():
        return None
    return f"{conn.settings_dict['NAME']}-writers"


class WriteQueue:
    """One connection's place in the queue: an exclusive flock held while it writes."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.held = False
        # Gave up waiting: the rest of this transaction goes on without the file lock, as a
        # later write waiting for it could wait on a holder that waits for SQLite's lock.
        self.bypassed = False
        # The lock file could not be opened: this connection writes as if there were no queue.
        self.off = False
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        """Take the lock, waiting until it is released; give up after `timeout` seconds."""
        if self.held:
            return
        try:
            fd = self._open()
        except OSError as exc:
            # Writes must not fail for the queue's sake: this connection writes without it.
            logger.warning("SQLite write queue off for %s: %s", self.path, exc)
            self.off = True
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.held = _wait_for(fd, self.timeout)
            self.bypassed = not self.held
            return
        self.held = True

    def release(self) -> None:
        """Let the next writer in, if this connection holds the lock."""
        self.bypassed = False
        if self.held and self._fd is not None:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release the lock and close the file."""
        self.release()
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def _open(self) -> int:
        # A forked child shares the parent's open file, and with it the parent's lock: its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
            self.held = False
        return self._fd


def _wait_for(fd: int, timeout: float) -> bool:
    """Block on the lock in a helper thread, so the wait can end; True if it was taken."""
    # flock() has no timeout. The lock belongs to the open file, not to the thread that took it,
    # so the caller holds it once the helper has it; a helper too late gives it back. The helper
    # works on a duplicate of `fd` (the same open file), which stays valid if `fd` is closed.
    state = threading.Lock()
    taken = threading.Event()
    gave_up = False
    own_fd = os.dup(fd)

    def wait() -> None:
        try:
            fcntl.flock(own_fd, fcntl.LOCK_EX)
            with state:
                if gave_up:
                    fcntl.flock(own_fd, fcntl.LOCK_UN)
                else:
                    taken.set()
        finally:
            os.close(own_fd)

    threading.Thread(target=wait, name="inngest-sqlite-write-queue", daemon=True).start()
    if taken.wait(timeout):
        return True
    with state:
        if taken.is_set():
            return True
        gave_up = True
    return False


def install(conn: BaseDatabaseWrapper, timeout: float) -> None:
    """Make `conn` queue for SQLite's write lock; once per connection wrapper."""
    path = lock_path(conn)
    if path is None or getattr(conn, "_inngest_write_queue", None) is not None:
        return
    queue = WriteQueue(path, timeout)
    conn._inngest_write_queue = queue  # type: ignore[attr-defined]
    # First, so it is the outermost wrapper even if others were added before the connection.
    conn.execute_wrappers.insert(0, _queued_execute(conn, queue))
    # Django's commit, rollback and close end what the lock was taken for.
    for name in ("_commit", "_rollback", "_close"):
        setattr(conn, name, _releasing(getattr(conn, name), queue))
    weakref.finalize(conn, queue.close)


def _queued_execute(conn: BaseDatabaseWrapper, queue: WriteQueue) -> Callable[..., Any]:
    def execute(run: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if queue.held or queue.bypassed or queue.off or not takes_write_lock(sql):
            return run(sql, params, many, context)
        queue.acquire()
        try:
            return run(sql, params, many, context)
        finally:
            # A write in autocommit mode has committed already; in a transaction (or its
            # IMMEDIATE BEGIN) SQLite keeps its lock until the commit or rollback.
            raw = conn.connection
            if raw is None or not raw.in_transaction:
                queue.release()

    return execute


def _releasing(method: Callable[[], Any], queue: WriteQueue) -> Callable[[], Any]:
    def release_after() -> Any:
        try:
            return method()
        finally:
            queue.release()

    return release_after
