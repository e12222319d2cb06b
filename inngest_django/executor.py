"""execute_run: call a claimed run's handler, persisting each step, sleep, retry and outcome."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, models, transaction
from pydantic import ValidationError

from . import clock, signals
from ._interrupts import (
    DatabaseLost,
    Interrupt,
    LeaseLost,
    RetryScheduled,
    RunCancelled,
    SleepPlanned,
    WaitPlanned,
)
from .conf import app_settings
from .connections import sqlite_immediate
from .context import Context, ReplayAwareLogger
from .defers import DeferBook, split_event_data, validate_received
from .enums import RunStatus, StepOp, StepStatus, WaitKind
from .events import emit, new_run, save_runs, send
from .exceptions import (
    DecryptionError,
    FunctionNotFoundError,
    InvalidEventError,
    NonRetriableError,
    RetryAfterError,
    StepError,
)
from .functions import (
    CANCELLED_EVENT,
    FAILED_EVENT,
    FINISHED_EVENT,
    INVOKED_EVENT,
    DeferredFunction,
    Function,
)
from .models import DeferIntent, FunctionRun, RunEvent, StepRun, WaitKey
from .registry import FunctionRegistry, default_registry
from .retries import backoff_delay, retry_after_at
from .schemas.defers import Parent
from .schemas.events import Event
from .serialization import (
    dump_run_output,
    dump_step_output,
    error_to_json,
    load_value,
)
from .steps import Memo, Step
from .waits import (
    after_id,
    catch_up,
    end_waits,
    expire,
    finish_invoked,
    invoke_error,
    new_wait,
    save_waits,
)

logger = logging.getLogger(__name__)
user_logger = logging.getLogger("inngest_django.functions")

# Runs triggered by these events emit no further finish events, so handlers of finish events
# cannot feed themselves.
_SILENT_TRIGGERS = (FINISHED_EVENT, FAILED_EVENT, CANCELLED_EVENT)


def _database_lost(raw_connection: Any) -> bool:
    """Return True if the connection a step began on died, as opposed to a statement failing."""
    # atomic() drops a connection whose rollback failed (and a new one may be open by now);
    # a connection that is still the same is asked (one SELECT 1).
    return connection.connection is not raw_connection or not connection.is_usable()


def _lease_until() -> datetime:
    return clock.now() + timedelta(seconds=app_settings.LEASE_SECONDS)


def _stops_the_process(exc: BaseException) -> bool:
    """Return True for a KeyboardInterrupt that may be a real Ctrl-C, which must stop drain()."""
    # Python turns SIGINT into KeyboardInterrupt only in the main thread, and only while its
    # default handler is installed: run_inngest_worker runs handlers in pool threads and handles
    # SIGINT itself, and django-q's workers ignore it. drain() runs handlers in its caller's.
    return (
        isinstance(exc, KeyboardInterrupt)
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


def _readable(event: Event) -> Event:
    """Return `event`, or raise NonRetriableError if its stored data is not a JSON object."""
    if not isinstance(event.data, dict):
        raise NonRetriableError(
            f"event {event.name!r} ({event.id}) data is a {type(event.data).__name__}, not a "
            "JSON object; was its row changed outside inngest_django?"
        )
    return event


def _log(level: int, message: str, run: FunctionRun, action: str, *args: Any) -> None:
    logger.log(
        level,
        message + " run_id=%s function_id=%s",
        *args,
        run.pk,
        run.function_id,
        extra={"run_id": run.pk, "function_id": run.function_id, "action": action},
    )


class RunPass:
    """One pass of one run's handler under a lease: the StepRunner the Step tools call."""

    def __init__(
        self,
        run: FunctionRun,
        function: Function,
        lease_token: str,
        registry: FunctionRegistry = default_registry,
    ) -> None:
        self.run = run
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
        started = clock.now()
        # Defers made inside the callable belong to its transaction: gone if it rolls back.
        checkpoint = self.defers.checkpoint()
        connection.ensure_connection()
        raw_connection = connection.connection
        try:
            with transaction.atomic():
                if self._touch_first:
                    self._touch()
                result = fn(*args)
                stored = dump_step_output(step_key, result, output_type)
                self.defers.flush()
                self._record_completed(step_key, started, stored, touched=self._touch_first, op=op)
        except Interrupt:
            raise
        except BaseException as exc:
            if _stops_the_process(exc):
                raise
            # A step's SystemExit, GeneratorExit or own BaseException is the step's failure.
            self.defers.restore(checkpoint)
            if isinstance(exc, DatabaseError) and _database_lost(raw_connection):
                # An outage is not the step's failure: counting it would spend a retry.
                raise DatabaseLost() from exc
            self._step_failed(step_key, exc, started, op)
        if self.ctx is not None:
            self.ctx.attempt = 0
        return stored if output_type is None else load_value(stored, output_type)

    def plan_sleep(self, step_key: str, until: datetime) -> None:
        now = clock.now()
        with transaction.atomic():
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
        _log(
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
        with transaction.atomic():
            self.defers.flush()
            self._save_step(step_key, StepOp.WAIT_FOR_EVENT, StepStatus.WAITING, now, wake_at=until)
            save_waits([wait])
            self._release_to_wait(until)
        catch_up(wait, now=now)
        _log(
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
        target = self.registry.get(function_id) if function_id in self.registry else None
        if target is None or isinstance(target, DeferredFunction):
            reason = (
                f"no registered function has the id {function_id!r}"
                if target is None
                else f"{function_id!r} is a deferred function, started only by ctx.defer"
            )
            error = invoke_error(f"invoke {step_key!r}: {reason}")
            with transaction.atomic():
                self.defers.flush()
                self._touch()
                self._save_step(step_key, StepOp.INVOKE, StepStatus.FAILED, now, error=error)
            raise NonRetriableError(error["message"])
        meta = {"parent_run_id": self.run.pk, "parent_fn_slug": self.run.function_id}
        with transaction.atomic():
            self.defers.flush()
            event = emit(INVOKED_EVENT, {**data, "_inngest": meta}, dispatched_at=now)
            child = new_run(target, event, now)
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
        _log(
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

    def _touch(self) -> None:
        if not FunctionRun.touch(self.run.pk, self.lease_token, _lease_until()):
            raise LeaseLost()
        self._renewed_at = clock.monotonic()

    def _record_completed(
        self, step_key: str, started: datetime, stored: Any, *, touched: bool, op: str
    ) -> None:
        """Write the memo of a successful step, in its transaction, only while the lease holds."""
        attempt = self._attempt
        stale = clock.monotonic() - self._renewed_at > app_settings.LEASE_SECONDS / 3
        if not touched and (attempt or stale or step_key in self.memos):
            # Renewing here too covers passes with no heartbeat (drain) and steps that ran
            # longer than the heartbeat could reach the row (SQLite holds the lock meanwhile).
            self._touch()
            touched = True
        if touched:
            self._save_step(step_key, op, StepStatus.COMPLETED, started, output=stored)
            return
        # The common case: one statement that inserts the memo only while this lease holds
        # the run, so a worker that lost its lease rolls the step's own writes back here.
        finished = clock.now()
        if not StepRun.record_if_held(
            run_id=self.run.pk,
            lease_token=self.lease_token,
            step_key=step_key,
            op=op,
            status=StepStatus.COMPLETED,
            output=stored,
            started_at=started,
            finished_at=finished,
        ):
            raise LeaseLost()
        self.memos[step_key] = Memo(status=StepStatus.COMPLETED, output=stored, attempts=1)

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
        fields = {
            "op": op,
            "status": status,
            "output": output,
            "error": error,
            "attempts": attempts,
            "wake_at": wake_at,
            "started_at": started,
            "finished_at": clock.now() if status != StepStatus.SLEEPING else None,
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
        with transaction.atomic():
            self.defers.flush()
            if retry_at is not None:
                self._save_step(step_key, op, StepStatus.ERRORED, started, error=error)
                if not FunctionRun.mark_queued_for_retry(
                    self.run.pk,
                    self.lease_token,
                    retry_at=self._release_until(retry_at),
                    error=error,
                ):
                    raise LeaseLost()
            else:
                self._touch()
                self._save_step(step_key, op, StepStatus.FAILED, started, error=error)
        if retry_at is not None:
            _log(
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
        _log(
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
        if isinstance(exc, NonRetriableError | StepError):
            raise exc
        raise StepError(error["message"], error["name"], error["stack"]) from exc

    def _retry_at(self, exc: BaseException, attempt: int) -> datetime | None:
        """Return when to try again, or None when the failure is final."""
        if isinstance(exc, NonRetriableError | StepError) or attempt >= self.function.retries:
            return None
        now = clock.now()
        if isinstance(exc, RetryAfterError):
            return retry_after_at(exc.retry_after, now)
        return now + backoff_delay(attempt, scale=app_settings.RETRY_BACKOFF_SCALE)

    # -- the pass ----------------------------------------------------------------------------

    def execute(self) -> None:
        """Call the handler once, from the top, and persist how the pass ended."""
        run = self.run
        steps = self._load_steps()
        if run.attempt == 0 and not steps:
            # Intents are written only with a step row, a retry (attempt + 1) or the finish.
            self.defers.assume_nothing_stored()
        self._complete_due_sleeps(steps)
        if self._expire_due_waits(steps):
            steps = self._load_steps()
        self.memos = {
            step.step_key: Memo(step.status, step.output, step.error, step.attempts, step.wake_at)
            for step in steps
        }
        if run.cancel_requested_at is not None:
            self._cancel_reason = run.cancel_reason
            self._finish(RunStatus.CANCELLED)
            return
        try:
            self._check_timeouts()
        except RunCancelled:
            self._finish(RunStatus.CANCELLED)
            return
        step = Step(self.memos, self, max_steps=app_settings.MAX_STEPS_PER_RUN)
        try:
            event, events, parents = self._handler_events()
        except (NonRetriableError, ValidationError) as exc:
            # Retrying cannot change the stored data, so the run fails at once.
            self._finish(RunStatus.FAILED, error=error_to_json(exc))
            return
        self.ctx = Context(
            event=event,
            events=events,
            run_id=run.pk,
            step=step,
            logger=ReplayAwareLogger(user_logger, run.pk, step),
            attempt=run.attempt,
            function_id=run.function_id,
            parents=parents,
            defers=self.defers,
        )
        _log(logging.INFO, "Run started attempt=%d", run, "run_started", run.attempt)
        signals.run_started.send(sender=FunctionRun, run=run)
        try:
            result = self.function.handler(self.ctx)
        except LeaseLost:
            _log(logging.WARNING, "Lease lost; another worker has the run", run, "lease_lost")
            return
        except DatabaseLost:
            _log(
                logging.WARNING,
                "Database connection lost in a step; the run resumes after its lease",
                run,
                "database_lost",
            )
            return
        except RunCancelled:
            self._finish(RunStatus.CANCELLED)
            return
        except WaitPlanned as wait:
            if not wait.persisted:
                self._wait_again(wait)
            return
        except Interrupt:
            return
        except BaseException as exc:
            if _stops_the_process(exc):
                raise
            # SystemExit, GeneratorExit or a user's own BaseException fail the handler like any
            # error: escaping, they would leave the run to crash again after every lease.
            self._handler_failed(exc)
            return
        finally:
            self.defers.close()
        try:
            output = dump_run_output(result, self.function.output_type)
        except NonRetriableError as exc:
            self._finish(RunStatus.FAILED, error=error_to_json(exc))
            return
        self._finish(RunStatus.COMPLETED, output=output)

    def _handler_events(self) -> tuple[Event, list[Event], list[Parent]]:
        """Return the trigger event, the run's events and parents, as the handler sees them."""
        run = self.run
        event = _readable(Event.model_validate(run.event.to_json()))
        parents = []
        if event.name == INVOKED_EVENT:
            data = {k: v for k, v in event.data.items() if k != "_inngest"}
            event = event.model_copy(update={"data": data})
        if isinstance(self.function, DeferredFunction):
            payload, parent = split_event_data(event.data)
            data = validate_received(self.function, payload)
            event, parents = event.model_copy(update={"data": data}), [parent]
        events = [event]
        if run.batch_size:
            rows = RunEvent.objects.filter(run_id=run.pk).select_related("event")
            events = [_readable(Event.model_validate(row.event.to_json())) for row in rows]
            event = events[0]
        return event, events, parents

    def _load_steps(self) -> list[StepRun]:
        return list(
            StepRun.objects.filter(run_id=self.run.pk).only(
                "step_key", "status", "output", "error", "attempts", "wake_at"
            )
        )

    def _expire_due_waits(self, steps: list[StepRun]) -> bool:
        """Time out waits past their timeout; return True if any step row changed."""
        now = clock.now()
        due = [
            s for s in steps if s.status == StepStatus.WAITING and s.wake_at and s.wake_at <= now
        ]
        for step in due:
            with transaction.atomic():
                expire(self.run.pk, step.step_key, now=now)
        # Reload even when another worker resolved a wait first: its row changed too.
        return bool(due)

    def _wait_again(self, wait: WaitPlanned) -> None:
        """Put a run whose replay reached a still-pending wait back to waiting."""
        until = wait.until or clock.now()
        with transaction.atomic():
            self.defers.flush()
            if not FunctionRun.mark_waiting(
                self.run.pk, self.lease_token, until=self._release_until(until)
            ):
                _log(logging.WARNING, "Lease lost before waiting again", self.run, "lease_lost")

    def _complete_due_sleeps(self, steps: list[StepRun]) -> None:
        """Mark sleeps whose time has come as completed, so the handler replays past them."""
        now = clock.now()
        due = [
            s for s in steps if s.status == StepStatus.SLEEPING and s.wake_at and s.wake_at <= now
        ]
        if not due:
            return
        StepRun.objects.filter(pk__in=[s.pk for s in due]).update(
            status=StepStatus.COMPLETED, finished_at=now
        )
        for step in due:
            step.status = StepStatus.COMPLETED

    def _handler_failed(self, exc: BaseException) -> None:
        attempt = self._attempt
        retry_at = self._retry_at(exc, attempt)
        error = error_to_json(exc)
        if retry_at is None:
            self._finish(RunStatus.FAILED, error=error)
            return
        with transaction.atomic():
            if not FunctionRun.mark_queued_for_retry(
                self.run.pk, self.lease_token, retry_at=self._release_until(retry_at), error=error
            ):
                return
            self.defers.flush()
        _log(
            logging.WARNING,
            "Run failed, retry at %s attempt=%d error=%s: %s",
            self.run,
            "run_retry_scheduled",
            retry_at.isoformat(),
            attempt,
            error["name"],
            error["message"],
        )

    def _finish(
        self, status: RunStatus, *, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        """Finalize in one transaction: status, outbox rows for pending defers, finish events."""
        run, now = self.run, clock.now()
        with transaction.atomic():
            if not FunctionRun.mark_finished(
                run.pk,
                self.lease_token,
                status=status,
                now=now,
                output=output,
                error=error,
                cancel_reason=self._cancel_reason or None,
            ):
                _log(logging.WARNING, "Lease lost before finishing", run, "lease_lost")
                return
            self.defers.flush()
            # Known empty on a first pass that deferred nothing: no UPDATE to learn so.
            pending = self.defers.may_have_pending
            scheduled = DeferIntent.schedule_pending(run.pk, now=now) if pending else 0
            if self.function.cancel or status != RunStatus.COMPLETED or self._has_waited():
                end_waits(run.pk, now=now)
            if run.event.name == INVOKED_EVENT:
                finish_invoked(run, status=status, output=output, error=error)
            if run.event.name not in _SILENT_TRIGGERS:
                self._emit_finish_events(status, output, error)
        run.status, run.output, run.error, run.finished_at = status, output, error, now
        signals.run_finished.send(sender=FunctionRun, run=run)
        if scheduled:
            _log(logging.INFO, "Defers scheduled count=%d", run, "defers_scheduled", scheduled)
        if status == RunStatus.COMPLETED:
            _log(logging.INFO, "Run completed", run, "run_completed")
        elif status == RunStatus.CANCELLED:
            _log(logging.INFO, "Run cancelled", run, "run_cancelled")
        else:
            _log(
                logging.WARNING,
                "Run failed error=%s: %s",
                run,
                "run_failed",
                (error or {}).get("name"),
                (error or {}).get("message"),
            )

    def _has_waited(self) -> bool:
        ops = (StepStatus.WAITING,)
        return any(memo.status in ops for memo in self.memos.values())

    def _unheard_at(self, name: str) -> models.Case | None:
        """Return the dispatch time of a `name` event: now if nothing listens, so none is due.

        Each run's finish event is stored for the record, but most projects never listen
        for it: dispatching it would cost a claim, a read and a transaction per run.
        """
        if self.registry.listens_to(name):
            return None
        # Asked by the INSERT itself, a statement fewer per run. Wait keys stay once written,
        # so a project that ever waited for the name keeps dispatching its events.
        return models.Case(
            models.When(models.Exists(WaitKey.objects.filter(event_name=name)), then=None),
            default=models.Value(clock.now()),
            output_field=models.DateTimeField(),
        )

    def _emit_finish_events(
        self, status: RunStatus, output: Any, error: dict[str, Any] | None
    ) -> None:
        run = self.run
        trigger = run.event.to_json()
        data: dict[str, Any] = {
            "function_id": run.function_id,
            "run_id": run.pk,
            "event": trigger,
            "events": [e.to_json() for e in self.ctx.events] if self.ctx else [trigger],
            "_inngest": {"status": status.value},
        }
        if status == RunStatus.COMPLETED:
            data["result"] = output
        elif status == RunStatus.CANCELLED:
            data["error"] = {"name": "FunctionCancelled", "message": "the run was cancelled"}
        else:
            data["error"] = error
        emit(FINISHED_EVENT, data, dispatched_at=self._unheard_at(FINISHED_EVENT))
        if status == RunStatus.FAILED:
            # The run id as event id makes a second failure event for one run a duplicate,
            # except after a manual retry, whose failure is news to on_failure handlers.
            failure = f"{run.pk}:retry-{run.manual_retries}" if run.manual_retries else run.pk
            emit(FAILED_EVENT, data, external_id=failure)
        elif status == RunStatus.CANCELLED:
            emit(CANCELLED_EVENT, data, external_id=run.pk)


def execute_run(
    run_id: str, *, lease_token: str, registry: FunctionRegistry = default_registry
) -> None:
    """Execute one pass of a run this worker has claimed under `lease_token`."""
    try:
        run = FunctionRun.objects.select_related("event").get(pk=run_id)
    except FunctionRun.DoesNotExist:
        return
    if run.lease_token != lease_token:
        return
    try:
        function = registry.get(run.function_id)
    except FunctionNotFoundError as exc:
        now = clock.now()
        with transaction.atomic():
            if FunctionRun.mark_finished(
                run.pk, lease_token, status=RunStatus.FAILED, now=now, error=error_to_json(exc)
            ):
                # Defers an earlier pass recorded still start: their cleanup may matter most.
                DeferIntent.schedule_pending(run.pk, now=now)
                end_waits(run.pk, now=now)
                if run.event.name == INVOKED_EVENT:
                    finish_invoked(
                        run, status=RunStatus.FAILED, output=None, error=error_to_json(exc)
                    )
        _log(logging.ERROR, "Run failed: function not registered", run, "run_failed")
        FunctionRun.objects.unpark([run.concurrency_key, run.concurrency_key_2])
        return
    try:
        RunPass(run, function, lease_token, registry).execute()
    except DecryptionError as exc:
        # No configured key opens the trigger event or a step memo: retrying cannot help.
        _fail_unreadable(run, lease_token, exc)
    if run.concurrency_key or run.concurrency_key_2:
        # The pass has released the run's slot (finished, asleep, waiting or retrying later).
        FunctionRun.objects.unpark([run.concurrency_key, run.concurrency_key_2])


def _fail_unreadable(run: FunctionRun, lease_token: str, exc: DecryptionError) -> None:
    """Fail a run whose stored payloads cannot be decrypted, naming the column and row."""
    now, error = clock.now(), error_to_json(exc)
    with transaction.atomic():
        if not FunctionRun.mark_finished(
            run.pk, lease_token, status=RunStatus.FAILED, now=now, error=error
        ):
            return
        DeferIntent.schedule_pending(run.pk, now=now)
        end_waits(run.pk, now=now)
        if run.event.name == INVOKED_EVENT:
            finish_invoked(run, status=RunStatus.FAILED, output=None, error=error)
    _log(logging.ERROR, "Run failed: %s", run, "run_failed", exc)
