"""Checkpoint: a step's transaction left open, so it commits with the pass's next durable write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from django.db import transaction

from .._interrupts import LeaseLost
from ..conf import app_settings
from ..models import HeldMemo


def checkpointing() -> bool:
    """Return whether steps commit with the next write: CHECKPOINT, on unless set False."""
    return app_settings.CHECKPOINT is not False


class Checkpoint:
    """Hold a step's transaction open until the pass's next durable write commits it too.

    A run that ends right after a step then commits the step and its finish together: one
    transaction after the claim instead of two. The next step commits the open one before it
    starts, so only the handler code after a step runs inside it, and a crash there rolls back
    a step whose memo rolls back with it: it runs again, and nothing that committed does.

    The step's memo itself is held back (`hold`) and written first by whatever comes next in
    the transaction: the finish takes it into its own statement, anything else inserts it
    before its own writes. Either way it commits with the step's writes or not at all.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        begin: Callable[[], AbstractContextManager[Any]] = transaction.atomic,
    ) -> None:
        self.enabled = enabled
        # Opens the pass's transaction (or savepoint, inside a group commit).
        self._begin = begin
        self._atomic: Any = None
        self._memo: HeldMemo | None = None

    @contextmanager
    def write(self, *, keep_open: bool = False) -> Iterator[None]:
        """Run a durable write in the open transaction, or a new one; commit unless kept open."""
        if self._atomic is None:
            self._atomic = self._begin()
            self._atomic.__enter__()
        try:
            self._write_memo()
            yield
        except BaseException as exc:
            # The whole transaction goes: a failed write leaves nothing of it to commit.
            self._close(exc)
            raise
        if not (keep_open and self.enabled):
            self.commit()

    @property
    def is_open(self) -> bool:
        """Return True while a transaction is held open (async passes skip a call when not)."""
        return self._atomic is not None

    def hold(self, memo: HeldMemo) -> None:
        """Keep a step's memo for the transaction's next write, or insert it now if none will come.

        Raises LeaseLost if the memo is written now and the lease no longer holds the run.
        """
        if self.enabled and self._atomic is not None:
            self._memo = memo
        else:
            # Closed (parallel steps commit on their own connections) or committing at once.
            _record(memo)

    def take_memo(self) -> HeldMemo | None:
        """Return the memo held back, for a write that stores it in its own statement."""
        memo, self._memo = self._memo, None
        return memo

    def commit(self) -> None:
        """Commit the open transaction, if there is one, with the memo held back."""
        # A lost lease raises with the transaction still open: the pass's rollback ends it.
        self._write_memo()
        self._close(None)

    def rollback(self) -> None:
        """Roll the open transaction back, if there is one: the pass ends without its writes."""
        self._close(_PassEnded())

    def _write_memo(self) -> None:
        memo = self.take_memo()
        if memo is not None:
            _record(memo)

    def _close(self, exc: BaseException | None) -> None:
        if exc is not None:
            self._memo = None
        atomic, self._atomic = self._atomic, None
        if atomic is None:
            return
        if exc is None:
            atomic.__exit__(None, None, None)
        else:
            atomic.__exit__(type(exc), exc, exc.__traceback__)


def _record(memo: HeldMemo) -> None:
    if not memo.record():
        raise LeaseLost()


class _PassEnded(Exception):
    """The pass stopped before its open transaction could commit; it rolls back."""
