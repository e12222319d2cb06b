"""GroupCommit: several claimed runs' passes committed in one transaction, a savepoint each."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.transaction import Atomic, get_connection

from .. import clock
from ..conf import app_settings
from ..exceptions import FunctionNotFoundError
from ..models import FunctionRun
from ..registry import FunctionRegistry
from .checkpoint import checkpointing

logger = logging.getLogger("inngest_django.worker")

# PostgreSQL keeps 64 subtransactions per transaction in shared memory; past that every
# snapshot in the cluster looks them up on disk. A pass takes one savepoint or a few.
MAX_PASSES = 20

_current = threading.local()


# The window when GROUP_COMMIT_SECONDS is None. On SQLite a group holds the one write lock,
# which every other writer waits for: a shorter one.
DEFAULT_SECONDS = 0.02
SQLITE_DEFAULT_SECONDS = 0.005


def group_commit_seconds() -> float:
    """Return the group window in seconds, 0 when off (it extends checkpointing across runs)."""
    seconds = app_settings.GROUP_COMMIT_SECONDS
    if seconds is None:
        seconds = DEFAULT_SECONDS if connection.vendor != "sqlite" else _sqlite_default()
    return seconds if seconds > 0 and checkpointing() else 0.0


def _sqlite_default() -> float:
    # Without the write queue, SQLite's busy handler retries a waiting writer only after growing
    # sleeps, and a worker holding the lock group after group kept a web request out for seconds.
    return SQLITE_DEFAULT_SECONDS if app_settings.SQLITE_WRITE_QUEUE else 0.0


def shares_groups(run: FunctionRun | None, registry: FunctionRegistry) -> bool:
    """Return True unless `run`'s function keeps its passes out of commit groups."""
    if run is None:
        return True
    try:
        return registry.get(run.function_id).shares_commit_groups
    except FunctionNotFoundError:
        # The pass fails the run as unknown, writing nothing of a handler's.
        return True


def flush_group(*, when_due: bool = False) -> None:
    """Commit this thread's open group now (`when_due`: if its window is spent).

    Only when nothing of the pass is open inside it. Called before work that others must see
    or that must not hold the group's locks: a wait's catch-up look, parallel steps on other
    connections, and (when due) a step's callable, which may run for long.
    """
    group = getattr(_current, "group", None)
    if group is not None and (not when_due or group.due()):
        group.commit_if_outermost()


def after_group_commit(announce: Callable[[], None]) -> None:
    """Call `announce` once what the pass wrote commits: at an open group's COMMIT, else now.

    Never if the group rolls back. Robust: a failing callback is logged, and the thread goes
    on with the runs queued behind the group.
    """
    group = getattr(_current, "group", None)
    blocks = connection.atomic_blocks
    # Only a group that is the connection's outermost transaction commits within its window.
    if group is not None and blocks and blocks[0] is group._atomic:
        transaction.on_commit(announce, robust=True)
    else:
        announce()


def pass_transaction() -> Atomic:
    """Return the atomic block a pass writes in: inside an open group, one kept till its COMMIT."""
    group = getattr(_current, "group", None)
    blocks = connection.atomic_blocks
    if group is not None and group._armed and not blocks:
        group._open()
        blocks = connection.atomic_blocks
    # Only directly inside the group's transaction, which commits within its window: an
    # unreleased savepoint elsewhere would last as long as the caller's transaction.
    if group is not None and blocks and blocks[-1] is group._atomic:
        return KeptSavepoint(None, savepoint=True, durable=False)
    return transaction.atomic()


class KeptSavepoint(Atomic):
    """A nested atomic block whose savepoint, once it succeeds, the enclosing COMMIT releases.

    Django releases a savepoint as its block ends, a round trip per pass that changes nothing
    a group needs: a later ROLLBACK TO an earlier savepoint discards it either way, and the
    group's COMMIT releases them all. A block that fails still rolls back to its savepoint.
    """

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        connection = get_connection(self.using)
        kept = (
            exc_type is None
            and not connection.needs_rollback
            and not connection.closed_in_transaction
            and connection.savepoint_ids
            and connection.savepoint_ids[-1] is not None
        )
        if not kept:
            super().__exit__(exc_type, exc, tb)
            return
        # What Atomic.__exit__ does for a nested block that succeeded, but the RELEASE.
        connection.atomic_blocks.pop()
        connection.savepoint_ids.pop()


class GroupCommit:
    """Hold one transaction open across the passes of one thread, for `seconds` at most.

    Each pass writes through its checkpoint, a savepoint inside the group: a pass that fails
    rolls back its own writes only, and the others commit. A crash before the commit rolls
    back the whole group: its runs run again after their leases, as after a crash between a
    step and its finish, and nothing that committed runs twice.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._atomic: Any = None
        # A group is to open at the next pass's first durable write (see before_pass).
        self._armed = False
        self._opened_at = 0.0
        self._passes = 0

    def __enter__(self) -> GroupCommit:
        _current.group = self
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        _current.group = None
        self._armed = False
        if exc is None:
            self.commit()
        else:
            self._close(exc)

    def before_pass(self, *, more: bool, alone: bool = False) -> None:
        """Commit the group if its window or size is spent; if none is open and `more`, arm one.

        `more`: other runs wait for this thread behind this pass. A lone pass commits alone:
        a group of one would only add a savepoint. An armed group opens at the pass's first
        durable write (pass_transaction), not here: what the pass reads and builds before it
        (its memos, its Context, the handler up to its first step) stays outside the
        transaction, which on SQLite holds the one write lock that every other writer awaits.
        `alone`: the pass must run outside any group (its function does not share them).
        """
        if not self.seconds:
            return
        if alone or self.due() or (self._atomic is not None and self._passes >= MAX_PASSES):
            self.commit()
        if alone:
            self._armed = False
            return
        if self._atomic is None:
            self._armed = more
        else:
            self._passes += 1

    def _open(self) -> None:
        """Open the armed group's transaction, for the pass about to write in it."""
        self._armed = False
        atomic = transaction.atomic()
        try:
            atomic.__enter__()
        except DatabaseError:
            # The database is out of reach: the pass writes alone and meets the outage
            # itself, ending as any pass that lost the database does.
            return
        self._atomic, self._opened_at, self._passes = atomic, clock.monotonic(), 1

    def due(self) -> bool:
        """Return True if a group is open and its window is spent."""
        return self._atomic is not None and clock.monotonic() - self._opened_at >= self.seconds

    def after_pass(self) -> None:
        """Roll the group back if the pass broke it (a database error outside a savepoint)."""
        if self._atomic is not None and connection.needs_rollback:
            logger.warning(
                "Group commit rolled back after a failed pass; its %d runs run again after "
                "their leases",
                self._passes,
                extra={"action": "group_rolled_back", "passes": self._passes},
            )
            self._close(_GroupBroken())

    def commit(self) -> None:
        """Commit the open group, if any; a failed commit is logged and its runs run again."""
        self._close(None)

    def commit_if_outermost(self) -> None:
        """Commit now if the group's transaction is the only one open on this connection."""
        if self._atomic is not None and connection.atomic_blocks == [self._atomic]:
            self.commit()

    def _close(self, exc: BaseException | None) -> None:
        """Commit (`exc` None) or roll back the open group; never raise a database error.

        A raise here would end the thread's turn with claimed runs still queued behind it,
        held in memory and renewed by the heartbeat, and never executed.
        """
        atomic, self._atomic = self._atomic, None
        if atomic is None:
            return
        try:
            if exc is None:
                atomic.__exit__(None, None, None)
            else:
                atomic.__exit__(type(exc), exc, exc.__traceback__)
        except DatabaseError as error:
            logger.warning(
                "Group commit failed error=%s; its runs run again after their leases",
                error.__class__.__name__,
                extra={"action": "group_commit_failed"},
            )


class _GroupBroken(Exception):
    """A pass left the group's transaction unusable; it rolls back."""
