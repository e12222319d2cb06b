"""RunPass: one pass of a run's handler: load memos, build the Context, call, map the outcome."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from pydantic import ValidationError

from .. import clock, signals
from .._interrupts import (
    DatabaseLost,
    Interrupt,
    LeaseLost,
    RunCancelled,
    WaitPlanned,
)
from ..async_steps import AsyncStep
from ..conf import app_settings
from ..context import Context, ReplayAwareLogger
from ..defer_rules import validate_received
from ..enums import RunStatus, StepStatus
from ..exceptions import NonRetriableError
from ..functions import DeferredFunction
from ..models import FunctionRun, RunEvent, StepRun
from ..outbox import split_event_data
from ..schemas.defers import Parent
from ..schemas.events import Event
from ..serialization import dump_run_output, error_to_json
from ..steps import Memo, Step
from ..waits import expire
from .finalize import FinishEvents, finalize
from .logs import log_run
from .rules import as_handler_sees, readable, stops_the_process
from .side_by_side import SideBySideSteps

user_logger = logging.getLogger("inngest_django.functions")


async def _await_handler(handler: Any, ctx: Context) -> Any:
    return await handler(ctx)


class RunPass(SideBySideSteps):
    """One pass of one run's handler under a lease, from the top, ending in a persisted outcome."""

    def execute(self) -> None:
        """Call the handler once, from the top, and persist how the pass ended."""
        try:
            self._execute()
        finally:
            # Every outcome commits through the checkpoint. A transaction still open here was
            # left by a lost lease or connection, or a Ctrl-C: it rolls back, and its steps,
            # whose memos roll back with their own writes, run again in a later pass.
            self.checkpoint.rollback()

    def _execute(self) -> None:
        if not self._begin():
            return
        try:
            result = self._call_handler()
        except BaseException as exc:
            self._handler_raised(exc)
            return
        self._handler_returned(result)

    def _begin(self) -> bool:
        """Load the memos and build the Context; return False if the pass already ended."""
        run = self.run
        if self.function.is_async:
            # Held open, a step's transaction (and its lock on the run's row, which the
            # heartbeat updates) would last through the next async step's await: each commits.
            self.checkpoint.enabled = False
        # A run this claim started for the first time has no step rows: no read to learn so.
        steps = [] if self.first_start else self._load_steps()
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
            return False
        try:
            self._check_timeouts()
        except RunCancelled:
            self._finish(RunStatus.CANCELLED)
            return False
        step_class = AsyncStep if self.function.is_async else Step
        step = step_class(self.memos, self, max_steps=app_settings.MAX_STEPS_PER_RUN)
        try:
            event, events, parents = self._handler_events()
        except (NonRetriableError, ValidationError) as exc:
            # Retrying cannot change the stored data, so the run fails at once.
            self._finish(RunStatus.FAILED, error=error_to_json(exc))
            return False
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
        if self.function.is_async:
            # ctx.defer reads stored intents on first use: not from the event loop, so now.
            self.defers.load()
        log_run(logging.INFO, "Run started attempt=%d", run, "run_started", run.attempt)
        signals.run_started.send(sender=FunctionRun, run=run)
        return True

    def _call_handler(self) -> Any:
        assert self.ctx is not None
        if self.function.is_async:
            # One run alone: its loop lives for this pass, its ORM work stays on this thread.
            return async_to_sync(_await_handler)(self.function.handler, self.ctx)
        return self.function.handler(self.ctx)

    def _handler_raised(self, exc: BaseException) -> None:
        """Persist how a handler that raised `exc` ended the pass."""
        run = self.run
        try:
            raise exc
        except LeaseLost:
            log_run(logging.WARNING, "Lease lost; another worker has the run", run, "lease_lost")
        except DatabaseLost:
            log_run(
                logging.WARNING,
                "Database connection lost in a step; the run resumes after its lease",
                run,
                "database_lost",
            )
        except RunCancelled:
            self._finish(RunStatus.CANCELLED)
        except WaitPlanned as wait:
            if not wait.persisted:
                self._wait_again(wait)
        except Interrupt:
            pass
        except BaseException as error:
            if stops_the_process(error):
                raise
            # SystemExit, GeneratorExit or a user's own BaseException fail the handler like any
            # error: escaping, they would leave the run to crash again after every lease.
            self._handler_failed(error)
        finally:
            self.defers.close()

    def _handler_returned(self, result: Any) -> None:
        """Persist the outcome of a handler that returned `result`."""
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
        event = as_handler_sees(readable(Event.model_validate(run.event.to_json())))
        parents = []
        if isinstance(self.function, DeferredFunction):
            payload, parent = split_event_data(event.data)
            data = validate_received(self.function, payload)
            event, parents = event.model_copy(update={"data": data}), [parent]
        events = [event]
        if run.batch_size:
            rows = RunEvent.objects.filter(run_id=run.pk).select_related("event")
            events = [readable(Event.model_validate(row.event.to_json())) for row in rows]
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
        try:
            # The write first stores a step memo held back since the step (LeaseLost if the
            # lease went meanwhile).
            with self.checkpoint.write():
                self.defers.flush()
                if not FunctionRun.mark_waiting(
                    self.run.pk, self.lease_token, until=self._release_until(until)
                ):
                    raise LeaseLost()
        except LeaseLost:
            log_run(logging.WARNING, "Lease lost before waiting again", self.run, "lease_lost")

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
        try:
            with self.checkpoint.write():
                self._queue_for_retry(retry_at, error)
                self.defers.flush()
        except LeaseLost:
            # Another worker holds the run: nothing of this pass commits.
            log_run(logging.WARNING, "Lease lost before a retry", self.run, "lease_lost")
            return
        log_run(
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
        """End the run through finalize(), with this pass's defers, waits and events."""
        waited = any(memo.status == StepStatus.WAITING for memo in self.memos.values())
        finalize(
            self.run,
            self.lease_token,
            status,
            output=output,
            error=error,
            cancel_reason=self._cancel_reason,
            defers=self.defers,
            may_have_waits=bool(self.function.cancel) or status != RunStatus.COMPLETED or waited,
            announce=FinishEvents(self.ctx.events if self.ctx else [], self.registry),
            # The last step's transaction, if still open, commits with the finish, and its
            # memo goes in with the run's UPDATE.
            scope=self.checkpoint.write,
            memo=self.checkpoint.take_memo(),
        )
