"""DurableSteps: the StepRunner of a pass: each step, sleep, wait, invoke and retry, committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection

from .. import clock
from .._interrupts import (
    DatabaseLost,
    Interrupt,
    LeaseLost,
    RetryScheduled,
    RunCancelled,
    SleepPlanned,
    WaitPlanned,
)
from ..async_steps import Recorded
from ..conf import app_settings
from ..connections import sqlite_immediate
from ..context import Context
from ..defers import DeferBook
from ..enums import RunStatus, StepOp, StepStatus, WaitKind
from ..events import emit, queued_run, save_runs, send
from ..exceptions import InvalidEventError, NonRetriableError
from ..functions import INVOKED_EVENT, Function
from ..models import FunctionRun, HeldMemo, StepRun
from ..names import ENGINE_DATA_KEY
from ..registry import FunctionRegistry, default_registry
from ..retries import next_attempt_at
from ..serialization import dump_step_output, error_to_json, load_value
from ..steps import Memo
from ..waits import after_id, catch_up, invoke_error, new_wait, save_waits
from .attempts import with_failed_attempts
from .checkpoint import Checkpoint, checkpointing
from .group_commit import flush_group, pass_transaction
from .logs import log_run
from .rules import error_for_handler, invoke_refusal, stops_the_process


def _database_lost(raw_connection: Any) -> bool:
    """Return True if the connection a step began on died, as opposed to a statement failing."""
    # atomic() drops a connection whose rollback failed (and a new one may be open by now);
    # a connection that is still the same is asked (one SELECT 1).
    return connection.connection is not raw_connection or not connection.is_usable()


def _lease_until() -> datetime:
    return clock.now() + timedelta(seconds=app_settings.LEASE_SECONDS)


class DurableSteps:
    """The StepRunner of one pass under a lease: every step commits, or the lease was lost."""

    def __init__(
        self,
        run: FunctionRun,
        function: Function,
        lease_token: str,
        registry: FunctionRegistry = default_registry,
        *,
        first_start: bool = False,
    ) -> None:
        self.run = run
        self.first_start = first_start
        self.function = function
        self.lease_token = lease_token
        self.registry = registry
        # SQLite without transaction_mode IMMEDIATE: a write first makes the step take the write
        # lock at once, instead of failing with "database is locked" when it upgrades from read
        # to write mid-step. IMMEDIATE transactions take that lock at BEGIN already.
        self._touch_first = connection.vendor == "sqlite" and not sqlite_immediate(connection)
        self._renewed_at = clock.monotonic()
        self._cancel_checked_at = clock.monotonic()
        self.memos: dict[str, Memo] = {}
        self.ctx: Context | None = None
        self.defers = DeferBook(run.pk, run.function_id)
        self.checkpoint = Checkpoint(enabled=checkpointing(), begin=pass_transaction)
        self._cancel_reason = ""
        finish = function.timeouts.finish_delta if function.timeouts else None
        self._finish_by = run.started_at + finish if finish and run.started_at else None

    # -- the StepRunner protocol -------------------------------------------------------------

    def run_step(
        self,
        step_key: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        output_type: Any,
        op: str = StepOp.RUN,
    ) -> Any:
        self._stop_if_cancelled()
        # An async handler's awaited callable has run already; its Recorded knows since when.
        started = fn.started_at if isinstance(fn, Recorded) else clock.now()
        # Defers made inside the callable belong to its transaction: gone if it rolls back.
        defers_before = self.defers.checkpoint()
        connection.ensure_connection()
        raw_connection = connection.connection
        try:
            # The last step's transaction, held open for a finish that did not come: each step
            # commits it before it begins, so a crash never rolls back more than one step.
            self.checkpoint.commit()
            # A group past its window commits before the callable, which may run for long.
            flush_group(when_due=True)
            # Kept open: the pass's next durable write (the finish, say) commits with it.
            with self.checkpoint.write(keep_open=True):
                if self._touch_first:
                    self._touch()
                result = fn(*args)
                stored = dump_step_output(step_key, result, output_type)
                self.defers.flush()
                touched = self._record_completed(
                    step_key, started, stored, touched=self._touch_first, op=op
                )
            if touched:
                # The step renewed the lease, locking the run's row: held open, it would stall
                # the heartbeat (and the other runs it renews) until the next write.
                self.checkpoint.commit()
        except Interrupt:
            raise
        except BaseException as exc:
            if stops_the_process(exc):
                raise
            # A step's SystemExit, GeneratorExit or own BaseException is the step's failure.
            self.defers.restore(defers_before)
            if isinstance(exc, DatabaseError) and _database_lost(raw_connection):
                # An outage is not the step's failure: counting it would spend a retry.
                raise DatabaseLost() from exc
            self._step_failed(step_key, exc, started, op)
        if self.ctx is not None:
            self.ctx.attempt = 0
        return stored if output_type is None else load_value(stored, output_type)

    def plan_sleep(self, step_key: str, until: datetime) -> None:
        now = clock.now()
        with self.checkpoint.write():
            if until <= now:
                self._touch()
                self._save_step(step_key, StepOp.SLEEP, StepStatus.COMPLETED, now, wake_at=until)
                return
            self.defers.flush()
            self._save_step(step_key, StepOp.SLEEP, StepStatus.SLEEPING, now, wake_at=until)
            if not FunctionRun.mark_sleeping(
                self.run.pk, self.lease_token, until=self._release_until(until)
            ):
                raise LeaseLost()
        log_run(
            logging.INFO,
            "Run sleeping until %s step=%s",
            self.run,
            "run_sleeping",
            until.isoformat(),
            step_key,
        )
        raise SleepPlanned(step_key, until)

    def plan_wait(
        self,
        step_key: str,
        *,
        event: str,
        until: datetime,
        if_exp: str | None,
        match: str | None,
    ) -> None:
        now = clock.now()
        wait = new_wait(
            self.run,
            self.run.event.to_json(),
            kind=WaitKind.EVENT,
            event_name=event,
            step_key=step_key,
            expression=if_exp,
            match=match,
            after_event_id=after_id(),
            expires_at=until,
        )
        with self.checkpoint.write():
            self.defers.flush()
            self._save_step(step_key, StepOp.WAIT_FOR_EVENT, StepStatus.WAITING, now, wake_at=until)
            save_waits([wait])
            self._release_to_wait(until)
        # The look for events that raced the wait must come after the wait is visible to
        # every dispatch: a group holding it uncommitted would let one slip past.
        flush_group()
        catch_up(wait, now=now)
        log_run(
            logging.INFO,
            "Run waiting for event %s until %s step=%s",
            self.run,
            "run_waiting",
            event,
            until.isoformat(),
            step_key,
        )
        raise WaitPlanned(step_key, until, persisted=True)

    def plan_invoke(
        self, step_key: str, *, function_id: str, data: dict[str, Any], until: datetime
    ) -> None:
        now = clock.now()
        reason = invoke_refusal(self.registry, function_id)
        if reason is not None:
            error = invoke_error(f"invoke {step_key!r}: {reason}")
            with self.checkpoint.write():
                self.defers.flush()
                self._touch()
                self._save_step(step_key, StepOp.INVOKE, StepStatus.FAILED, now, error=error)
            raise NonRetriableError(error["message"])
        meta = {"parent_run_id": self.run.pk, "parent_fn_slug": self.run.function_id}
        with self.checkpoint.write():
            self.defers.flush()
            event = emit(INVOKED_EVENT, {**data, ENGINE_DATA_KEY: meta}, dispatched_at=now)
            child = queued_run(function_id, event, now=now)
            child.parent_run_id = self.run.pk
            started = save_runs([child], registry=self.registry)
            skipped = child not in started or child.status == RunStatus.SKIPPED
            if skipped:
                # Rate limited, idempotent, singleton or debounced away: nothing to wait for.
                reason = child.flow_note or "debounced into another run"
                error = invoke_error(f"invoke {step_key!r}: {function_id} did not start: {reason}")
                self._touch()
                self._save_step(step_key, StepOp.INVOKE, StepStatus.FAILED, now, error=error)
            else:
                self._save_step(step_key, StepOp.INVOKE, StepStatus.WAITING, now, wake_at=until)
                wait = new_wait(
                    self.run,
                    {},
                    kind=WaitKind.INVOKE,
                    step_key=step_key,
                    child_run=child,
                    expires_at=until,
                )
                save_waits([wait])
                self._release_to_wait(until)
        if skipped:
            raise NonRetriableError(error["message"])
        log_run(
            logging.INFO,
            "Run invoked %s child_run_id=%s step=%s",
            self.run,
            "run_invoked",
            function_id,
            child.pk,
            step_key,
        )
        raise WaitPlanned(step_key, until, persisted=True)

    def send_events(self, events: Any) -> list[str]:
        try:
            return send(events)
        except InvalidEventError as exc:
            # Sending the same events again cannot make them valid.
            raise NonRetriableError(str(exc)) from exc

    # -- helpers -----------------------------------------------------------------------------

    def _release_until(self, until: datetime) -> datetime:
        """Return when a released run must be looked at again: its wake-up or its deadline."""
        return min(until, self._finish_by) if self._finish_by else until

    def _release_to_wait(self, until: datetime) -> None:
        if not FunctionRun.mark_waiting(
            self.run.pk, self.lease_token, until=self._release_until(until)
        ):
            raise LeaseLost()

    def _check_timeouts(self) -> None:
        """Raise RunCancelled if the run started too late or has run too long."""
        timeouts, run = self.function.timeouts, self.run
        if timeouts is None or run.started_at is None:
            return
        start = timeouts.start_delta
        first_pass = run.attempt == 0 and not self.memos
        if start and first_pass and run.started_at - run.created_at > start:
            self._cancel_reason = f"timeouts.start: not started within {start}"
            raise RunCancelled()
        if self._finish_by and clock.now() >= self._finish_by:
            self._cancel_reason = f"timeouts.finish: not finished within {timeouts.finish_delta}"
            raise RunCancelled()

    @property
    def _attempt(self) -> int:
        """Return the failed attempts of the current step (the ctx's, once the pass started)."""
        return self.ctx.attempt if self.ctx is not None else self.run.attempt

    def _stop_if_cancelled(self) -> None:
        """Raise RunCancelled if someone asked the run to stop; reads at most so often."""
        self._check_timeouts()
        interval = app_settings.CANCEL_CHECK_SECONDS
        if clock.monotonic() - self._cancel_checked_at < interval:
            return
        self._cancel_checked_at = clock.monotonic()
        if FunctionRun.cancel_requested(self.run.pk):
            raise RunCancelled()

    def _queue_for_retry(self, retry_at: datetime, error: dict[str, Any]) -> None:
        """Put the run back in the queue until `retry_at`; raise LeaseLost if another holds it."""
        if not FunctionRun.mark_queued_for_retry(
            self.run.pk, self.lease_token, retry_at=self._release_until(retry_at), error=error
        ):
            raise LeaseLost()

    def _touch(self) -> None:
        if not FunctionRun.touch(self.run.pk, self.lease_token, _lease_until()):
            raise LeaseLost()
        self._renewed_at = clock.monotonic()

    def _record_completed(
        self, step_key: str, started: datetime, stored: Any, *, touched: bool, op: str
    ) -> bool:
        """Write a successful step's memo while the lease holds; return True if it renewed it."""
        attempt = self._attempt
        stale = clock.monotonic() - self._renewed_at > app_settings.LEASE_SECONDS / 3
        if not touched and (attempt or stale or step_key in self.memos):
            # Renewing here too covers passes with no heartbeat (drain) and steps that ran
            # longer than the heartbeat could reach the row (SQLite holds the lock meanwhile).
            self._touch()
            touched = True
        if touched:
            self._save_step(step_key, op, StepStatus.COMPLETED, started, output=stored)
            return True
        # The common case: the memo goes in only while this lease holds the run, so a worker
        # that lost its lease rolls the step's own writes back. Held for the pass's next
        # write: a one-step run's finish stores it in its own statement.
        self.checkpoint.hold(
            HeldMemo(
                run_id=self.run.pk,
                lease_token=self.lease_token,
                step_key=step_key,
                op=op,
                status=StepStatus.COMPLETED,
                output=stored,
                started_at=started,
                finished_at=clock.now(),
            )
        )
        self.memos[step_key] = Memo(status=StepStatus.COMPLETED, output=stored, attempts=1)
        return False

    def _save_step(
        self,
        step_key: str,
        op: str,
        status: str,
        started: datetime,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
        wake_at: datetime | None = None,
    ) -> None:
        previous = self.memos.get(step_key)
        attempts = (previous.attempts if previous else 0) + 1
        now = clock.now()
        # The failed attempts so far ride along in the error JSON, even past a success.
        error = with_failed_attempts(
            previous.error if previous else None,
            error,
            status=status,
            attempt=attempts,
            started_at=started,
            now=now,
        )
        fields = {
            "op": op,
            "status": status,
            "output": output,
            "error": error,
            "attempts": attempts,
            "wake_at": wake_at,
            "started_at": started,
            "finished_at": now if status != StepStatus.SLEEPING else None,
        }
        if previous is None:
            StepRun.objects.create(run_id=self.run.pk, step_key=step_key, **fields)
        else:
            StepRun.objects.filter(run_id=self.run.pk, step_key=step_key).update(**fields)
        self.memos[step_key] = Memo(status=status, output=output, error=error, attempts=attempts)

    def _step_failed(self, step_key: str, exc: BaseException, started: datetime, op: str) -> None:
        """Record a failed attempt; raise RetryScheduled, or the error the handler should see."""
        error = error_to_json(exc)
        attempt = self._attempt
        retry_at = self._retry_at(exc, attempt)
        with self.checkpoint.write():
            self.defers.flush()
            if retry_at is not None:
                self._save_step(step_key, op, StepStatus.ERRORED, started, error=error)
                self._queue_for_retry(retry_at, error)
            else:
                self._touch()
                self._save_step(step_key, op, StepStatus.FAILED, started, error=error)
        if retry_at is not None:
            log_run(
                logging.WARNING,
                "Step failed, retry at %s step=%s attempt=%d error=%s: %s",
                self.run,
                "step_retry_scheduled",
                retry_at.isoformat(),
                step_key,
                attempt,
                error["name"],
                error["message"],
            )
            raise RetryScheduled(step_key, retry_at)
        log_run(
            logging.WARNING,
            "Step failed for good step=%s attempts=%d error=%s: %s",
            self.run,
            "step_failed",
            step_key,
            attempt + 1,
            error["name"],
            error["message"],
        )
        if self.ctx is not None:
            self.ctx.attempt = 0
        raise error_for_handler(exc, error) from exc

    def _retry_at(self, exc: BaseException, attempt: int) -> datetime | None:
        """Return when to try again, or None when the failure is final."""
        return next_attempt_at(
            exc,
            attempt,
            retries=self.function.retries,
            now=clock.now(),
            scale=app_settings.RETRY_BACKOFF_SCALE,
        )
