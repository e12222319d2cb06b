"""Step tools: memo lookup, `:N` step keys and interrupts; never touches the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from . import clock
from .durations import MAX_SLEEP, parse_duration, parse_until
from .enums import StepStatus
from .exceptions import LimitExceededError, NonRetriableError, StepError
from .serialization import load_value

T = TypeVar("T")


@dataclass
class Memo:
    """What a step row says about one step key."""

    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0


class StepRunner(Protocol):
    """What the executor provides to run and record steps durably."""

    def run_step(
        self, step_key: str, fn: Callable[..., Any], args: tuple[Any, ...], output_type: Any
    ) -> Any: ...

    def plan_sleep(self, step_key: str, until: datetime) -> None: ...


class Step:
    """`ctx.step`: durable step tools over the run's memos."""

    def __init__(self, memos: dict[str, Memo], runner: StepRunner, *, max_steps: int) -> None:
        self._memos = memos
        self._runner = runner
        self._max_steps = max_steps
        self._seen: Counter[str] = Counter()
        self._calls = 0
        self._current: str | None = None
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
        if self._current is not None:
            raise NonRetriableError(
                f"Nested steps are not supported: step {key!r} was called inside step "
                f"{self._current!r}"
            )

    def _check_limit(self, key: str) -> None:
        if key not in self._memos and len(self._memos) >= self._max_steps:
            raise LimitExceededError(
                f"run reached the limit of {self._max_steps} steps per run at step {key!r} "
                "(MAX_STEPS_PER_RUN)",
                limit="MAX_STEPS_PER_RUN",
            )

    def run(self, step_id: str, fn: Callable[..., T], *args: Any, output_type: Any = None) -> T:
        """Run `fn(*args)` once, durably; later passes return its memoized output.

        Raises:
            StepError: The step failed for good (retries spent) in this or an earlier pass.
        """
        key = self._key(step_id)
        self._check_nesting(key)
        memo = self._memos.get(key)
        self._visit(key)
        if memo is not None and memo.status == StepStatus.COMPLETED:
            return load_value(memo.output, output_type)
        if memo is not None and memo.status == StepStatus.FAILED:
            error = memo.error or {}
            raise StepError(
                error.get("message", ""), error.get("name", "Error"), error.get("stack", "")
            )
        self._check_limit(key)
        self._current = key
        try:
            result = self._runner.run_step(key, fn, args, output_type)
        finally:
            self._current = None
        self._memos[key] = Memo(status=StepStatus.COMPLETED)
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
        self._check_limit(key)
        self._runner.plan_sleep(key, until)
        self._memos[key] = Memo(status=StepStatus.COMPLETED)
