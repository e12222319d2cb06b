"""Control flow that stops a pass of a handler; BaseException so user code cannot swallow it."""

from __future__ import annotations

from datetime import datetime


class Interrupt(BaseException):
    """Stop the current pass; the executor persists what the subclass describes."""


class SleepPlanned(Interrupt):
    """The handler reached a sleep that has not elapsed yet."""

    def __init__(self, step_key: str, until: datetime) -> None:
        super().__init__(step_key, until)
        self.step_key = step_key
        self.until = until


class WaitPlanned(Interrupt):
    """The handler reached a wait (an event or an invoked run) that has not resolved yet.

    `persisted` is False when a replay found the wait still pending: the executor must put
    the run back to waiting, as nothing was written this pass.
    """

    def __init__(self, step_key: str, until: datetime | None, *, persisted: bool) -> None:
        super().__init__(step_key, until)
        self.step_key = step_key
        self.until = until
        self.persisted = persisted


class RetryScheduled(Interrupt):
    """A step failed with retries left; the executor already recorded the next attempt."""

    def __init__(self, step_key: str, retry_at: datetime) -> None:
        super().__init__(step_key, retry_at)
        self.step_key = step_key
        self.retry_at = retry_at


class LeaseLost(Interrupt):
    """Another worker holds this run now; stop without writing anything."""


class DatabaseLost(Interrupt):
    """The connection died mid-step; stop without writing, the lease brings the run back."""


class RunCancelled(Interrupt):
    """Someone asked the run to stop; the executor finalizes it as cancelled."""


class StepPlanned(Interrupt):
    """A `group.parallel` branch reached a step with no memo; it runs beside the others."""
