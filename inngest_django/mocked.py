"""run_function(): run one function's handler in memory, with step stubs and no database."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from . import clock
from ._interrupts import Interrupt, RetryScheduled, SleepPlanned, WaitPlanned
from .conf import app_settings
from .context import Context, ReplayAwareLogger
from .defers import (
    META_KEY,
    split_event_data,
    validate_received,
)
from .enums import RunStatus, StepOp, StepStatus
from .events import build_event_row
from .exceptions import InvalidEventError, NonRetriableError, StepError
from .expressions import Expression
from .functions import (
    DEFERRED_EVENT,
    INVOKED_EVENT,
    SCHEDULED_EVENT,
    DeferredFunction,
    Function,
)
from .mocked_defers import DeferCall, DeferLog, MemoryDeferRecorder, RejectedDefer
from .registry import default_registry
from .schemas.defers import Parent
from .schemas.events import Event
from .serialization import (
    OutputNotSerializableError,
    dump_step_output,
    dump_value,
    error_to_json,
    load_value,
)
from .steps import Memo, Step
from .waits import NO_MATCH, encode_value, lookup, match_key_of

__all__ = [
    "DeferCall",
    "RejectedDefer",
    "RunResult",
    "Timeout",
    "UnstubbedStepError",
    "run_function",
]

DEFAULT_RUN_ID = "test-run"
DEFAULT_PARENT = Parent(fn_slug="test", run_id="test-parent-run")
user_logger = logging.getLogger("inngest_django.functions")
defer_logger = logging.getLogger("inngest_django.defers")
_MISSING = object()


class Timeout:
    """Stub for a wait_for_event that timed out (it returns None) or an invoke (it fails)."""


def _is_timeout(stub: Any) -> bool:
    return stub is Timeout or isinstance(stub, Timeout)


class UnstubbedStepError(Exception):
    """A wait_for_event or invoke step has no stub, and run_function cannot resolve it."""

    def __init__(self, message: str, *, step_key: str) -> None:
        super().__init__(message)
        self.step_key = step_key


class _SetupError(Interrupt):
    """The test's setup is wrong; run_function raises `error` instead of running on."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


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
    triggers = _trigger_events(function, event, events, data)
    run = _Run(function, triggers, stubs=dict(step_stubs or {}), retries=retries, run_id=run_id)
    if isinstance(function, DeferredFunction):
        try:
            run.prepare_deferred(parent)
        except NonRetriableError as exc:
            # The real receiver fails such a run at once: retrying cannot change its data.
            return run.result(RunStatus.FAILED, error=exc)
    return run.execute()


# -- trigger events ----------------------------------------------------------------------------


def _trigger_events(function: Function, event: Any, events: Any, data: Any) -> list[Event]:
    given = [n for n, v in (("event", event), ("events", events), ("data", data)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"run_function takes one of event, events or data, got {given}")
    name, default_data = _default_trigger(function)
    if events is not None:
        if isinstance(events, Event | Mapping) or not isinstance(events, Sequence) or not events:
            raise TypeError("events must be a non-empty list of events")
        if isinstance(function, DeferredFunction):
            raise TypeError("a deferred function runs for one event, not a batch")
        items = list(events)
    elif event is not None:
        items = [event]
    else:
        items = [{"data": default_data if data is None else data}]
    prepared = [_prepare_event(function, item, index, name) for index, item in enumerate(items)]
    if not isinstance(function, DeferredFunction):
        for item in prepared:
            _check_trigger(function, item)
    return prepared


def _default_trigger(function: Function) -> tuple[str | None, dict[str, Any]]:
    """Return the name a nameless trigger gets, and the data it gets when none is given."""
    if isinstance(function, DeferredFunction):
        return DEFERRED_EVENT, {}
    names = {t.event for t in function.event_triggers}
    if len(names) == 1 and not next(iter(names)).endswith("*"):
        return names.pop(), {}
    if not names and function.cron_triggers:
        return SCHEDULED_EVENT, {"cron": function.cron_triggers[0].cron}
    return None, {}


def _prepare_event(function: Function, item: Any, index: int, name: str | None) -> Event:
    """Return the event as the worker would hand it over: validated, JSON, with a timestamp."""
    if isinstance(item, Mapping) and "name" not in item:
        if name is None:
            raise TypeError(
                f"event {index} has no name, and {function.id} has no single trigger to take "
                "it from; pass an Event or a dict with a name"
            )
        item = {"name": name, **item}
    if isinstance(item, Mapping):
        try:
            item = Event.model_validate(dict(item))
        except ValidationError as exc:
            raise InvalidEventError(
                f"event {index} is invalid: {exc}; to pass only its data, use data="
            ) from None
    # System names stay allowed: a test may hand a handler an invoked or failure event.
    row = build_event_row(item, index, system=str(getattr(item, "name", "")).startswith("inngest/"))
    data = row.data
    if row.name == INVOKED_EVENT:
        data = {k: v for k, v in data.items() if k != META_KEY}
    return Event(name=row.name, data=data, id=row.external_id, ts=row.ts)


def _check_trigger(function: Function, event: Event) -> None:
    if event.name == INVOKED_EVENT or (event.name == SCHEDULED_EVENT and function.cron_triggers):
        return
    if not function.matches(event.to_json()):
        triggers = ", ".join(
            t.event + (f" if {t.expression}" if t.expression else "")
            for t in function.event_triggers
        )
        raise ValueError(
            f"{function.id} would not run for event {event.name!r}: no trigger matches it "
            f"(triggers: {triggers or 'cron only'})"
        )


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
        if META_KEY in payload:
            payload, found = split_event_data(payload)
        if parent is not None and not isinstance(parent, Parent):
            parent = Parent.model_validate(dict(parent))
        self.parents = [parent or found or DEFAULT_PARENT]
        data = validate_received(self.function, payload)
        self.events = [event.model_copy(update={"data": data})]

    def execute(self) -> RunResult:
        """Call the handler from the top after each interrupt, until the run ends."""
        while True:
            step = Step(dict(self.memos), self, max_steps=app_settings.MAX_STEPS_PER_RUN)
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
                value = self.function.handler(self.ctx)
            except _SetupError as setup:
                raise setup.error from None
            except Interrupt:
                continue
            except Exception as exc:
                if isinstance(exc, NonRetriableError | StepError) or self.attempt >= self.retries:
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
        stub = self._stub(step_key)
        if _is_timeout(stub):
            raise _SetupError(
                TypeError(
                    f"step {step_key!r} is not a wait_for_event or an invoke; stub it with its "
                    "output or an exception instance, not testing.Timeout"
                )
            )
        if isinstance(stub, type) and issubclass(stub, BaseException):
            raise _SetupError(
                TypeError(
                    f"the stub of step {step_key!r} is the class {stub.__name__}; stub an "
                    f"instance to fail the step, such as {stub.__name__}('card declined')"
                )
            )
        try:
            if stub is _MISSING:
                result = fn(*args)
            elif isinstance(stub, Exception):
                raise stub
            else:
                result = stub
            stored = dump_step_output(step_key, result, output_type)
        except Interrupt:
            raise
        except Exception as exc:
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
        stub = self._stub(step_key)
        if stub is _MISSING:
            raise _SetupError(
                UnstubbedStepError(
                    f"step {step_key!r} waits for an event {event!r}, which run_function "
                    f"cannot deliver; stub it: step_stubs={{{step_key!r}: <an Event or a dict "
                    "with its data>}, or testing.Timeout for a timeout",
                    step_key=step_key,
                )
            )
        if stub is None or _is_timeout(stub):
            self._record(step_key, StepStatus.COMPLETED, None)
        else:
            received = self._stub_event(step_key, stub, event, if_exp, match)
            self._record(step_key, StepStatus.COMPLETED, received, stored=received.to_json())
        raise WaitPlanned(step_key, until, persisted=True)

    def plan_invoke(
        self, step_key: str, *, function_id: str, data: dict[str, Any], until: datetime
    ) -> None:
        target = default_registry.get(function_id) if function_id in default_registry else None
        if target is None or isinstance(target, DeferredFunction):
            # The worker refuses these at once, stub or no stub.
            reason = (
                f"no registered function has the id {function_id!r}"
                if target is None
                else f"{function_id!r} is a deferred function, started only by ctx.defer"
            )
            error = NonRetriableError(f"invoke {step_key!r}: {reason}")
            self._record(step_key, StepStatus.FAILED, error, error=error_to_json(error))
            raise error
        stub = self._stub(step_key)
        if stub is _MISSING:
            raise _SetupError(
                UnstubbedStepError(
                    f"step {step_key!r} invokes {function_id!r}, which run_function does not "
                    f"run; stub it: step_stubs={{{step_key!r}: <what {function_id} returns>}}, "
                    "an exception instance for a failed run, or testing.Timeout",
                    step_key=step_key,
                )
            )
        if _is_timeout(stub):
            failure = f"invoke {step_key!r} timed out; the invoked run goes on"
        elif isinstance(stub, Exception):
            failure = f"invoked function {function_id} failed: {stub}"
        else:
            try:
                stored, _ = dump_value(stub)
            except OutputNotSerializableError as exc:
                raise _SetupError(TypeError(f"the stub of step {step_key!r}: {exc}")) from None
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

    def _stub(self, step_key: str) -> Any:
        """Return the stub for a full key ("charge:1"), else for its step id, else _MISSING."""
        if step_key in self.stubs:
            return self.stubs[step_key]
        step_id, _, index = step_key.rpartition(":")
        if step_id and index.isdigit() and step_id in self.stubs:
            return self.stubs[step_id]
        return _MISSING

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

    def _step_failed(self, step_key: str, exc: Exception) -> None:
        """Raise RetryScheduled while retries are left, else the error the handler sees."""
        error = error_to_json(exc)
        attempts = self.attempts[step_key]
        self.steps[step_key] = exc
        final = isinstance(exc, NonRetriableError | StepError) or self.attempt >= self.retries
        if not final:
            self.memos[step_key] = Memo(StepStatus.ERRORED, error=error, attempts=attempts)
            self.attempt += 1
            raise RetryScheduled(step_key, clock.now())
        self.memos[step_key] = Memo(StepStatus.FAILED, error=error, attempts=attempts)
        self._reset_attempt()
        if isinstance(exc, NonRetriableError | StepError):
            raise exc
        raise StepError(error["message"], error["name"], error["stack"]) from exc

    def _stub_event(
        self, step_key: str, stub: Any, name: str, if_exp: str | None, match: str | None
    ) -> Event:
        """Return a wait's stub as the event, if the real wait would resolve with it."""
        if isinstance(stub, Mapping) and "name" not in stub:
            stub = {"name": name, **stub}
        try:
            received = _prepare_event(self.function, stub, 0, name)
        except (InvalidEventError, TypeError) as exc:
            raise _SetupError(
                TypeError(
                    f"the stub of step {step_key!r} must be an Event or a dict such as "
                    f"{{'data': {{...}}}}: {exc}"
                )
            ) from None
        if received.name != name:
            raise _SetupError(
                ValueError(
                    f"step {step_key!r} waits for {name!r}, but its stub is an event "
                    f"{received.name!r}, which would never resolve it"
                )
            )
        trigger, candidate = self.events[0].to_json(), received.to_json()
        key = match or match_key_of(if_exp)
        if key:
            value = encode_value(lookup(trigger, key))
            if value == NO_MATCH or value != encode_value(lookup(candidate, key)):
                raise _SetupError(
                    ValueError(
                        f"step {step_key!r} matches on {key}, but its stub has "
                        f"{key}={lookup(candidate, key)!r} where the trigger has "
                        f"{lookup(trigger, key)!r}; the real wait would not resolve with it"
                    )
                )
        if if_exp and not Expression(if_exp).matches({"event": trigger, "async": candidate}):
            raise _SetupError(
                ValueError(
                    f"the stub of step {step_key!r} does not satisfy its if_exp {if_exp!r}; "
                    "the real wait would not resolve with it"
                )
            )
        return received
