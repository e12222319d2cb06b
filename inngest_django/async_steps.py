"""`ctx.step` and `ctx.group` for `async def` handlers: awaitable step tools over the same memos."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from . import clock
from ._interrupts import Interrupt, StepPlanned
from .enums import StepOp
from .experiment import Strategy
from .group import ExperimentResult, Group, _results, check_branches
from .schemas.events import Event
from .steps import PlannedStep, Step, is_async_callable

T = TypeVar("T")


def on_orm_thread(fn: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Return `fn` as an awaitable run on the thread that owns the pass's database connection."""
    # thread_sensitive: under async_to_sync that is the thread that called it, so the step's
    # writes and its memo share one connection (and one transaction) with the rest of the pass.
    return sync_to_async(fn, thread_sensitive=True)


class Recorded:
    """A sync stand-in for an awaited step callable: returns its result, or raises its error."""

    def __init__(
        self, started_at: datetime, result: Any = None, error: BaseException | None = None
    ):
        self.started_at = started_at
        self.result = result
        self.error = error

    def __call__(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


async def await_step(fn: Callable[..., Any], args: tuple[Any, ...]) -> Recorded:
    """Await an async step callable on the event loop; return what it did, to record."""
    started = clock.now()
    try:
        return Recorded(started, await fn(*args))
    except Interrupt:
        raise
    except Exception as exc:
        return Recorded(started, error=exc)


class AsyncStep(Step):
    """`ctx.step` of an async handler: `await ctx.step.run(...)` and the other tools, awaited.

    An async step callable runs on the event loop, outside any transaction; its result (or
    error) is then recorded in a transaction of its own. A sync callable runs on the pass's
    database thread with its memo in one transaction, as in a sync handler.
    """

    async def run(  # type: ignore[override]
        self, step_id: str, fn: Callable[..., Any], *args: Any, output_type: Any = None
    ) -> Any:
        """Run `fn(*args)` (sync or async) once, durably; later passes return its memo."""
        key = self._key(step_id)
        found, output = self._recall(key, output_type)
        if found:
            return output
        self._new_step(key)
        self._plan(PlannedStep(key, fn, args, output_type, StepOp.RUN))
        with self.running(key):
            if is_async_callable(fn) and not self._stubbed(key):
                recorded = await await_step(fn, args)
                result = await on_orm_thread(self.runner.run_step)(
                    key, recorded, (), output_type, StepOp.RUN
                )
            else:
                result = await on_orm_thread(self.runner.run_step)(
                    key, fn, args, output_type, StepOp.RUN
                )
        self._mark_completed(key)
        return result

    def _stubbed(self, key: str) -> bool:
        """Return True if run_function has a stub for `key`: the callable must not run."""
        stubbed = getattr(self.runner, "stubbed", None)
        return bool(stubbed and stubbed(key))

    async def send_event(self, step_id: str, events: Any) -> list[str]:  # type: ignore[override]
        """Send one event or a list, once: a replay returns the ids sent the first time."""
        return await on_orm_thread(super().send_event)(step_id, events)

    async def sleep(self, step_id: str, duration: timedelta | int | str) -> None:  # type: ignore[override]
        """Pause the run for `duration`."""
        await on_orm_thread(super().sleep)(step_id, duration)

    async def sleep_until(self, step_id: str, until: datetime | str) -> None:  # type: ignore[override]
        """Pause the run until `until`."""
        await on_orm_thread(super().sleep_until)(step_id, until)

    async def wait_for_event(self, step_id: str, **options: Any) -> Event | None:  # type: ignore[override]
        """Pause until a matching event arrives, or return None at the timeout."""
        return await on_orm_thread(super().wait_for_event)(step_id, **options)

    async def invoke(self, step_id: str, **options: Any) -> Any:  # type: ignore[override]
        """Start a function, wait for it without holding a worker, return its output."""
        return await on_orm_thread(super().invoke)(step_id, **options)


class AsyncGroup(Group):
    """`ctx.group` of an async handler: `await ctx.group.parallel(...)` and experiments."""

    async def parallel(self, callables: Sequence[Callable[[], Awaitable[Any]]]) -> tuple[Any, ...]:  # type: ignore[override]
        """Run the callables' steps side by side and return their results in order.

        Async step callables run together on the event loop, sync ones on a thread pool, each
        recorded in its own transaction; see Group.parallel for the rounds.
        """
        check_branches(callables, self._step)
        side_by_side = getattr(self._step.runner, "arun_side_by_side", None)
        if side_by_side is None:
            return tuple([await fn() for fn in callables])
        while True:
            before = self._step.snapshot()
            planned: list[PlannedStep] = []
            outcomes: list[tuple[bool, Any]] = []
            with self._step.planning(planned):
                for fn in callables:
                    outcomes.append(await _outcome(fn))
            if not planned:
                return _results(outcomes)
            self._step.restore(before)
            await side_by_side(planned)

    async def experiment(  # type: ignore[override]
        self,
        experiment_id: str,
        *,
        variants: Mapping[str, Callable[[], Awaitable[T]]],
        select: Strategy,
    ) -> ExperimentResult[T]:
        """Choose a variant once per run, then await it; see Group.experiment."""
        variant = await on_orm_thread(self._choose)(experiment_id, variants, select)
        calls_before = self._step.calls
        result = await variants[variant]()
        return self._experiment_result(experiment_id, variant, result, calls_before)


async def _outcome(fn: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
    """Return (True, result) or (False, error) for an async branch, as group._outcome does."""
    try:
        return True, await fn()
    except StepPlanned:
        return True, None
    except Interrupt:
        raise
    except Exception as exc:
        return False, exc
