"""run_function(): run one function's handler in memory, with step stubs and no database."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync

from .. import clock
from .._interrupts import Interrupt, RetryScheduled, SleepPlanned, WaitPlanned
from ..async_steps import AsyncStep
from ..conf import app_settings
from ..context import Context, ReplayAwareLogger
from ..defer_rules import validate_received
from ..engine.rules import error_for_handler, invoke_refusal, stops_the_process
from ..enums import RunStatus, StepOp, StepStatus
from ..events import build_event_row
from ..exceptions import InvalidEventError, NonRetriableError
from ..functions import DeferredFunction, Function
from ..names import ENGINE_DATA_KEY
from ..outbox import split_event_data
from ..registry import default_registry
from ..retries import is_final
from ..schemas.defers import Parent
from ..schemas.events import Event
from ..serialization import (
    OutputNotSerializableError,
    dump_step_output,
    dump_value,
    error_to_json,
    load_value,
)
from ..steps import Memo, Step
from ._defers import DeferCall, DeferLog, MemoryDeferRecorder, RejectedDefer
from ._stubs import (
    MISSING,
    SetupError,
    find_stub,
    is_timeout,
    required_stub,
    stub_event,
)
from ._triggers import trigger_events

DEFAULT_RUN_ID = "test-run"
DEFAULT_PARENT = Parent(fn_slug="test", run_id="test-parent-run")
user_logger = logging.getLogger("inngest_django.functions")


@dataclass
class RunResult:
    """How a `run_function` run ended, and what its steps, defers and sends did."""

    status: str
    output: Any = None
    error: Exception | None = None
    steps: dict[str, Any] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    defers: list[DeferCall] = field(default_factory=list)
    rejected_defers: list[RejectedDefer] = field(default_factory=list)
    sent_events: list[Event] = field(default_factory=list)

    @property
    def scheduled(self) -> list[DeferCall]:
        """Return the defers that would start: those not cancelled."""
        return [call for call in self.defers if not call.cancelled]

    def raise_for_error(self) -> None:
        """Raise the run's error if it failed."""
        if self.error is not None:
            raise self.error


def run_function(
    function: Function,
    event: Event | Mapping[str, Any] | None = None,
    *,
    events: Sequence[Event | Mapping[str, Any]] | None = None,
    data: Any = None,
    step_stubs: Mapping[str, Any] | None = None,
    retries: int | None = None,
    parent: Parent | Mapping[str, Any] | None = None,
    run_id: str = DEFAULT_RUN_ID,
) -> RunResult:
    """Run `function`'s handler to its end in this process, replaying as the worker does.

    No database: memos live in memory, sleeps end at once, failed steps retry without waiting.
    Code a step runs for real still does what it does, so stub steps that use the database.

    Args:
        function: What `create_function` or `create_defer` returned.
        event: The trigger, an `Event` or a dict; a dict without "name" gets the name of the
            function's only trigger (`inngest/deferred.schedule` for a deferred function).
        events: A batch of triggers instead of `event`; the handler's `ctx.event` is the first.
        data: The trigger's data instead of `event`, under the default name as above.
        step_stubs: Step id (or full key, "charge:1") to what the step returns instead of
            running: a value, an exception instance to fail each attempt, or `Timeout` for a
            wait_for_event or invoke. wait_for_event and invoke need one.
        retries: Retries per step instead of the function's own.
        parent: A deferred function's `ctx.parents[0]` (default fn_slug "test", run_id
            "test-parent-run").
        run_id: `ctx.run_id`, which also seeds experiment strategies.

    Returns:
        The run's status ("COMPLETED" or "FAILED"), output, error, steps, defers and events.

    Raises:
        UnstubbedStepError: A wait_for_event or invoke step has no stub.
        InvalidEventError: A trigger event is not valid.
        ValueError: A trigger or a stub the real engine would never deliver.
        TypeError: Arguments of the wrong kind.
    """
    if not isinstance(function, Function):
        raise TypeError(
            "run_function takes the Function that create_function or create_defer returned, "
            f"got {function!r}"
        )
    if retries is None:
        retries = function.retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise TypeError(f"retries must be an int >= 0, got {retries!r}")
    triggers = trigger_events(function, event, events, data)
    run = _Run(function, triggers, stubs=dict(step_stubs or {}), retries=retries, run_id=run_id)
    if isinstance(function, DeferredFunction):
        try:
            run.prepare_deferred(parent)
        except NonRetriableError as exc:
            # The real receiver fails such a run at once: retrying cannot change its data.
            return run.result(RunStatus.FAILED, error=exc)
    return run.execute()


async def _await_handler(handler: Any, ctx: Context) -> Any:
    return await handler(ctx)


# -- the run -----------------------------------------------------------------------------------


class _Run:
    """An in-memory run: the StepRunner its passes call, and the memos that outlive them."""

    def __init__(
        self,
        function: Function,
        events: list[Event],
        *,
        stubs: dict[str, Any],
        retries: int,
        run_id: str,
    ) -> None:
        self.function = function
        self.events = events
        self.stubs = stubs
        self.retries = retries
        self.run_id = run_id
        self.parents: list[Parent] = []
        self.memos: dict[str, Memo] = {}
        self.attempt = 0
        self.steps: dict[str, Any] = {}
        self.attempts: dict[str, int] = {}
        self.sent_events: list[Event] = []
        self.defers = DeferLog()
        self.ctx: Context | None = None
        self.recorder = MemoryDeferRecorder(self.defers, run_id=run_id, function_id=function.id)

    def prepare_deferred(self, parent: Parent | Mapping[str, Any] | None) -> None:
        """Type the deferred run's data with its schema, and name its parent."""
        assert isinstance(self.function, DeferredFunction)
        event = self.events[0]
        payload, found = dict(event.data), None
        if ENGINE_DATA_KEY in payload:
            payload, found = split_event_data(payload)
        if parent is not None and not isinstance(parent, Parent):
            parent = Parent.model_validate(dict(parent))
        self.parents = [parent or found or DEFAULT_PARENT]
        data = validate_received(self.function, payload)
        self.events = [event.model_copy(update={"data": data})]

    def execute(self) -> RunResult:
        """Call the handler from the top after each interrupt, until the run ends."""
        while True:
            step_class = AsyncStep if self.function.is_async else Step
            step = step_class(dict(self.memos), self, max_steps=app_settings.MAX_STEPS_PER_RUN)
            self.recorder = MemoryDeferRecorder(
                self.defers, run_id=self.run_id, function_id=self.function.id
            )
            self.ctx = Context(
                event=self.events[0],
                events=list(self.events),
                run_id=self.run_id,
                step=step,
                logger=ReplayAwareLogger(user_logger, self.run_id, step),
                attempt=self.attempt,
                function_id=self.function.id,
                parents=list(self.parents),
                defers=self.recorder,
            )
            try:
                value = self._call_handler(self.ctx)
            except SetupError as setup:
                raise setup.error from None
            except Interrupt:
                continue
            except BaseException as exc:
                if stops_the_process(exc):
                    raise
                # As in the engine: SystemExit or a user's own BaseException fails the handler.
                if is_final(exc, self.attempt, self.retries):
                    return self.result(RunStatus.FAILED, error=exc)
                self.attempt += 1
                continue
            finally:
                self.recorder.close()
            try:
                output, _ = dump_value(value, self.function.output_type)
            except OutputNotSerializableError as exc:
                return self.result(RunStatus.FAILED, error=NonRetriableError(str(exc)))
            return self.result(RunStatus.COMPLETED, output=output)

    def _call_handler(self, ctx: Context) -> Any:
        if self.function.is_async:
            # Sync step callables run on this thread, as the worker runs them on its own.
            return async_to_sync(_await_handler)(self.function.handler, ctx)
        return self.function.handler(ctx)

    def stubbed(self, step_key: str) -> bool:
        """Return True if a stub stands for `step_key`: its async callable is not awaited."""
        return find_stub(self.stubs, step_key) is not MISSING

    def result(
        self, status: str, *, output: Any = None, error: Exception | None = None
    ) -> RunResult:
        """Return the run's result as it stands."""
        return RunResult(
            status=RunStatus(status).value,
            output=output,
            error=error,
            steps=dict(self.steps),
            attempts=dict(self.attempts),
            defers=list(self.defers.calls.values()),
            rejected_defers=list(self.defers.rejected.values()),
            sent_events=list(self.sent_events),
        )

    # -- the StepRunner protocol -------------------------------------------------------------

    def run_step(
        self,
        step_key: str,
        fn: Any,
        args: tuple[Any, ...],
        output_type: Any,
        op: str = StepOp.RUN,
    ) -> Any:
        checkpoint = self.recorder.checkpoint()
        self.attempts[step_key] = self.attempts.get(step_key, 0) + 1
        stub = find_stub(self.stubs, step_key)
        if is_timeout(stub):
            raise SetupError(
                TypeError(
                    f"step {step_key!r} is not a wait_for_event or an invoke; stub it with its "
                    "output or an exception instance, not testing.Timeout"
                )
            )
        if isinstance(stub, type) and issubclass(stub, BaseException):
            raise SetupError(
                TypeError(
                    f"the stub of step {step_key!r} is the class {stub.__name__}; stub an "
                    f"instance to fail the step, such as {stub.__name__}('card declined')"
                )
            )
        try:
            if stub is MISSING:
                result = fn(*args)
            elif isinstance(stub, BaseException):
                raise stub
            else:
                result = stub
            stored = dump_step_output(step_key, result, output_type)
        except Interrupt:
            raise
        except BaseException as exc:
            if stops_the_process(exc):
                raise
            self.recorder.restore(checkpoint)
            self._step_failed(step_key, exc)
        self.memos[step_key] = Memo(
            StepStatus.COMPLETED, output=stored, attempts=self.attempts[step_key]
        )
        value = stored if output_type is None else load_value(stored, output_type)
        self.steps[step_key] = value
        self._reset_attempt()
        return value

    def plan_sleep(self, step_key: str, until: datetime) -> None:
        self._record(step_key, StepStatus.COMPLETED, None)
        if until > clock.now():
            # A new pass, as when the real sleep ends: code before the sleep replays.
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
        stub = required_stub(
            self.stubs,
            step_key,
            f"waits for an event {event!r}, which run_function cannot deliver",
            "<an Event or a dict with its data>}, or testing.Timeout for a timeout",
        )
        if stub is None or is_timeout(stub):
            self._record(step_key, StepStatus.COMPLETED, None)
        else:
            received = stub_event(
                self.function, self.events[0], step_key, stub, event, if_exp, match
            )
            self._record(step_key, StepStatus.COMPLETED, received, stored=received.to_json())
        raise WaitPlanned(step_key, until, persisted=True)

    def plan_invoke(
        self, step_key: str, *, function_id: str, data: dict[str, Any], until: datetime
    ) -> None:
        reason = invoke_refusal(default_registry, function_id)
        if reason is not None:
            # The worker refuses these at once, stub or no stub.
            error = NonRetriableError(f"invoke {step_key!r}: {reason}")
            self._record(step_key, StepStatus.FAILED, error, error=error_to_json(error))
            raise error
        stub = required_stub(
            self.stubs,
            step_key,
            f"invokes {function_id!r}, which run_function does not run",
            f"<what {function_id} returns>}}, an exception instance for a failed run, or "
            "testing.Timeout",
        )
        if is_timeout(stub):
            failure = f"invoke {step_key!r} timed out; the invoked run goes on"
        elif isinstance(stub, Exception):
            failure = f"invoked function {function_id} failed: {stub}"
        else:
            try:
                stored, _ = dump_value(stub)
            except OutputNotSerializableError as exc:
                raise SetupError(TypeError(f"the stub of step {step_key!r}: {exc}")) from None
            self._record(step_key, StepStatus.COMPLETED, stored, stored=stored)
            raise WaitPlanned(step_key, until, persisted=True)
        error = NonRetriableError(failure)
        self._record(
            step_key,
            StepStatus.FAILED,
            error,
            error={"name": "NonRetriableError", "message": failure, "stack": ""},
        )
        raise WaitPlanned(step_key, until, persisted=True)

    def send_events(self, events: Any) -> list[str]:
        items = list(events) if isinstance(events, list | tuple) else [events]
        try:
            rows = [build_event_row(item, index, system=False) for index, item in enumerate(items)]
        except InvalidEventError as exc:
            raise NonRetriableError(str(exc)) from exc
        self.sent_events.extend(
            Event(name=row.name, data=row.data, id=row.external_id, ts=row.ts) for row in rows
        )
        return [row.id for row in rows]

    # -- helpers -----------------------------------------------------------------------------

    def _record(
        self,
        step_key: str,
        status: str,
        value: Any,
        *,
        stored: Any = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Memoize a sleep, wait or invoke that took one attempt."""
        self.attempts[step_key] = 1
        self.memos[step_key] = Memo(status, output=stored, error=error, attempts=1)
        self.steps[step_key] = value
        self._reset_attempt()

    def _reset_attempt(self) -> None:
        """Start counting failed attempts afresh: the current step is done."""
        self.attempt = 0
        if self.ctx is not None:
            self.ctx.attempt = 0

    def _step_failed(self, step_key: str, exc: BaseException) -> None:
        """Raise RetryScheduled while retries are left, else the error the handler sees."""
        error = error_to_json(exc)
        attempts = self.attempts[step_key]
        self.steps[step_key] = exc
        if not is_final(exc, self.attempt, self.retries):
            self.memos[step_key] = Memo(StepStatus.ERRORED, error=error, attempts=attempts)
            self.attempt += 1
            raise RetryScheduled(step_key, clock.now())
        self.memos[step_key] = Memo(StepStatus.FAILED, error=error, attempts=attempts)
        self._reset_attempt()
        raise error_for_handler(exc, error) from exc
