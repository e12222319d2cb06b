"""The `ctx` a handler receives: its event, run id, attempt, logger and step tools."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .schemas.events import Event
from .steps import Step


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
    """Everything a handler gets: `event`, `events`, `run_id`, `attempt`, `logger`, `step`."""

    event: Event
    run_id: str
    step: Step
    logger: logging.Logger | logging.LoggerAdapter
    attempt: int = 0
    events: list[Event] = field(default_factory=list)
    function_id: str = ""

    def __post_init__(self) -> None:
        if not self.events:
            self.events = [self.event]
