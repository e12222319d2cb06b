"""Step tools: memo lookup, `:N` step keys and interrupts; never touches the database."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from asgiref.sync import async_to_sync
from pydantic import BaseModel, ValidationError

from . import clock
from ._interrupts import StepPlanned, WaitPlanned
from .durations import MAX_SLEEP, parse_duration, parse_until
from .enums import StepOp, StepStatus
from .exceptions import LimitExceededError, NonRetriableError, StepError
from .expressions import Expression, InvalidExpressionError
from .schemas.events import Event
from .serialization import load_value

T = TypeVar("T")

DEFAULT_INVOKE_TIMEOUT = timedelta(days=365)
# A match names a field of both events: "data.id" means event.data.id == async.data.id.
MATCH_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# The step whose callable is running, per thread and task: parallel steps run several at once.
_running: ContextVar[tuple[int, str] | None] = ContextVar("inngest_running_step", default=None)


def is_async_callable(fn: Any) -> bool:
    """Return True for an `async def` function, or an object whose `__call__` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - a callable object's own method
    )


@dataclass(frozen=True)
class PlannedStep:
    """A step a `group.parallel` branch reached without a memo: run later, beside the others."""

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    output_type: Any
    op: str


@dataclass
class Memo:
    """What a step row says about one step key."""

    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    wake_at: datetime | None = None


def _load_memo(key: str, memo: Memo, output_type: Any) -> Any:
    """Return a memo's output as `output_type`; one that no longer validates fails the run."""
    try:
        return load_value(memo.output, output_type)
    except ValidationError as exc:
        # The type changed between deploys, or the row was edited: a retry reads the same row.
        name = getattr(output_type, "__name__", repr(output_type))
        raise NonRetriableError(
            f"step {key!r}: its stored output does not validate as {name}: {exc}"
        ) from exc


class StepRunner(Protocol):
    """What the executor provides to run and record steps durably."""

    def run_step(
        self,
        step_key: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        output_type: Any,
        op: str = StepOp.RUN,
    ) -> Any: ...

    def plan_sleep(self, step_key: str, until: datetime) -> None: ...

    def plan_wait(
        self,
        step_key: str,
        *,
        event: str,
        until: datetime,
        if_exp: str | None,
        match: str | None,
    ) -> None: ...

    def plan_invoke(
        self, step_key: str, *, function_id: str, data: dict[str, Any], until: datetime
    ) -> None: ...

    def send_events(self, events: Any) -> list[str]: ...


class Step:
    """`ctx.step`: durable step tools over the run's memos."""

    def __init__(self, memos: dict[str, Memo], runner: StepRunner, *, max_steps: int) -> None:
        self._memos = memos
        self.runner = runner
        self.max_steps = max_steps
        self._seen: Counter[str] = Counter()
        self._calls = 0
        # While `group.parallel` looks for its branches' next steps: where they are collected.
        self._planned: list[PlannedStep] | None = None
        # Memoized steps this pass has not reached yet; while any remain, code between steps
        # has run before, so the logger stays quiet.
        self._unvisited = {key for key, memo in memos.items() if memo.status != StepStatus.ERRORED}

    @property
    def replaying(self) -> bool:
        """Return True while the pass is re-running code that an earlier pass already ran."""
        return bool(self._unvisited)

    @property
    def calls(self) -> int:
        """Return how many step tools this pass has called so far."""
        return self._calls

    def _mark_completed(self, key: str) -> None:
        # Keep a memo the runner recorded with its output; replace a missing or errored one.
        memo = self._memos.get(key)
        if memo is None or memo.status != StepStatus.COMPLETED:
            self._memos[key] = Memo(status=StepStatus.COMPLETED)

    def _visit(self, key: str) -> None:
        self._unvisited.discard(key)

    def _key(self, step_id: str) -> str:
        if not isinstance(step_id, str) or not step_id:
            raise NonRetriableError(f"step id must be a non-empty string, got {step_id!r}")
        count = self._seen[step_id]
        self._seen[step_id] += 1
        self._calls += 1
        return step_id if count == 0 else f"{step_id}:{count}"

    def _check_nesting(self, key: str) -> None:
        running = _running.get()
        if running is not None and running[0] == id(self):
            raise NonRetriableError(
                f"Nested steps are not supported: step {key!r} was called inside step "
                f"{running[1]!r}"
            )

    @contextmanager
    def running(self, key: str) -> Iterator[None]:
        """Mark step `key` as running in this thread or task, so steps inside it are refused."""
        token = _running.set((id(self), key))
        try:
            yield
        finally:
            _running.reset(token)

    @contextmanager
    def planning(self, planned: list[PlannedStep]) -> Iterator[None]:
        """Collect new steps into `planned` instead of running them (see group.parallel)."""
        self._planned = planned
        try:
            yield
        finally:
            self._planned = None

    def snapshot(self) -> tuple[Counter[str], int, set[str]]:
        """Return the step-id counts, so branches replayed from the top get the same keys."""
        return Counter(self._seen), self._calls, set(self._unvisited)

    def restore(self, snapshot: tuple[Counter[str], int, set[str]]) -> None:
        """Go back to a snapshot()."""
        seen, self._calls, unvisited = snapshot
        self._seen = Counter(seen)
        self._unvisited = set(unvisited)

    def _recall(self, key: str, output_type: Any) -> tuple[bool, Any]:
        """Return (True, output) for a step with a completed memo; raise for a failed one."""
        self._check_nesting(key)
        memo = self._memos.get(key)
        self._visit(key)
        if memo is not None and memo.status == StepStatus.COMPLETED:
            return True, _load_memo(key, memo, output_type)
        if memo is not None and memo.status == StepStatus.FAILED:
            error = memo.error if isinstance(memo.error, dict) else {}
            raise StepError(
                error.get("message", ""), error.get("name", "Error"), error.get("stack", "")
            )
        return False, None

    def _plan(self, step: PlannedStep) -> None:
        """While planning, collect `step` and stop its branch here."""
        if self._planned is not None:
            self._planned.append(step)
            raise StepPlanned()

    def _new_step(self, key: str) -> None:
        """Check the step limit before a step with no memo; reaching one ends the replay."""
        self._check_limit(key)
        # Memos no step reached before this new work (say a step id renamed between deploys)
        # are never replayed; waiting for them would keep the logger quiet for good.
        self._unvisited.clear()

    def _check_limit(self, key: str) -> None:
        planned = len(self._planned or ())
        if key not in self._memos and len(self._memos) + planned >= self.max_steps:
            raise LimitExceededError(
                f"run reached the limit of {self.max_steps} steps per run at step {key!r} "
                "(MAX_STEPS_PER_RUN)",
                limit="MAX_STEPS_PER_RUN",
            )

    def run(self, step_id: str, fn: Callable[..., T], *args: Any, output_type: Any = None) -> T:
        """Run `fn(*args)` once, durably; later passes return its memoized output.

        Raises:
            StepError: The step failed for good (retries spent) in this or an earlier pass.
        """
        return self._run(step_id, fn, args, output_type, StepOp.RUN)

    def send_event(self, step_id: str, events: Any) -> list[str]:
        """Send one event or a list, once: a replay returns the ids sent the first time."""
        return self._run(step_id, self.runner.send_events, (events,), None, StepOp.SEND_EVENT)

    def _run(
        self,
        step_id: str,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        output_type: Any,
        op: str,
    ) -> T:
        key = self._key(step_id)
        found, output = self._recall(key, output_type)
        if found:
            return output
        self._new_step(key)
        self._plan(PlannedStep(key, fn, args, output_type, op))
        if is_async_callable(fn):
            # A sync handler's async callable runs to its end here, in its own event loop.
            fn = async_to_sync(fn)
        with self.running(key):
            result = self.runner.run_step(key, fn, args, output_type, op)
        self._mark_completed(key)
        return result

    def sleep(self, step_id: str, duration: timedelta | int | str) -> None:
        """Pause the run for `duration` (timedelta, int milliseconds, or "30s", "1h30m", "2d")."""
        key = self._key(step_id)
        self._check_nesting(key)
        if key in self._memos:
            return self._resume_sleep(key)
        try:
            delta = parse_duration(duration, what=f"sleep {step_id!r} duration")
        except ValueError as exc:
            raise NonRetriableError(str(exc)) from None
        self._plan_sleep(key, step_id, clock.now() + delta)

    def sleep_until(self, step_id: str, until: datetime | str) -> None:
        """Pause the run until `until` (an aware datetime or an ISO 8601 string)."""
        key = self._key(step_id)
        self._check_nesting(key)
        if key in self._memos:
            return self._resume_sleep(key)
        try:
            moment = parse_until(until, what=f"sleep_until {step_id!r} time")
        except ValueError as exc:
            raise NonRetriableError(str(exc)) from None
        self._plan_sleep(key, step_id, moment)

    def _resume_sleep(self, key: str) -> None:
        # The executor completes due sleeps before a pass, so a memo here means it has elapsed.
        self._visit(key)

    def _plan_sleep(self, key: str, step_id: str, until: datetime) -> None:
        if until - clock.now() > MAX_SLEEP:
            raise NonRetriableError(
                f"sleep {step_id!r} until {until.isoformat()} is longer than the limit of 366 days"
            )
        self._new_step(key)
        self.runner.plan_sleep(key, until)
        self._mark_completed(key)

    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: timedelta | int | str | None = None,
        if_exp: str | None = None,
        match: str | None = None,
    ) -> Event | None:
        """Pause until an event named `event` arrives after this call, or return None at `timeout`.

        `match="data.user_id"` requires `event.data.user_id == async.data.user_id`, where
        `event` is the run's trigger and `async` the candidate; `if_exp` is a CEL expression
        over the same two names.
        """
        key = self._key(step_id)
        self._check_nesting(key)
        memo = self._memos.get(key)
        if memo is not None:
            self._visit(key)
            if memo.status == StepStatus.WAITING:
                raise WaitPlanned(key, memo.wake_at, persisted=False)
            return None if memo.output is None else _load_memo(key, memo, Event)
        if not isinstance(event, str) or not event.strip() or event.endswith("*"):
            raise NonRetriableError(
                f"wait_for_event {step_id!r}: event must be an event name, got {event!r}"
            )
        if match is not None and (not isinstance(match, str) or not MATCH_PATH.match(match)):
            raise NonRetriableError(
                f"wait_for_event {step_id!r}: match must be a field path such as "
                f"'data.user_id', got {match!r}"
            )
        if if_exp is not None:
            try:
                Expression(if_exp)
            except InvalidExpressionError as exc:
                raise NonRetriableError(f"wait_for_event {step_id!r}: {exc}") from None
        if timeout is None:
            # Required, as in Inngest; checked here so the run fails at once, not on retries.
            raise NonRetriableError(f"wait_for_event {step_id!r} needs a timeout")
        until = self._deadline(timeout, f"wait_for_event {step_id!r} timeout")
        self._new_step(key)
        self.runner.plan_wait(key, event=event, until=until, if_exp=if_exp, match=match)

    def invoke(
        self,
        step_id: str,
        *,
        function: Any,
        data: Mapping[str, Any] | BaseModel | None = None,
        timeout: timedelta | int | str | None = None,
    ) -> Any:
        """Start `function` with `data`, wait for it without holding a worker, return its output.

        Raises:
            NonRetriableError: The invoked run failed, was cancelled, timed out (default one
                year), or the function does not exist.
        """
        key = self._key(step_id)
        self._check_nesting(key)
        memo = self._memos.get(key)
        output_type = getattr(function, "output_type", None)
        if memo is not None:
            self._visit(key)
            if memo.status == StepStatus.WAITING:
                raise WaitPlanned(key, memo.wake_at, persisted=False)
            if memo.status == StepStatus.FAILED:
                raise NonRetriableError((memo.error or {}).get("message", "invoke failed"))
            return _load_memo(key, memo, output_type)
        function_id = function if isinstance(function, str) else getattr(function, "id", None)
        if not isinstance(function_id, str) or not function_id:
            raise NonRetriableError(
                f"invoke {step_id!r}: function must be a Function or a function id, "
                f"got {function!r}"
            )
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise NonRetriableError(
                f"invoke {step_id!r}: data must be a JSON object, not {type(data).__name__}"
            )
        if timeout is None:
            until = clock.now() + DEFAULT_INVOKE_TIMEOUT
        else:
            until = self._deadline(timeout, f"invoke {step_id!r} timeout")
        self._new_step(key)
        self.runner.plan_invoke(key, function_id=function_id, data=dict(data), until=until)

    def _deadline(self, duration: timedelta | int | str, what: str) -> datetime:
        try:
            delta = parse_duration(duration, what=what)
        except ValueError as exc:
            raise NonRetriableError(str(exc)) from None
        if delta > MAX_SLEEP:
            raise NonRetriableError(f"{what} of {delta} is longer than the limit of 366 days")
        return clock.now() + delta
