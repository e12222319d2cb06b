"""The `ctx` a handler receives: its event, run id, attempt, logger, step tools and defer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .async_steps import AsyncGroup, AsyncStep
from .group import Group
from .schemas.defers import ExperimentRef, Parent
from .schemas.events import Event
from .steps import Step

if TYPE_CHECKING:
    from .defer_rules import DeferHandle


class DeferRecorder(Protocol):
    """What the executor provides to record `ctx.defer` calls durably."""

    def defer(
        self, defer_id: Any, *, function: Any, data: Any = None, experiment: Any = None
    ) -> DeferHandle: ...


class ReplayAwareLogger(logging.LoggerAdapter):
    """A logger that stays quiet while a pass replays memoized steps, and tags the run id."""

    def __init__(self, logger: logging.Logger, run_id: str, step: Step) -> None:
        super().__init__(logger, {"run_id": run_id})
        self._step = step

    def isEnabledFor(self, level: int) -> bool:
        return not self._step.replaying and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {}).update(self.extra or {})
        return msg, kwargs


@dataclass
class Context:
    """Everything a handler gets: event(s), run id, attempt, logger, step, group, parents, defer."""

    event: Event
    run_id: str
    step: Step
    logger: logging.Logger | logging.LoggerAdapter
    attempt: int = 0
    events: list[Event] = field(default_factory=list)
    function_id: str = ""
    parents: list[Parent] = field(default_factory=list)
    group: Group = field(init=False)
    defers: DeferRecorder | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.events:
            self.events = [self.event]
        # An async handler's step tools are awaited, and so is its group's parallel.
        group = AsyncGroup if isinstance(self.step, AsyncStep) else Group
        self.group = group(self.step, self.run_id)

    def defer(
        self,
        defer_id: str,
        *,
        function: Any,
        data: Any = None,
        experiment: ExperimentRef | None = None,
    ) -> DeferHandle:
        """Start `function` with `data` once this run finishes, unless the handle is cancelled.

        Synchronous and fire-and-forget: a bad call is logged and skipped, never raised.
        """
        if self.defers is None:
            raise RuntimeError("ctx.defer needs a context built by the executor for a run")
        return self.defers.defer(defer_id, function=function, data=data, experiment=experiment)
