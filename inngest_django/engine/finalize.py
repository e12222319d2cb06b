"""finalize(): end a run in one transaction: status, defers, waits, invoke reply, finish events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from django.db import transaction

from .. import clock, signals
from .._interrupts import LeaseLost
from ..defers import DeferBook
from ..enums import RunStatus
from ..events import emit, system_event
from ..functions import CANCELLED_EVENT, FAILED_EVENT, FINISHED_EVENT, INVOKED_EVENT
from ..models import DeferIntent, FunctionRun, HeldMemo, rows
from ..names import ENGINE_DATA_KEY
from ..registry import FunctionRegistry
from ..schemas.events import Event
from ..waits import end_waits, finish_invoked
from .group_commit import after_group_commit
from .logs import log_run

# Runs triggered by these events emit no further finish events, so handlers of finish events
# cannot feed themselves.
_SILENT_TRIGGERS = (FINISHED_EVENT, FAILED_EVENT, CANCELLED_EVENT)


def finalize(
    run: FunctionRun,
    lease_token: str,
    status: RunStatus,
    *,
    output: Any = None,
    error: dict[str, Any] | None = None,
    cancel_reason: str = "",
    defers: DeferBook | None = None,
    may_have_waits: bool = True,
    announce: FinishEvents | None = None,
    scope: Callable[[], AbstractContextManager[Any]] = transaction.atomic,
    memo: HeldMemo | None = None,
) -> bool:
    """End `run` while `lease_token` holds it; return False if the lease was lost first.

    One transaction marks the run finished, writes the defer book's last intents and marks
    every pending one scheduled (the outbox relay starts each exactly once), ends the run's
    waits, answers an invoking parent and, with `announce`, stores the finish events.
    Without a `defers` book (a pass that never began) whatever an earlier pass left pending
    is scheduled: cleanup matters most when a run ends badly. `scope` opens the transaction;
    a pass passes its checkpoint, so its last step commits in this same transaction, and the
    step's `memo`, held back, goes in with the run's UPDATE. A lost lease rolls `scope` back.
    """
    now = clock.now()
    if announce is not None and run.event.name in _SILENT_TRIGGERS:
        announce = None
    try:
        with scope():
            # function.finished (and the memo) go with the run's UPDATE: one statement on
            # PostgreSQL.
            finished = (
                announce.finished(run, status, output=output, error=error) if announce else None
            )
            if not FunctionRun.mark_finished(
                run.pk,
                lease_token,
                status=status,
                now=now,
                output=output,
                error=error,
                cancel_reason=cancel_reason or None,
                then_insert=finished,
                memo=memo,
            ):
                # Nothing of the pass may commit once another worker holds the run.
                raise LeaseLost()
            scheduled = 0
            if defers is not None:
                defers.flush()
            # Known empty on a first pass that deferred nothing: no UPDATE to learn so.
            if defers is None or defers.may_have_pending:
                scheduled = DeferIntent.schedule_pending(run.pk, now=now)
            if may_have_waits:
                end_waits(run.pk, now=now)
            if run.event.name == INVOKED_EVENT:
                finish_invoked(run, status=status, output=output, error=error)
            if finished is not None:
                announce.emit_outcome(run, status, finished.row.data)
    except LeaseLost:
        log_run(logging.WARNING, "Lease lost before finishing", run, "lease_lost")
        return False
    run.status, run.output, run.error, run.finished_at = status, output, error, now

    def announce() -> None:
        signals.run_finished.send(sender=FunctionRun, run=run)
        _log_outcome(run, status, error, scheduled)

    # Inside a group the finish commits with the group, later: announced only then, and
    # (on SQLite) not while this worker holds the one write lock.
    after_group_commit(announce)
    return True


def _log_outcome(
    run: FunctionRun, status: RunStatus, error: dict[str, Any] | None, scheduled: int
) -> None:
    if scheduled:
        log_run(logging.INFO, "Defers scheduled count=%d", run, "defers_scheduled", scheduled)
    if status == RunStatus.COMPLETED:
        log_run(logging.INFO, "Run completed", run, "run_completed")
    elif status == RunStatus.CANCELLED:
        log_run(logging.INFO, "Run cancelled", run, "run_cancelled")
    else:
        log_run(
            logging.WARNING,
            "Run failed error=%s: %s",
            run,
            "run_failed",
            (error or {}).get("name"),
            (error or {}).get("message"),
        )


class FinishEvents:
    """The `inngest/function.*` events a finished run emits, with the events it ran for."""

    def __init__(self, events: Sequence[Event], registry: FunctionRegistry) -> None:
        self.events = list(events)
        self.registry = registry

    def finished(
        self, run: FunctionRun, status: RunStatus, *, output: Any, error: dict[str, Any] | None
    ) -> rows.PendingInsert:
        """Return the INSERT of function.finished for `run`, for its finish to carry."""
        trigger = run.event.to_json()
        data: dict[str, Any] = {
            "function_id": run.function_id,
            "run_id": run.pk,
            "event": trigger,
            "events": [event.to_json() for event in self.events] or [trigger],
            ENGINE_DATA_KEY: {"status": status.value},
        }
        if status == RunStatus.COMPLETED:
            data["result"] = output
        elif status == RunStatus.CANCELLED:
            data["error"] = {"name": "FunctionCancelled", "message": "the run was cancelled"}
        else:
            data["error"] = error
        # Stored for the record, but most projects never listen for it: dispatching it would
        # cost a claim, a read and a transaction per run. Wait keys stay once written, so a
        # project that ever waited for the name keeps dispatching its events.
        heard = self.registry.listens_to(FINISHED_EVENT)
        return system_event(
            FINISHED_EVENT,
            data,
            dispatched_at=None if heard else clock.now(),
            unless_awaited=not heard,
            # The run's events as read, its output as dump_run_output stored it, its error as
            # error_to_json made it storable.
            data_is_stored=True,
        )

    def emit_outcome(self, run: FunctionRun, status: RunStatus, data: dict[str, Any]) -> None:
        """Store function.failed or function.cancelled for `run`, with function.finished's data."""
        if status == RunStatus.FAILED:
            # The run id as event id makes a second failure event for one run a duplicate,
            # except after a manual retry, whose failure is news to on_failure handlers.
            failure = f"{run.pk}:retry-{run.manual_retries}" if run.manual_retries else run.pk
            emit(FAILED_EVENT, data, external_id=failure)
        elif status == RunStatus.CANCELLED:
            emit(CANCELLED_EVENT, data, external_id=run.pk)
