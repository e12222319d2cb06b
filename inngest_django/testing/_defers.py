"""run_function's in-memory `ctx.defer`: the engine's defer rules, kept in a DeferLog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..defer_rules import DeferRules, IntentState
from ..enums import DeferStatus
from ..functions import DeferredFunction
from ..schemas.defers import ExperimentRef, Parent


@dataclass(frozen=True)
class DeferCall:
    """One accepted `ctx.defer` call: it starts once the run ends, unless it was cancelled.

    `function` and `parent` are what `run_function(call.function, data=call.data,
    parent=call.parent)` needs to run the deferred function next.
    """

    defer_id: str
    function_id: str
    data: dict[str, Any]
    experiment: ExperimentRef | None = None
    cancelled: bool = False
    function: DeferredFunction | None = field(default=None, compare=False, repr=False)
    parent: Parent | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RejectedDefer:
    """A `ctx.defer` call the real recorder refuses: logged and skipped, the run carries on."""

    defer_id: str
    function_id: str
    reason: str


class DeferLog:
    """The run's defer calls across passes, as the database book would have stored them."""

    def __init__(self) -> None:
        self.states: dict[str, IntentState] = {}
        self.calls: dict[str, DeferCall] = {}
        self.rejected: dict[str, RejectedDefer] = {}

    def copy(self) -> DeferLog:
        """Return a copy to restore if a step rolls back."""
        log = DeferLog()
        log.states, log.calls, log.rejected = (
            dict(self.states),
            dict(self.calls),
            dict(self.rejected),
        )
        return log


class MemoryDeferRecorder(DeferRules):
    """One pass's `ctx.defer` with the engine's rules, recorded in a DeferLog."""

    def __init__(self, log: DeferLog, *, run_id: str, function_id: str) -> None:
        super().__init__(run_id, function_id)
        self.log = log
        self._earlier = set(log.states)

    def checkpoint(self) -> tuple[DeferLog, set[str]]:
        """Return the state to restore if the step that starts now fails."""
        return self.log.copy(), set(self._seen)

    def restore(self, checkpoint: tuple[DeferLog, set[str]]) -> None:
        """Forget calls made since `checkpoint`: the real step's transaction rolled them back."""
        saved, seen = checkpoint
        self.log.states, self.log.calls, self.log.rejected = (
            saved.states,
            saved.calls,
            saved.rejected,
        )
        self._seen = seen

    def _state(self, defer_id: str) -> IntentState | None:
        return self.log.states.get(defer_id)

    def _states(self) -> Iterable[IntentState]:
        return self.log.states.values()

    def _known_before(self, defer_id: str) -> bool:
        return defer_id in self._earlier

    def _accept(
        self, defer_id: str, function: DeferredFunction, payload: Any, experiment: Any, size: int
    ) -> None:
        self.log.states[defer_id] = IntentState(DeferStatus.PENDING, size)
        self.log.calls[defer_id] = DeferCall(
            defer_id=defer_id,
            function_id=function.id,
            data=payload,
            experiment=experiment,
            function=function,
            parent=Parent(fn_slug=self.function_id, run_id=self.run_id, experiment=experiment),
        )

    def _reject(self, defer_id: str, target: str, reason: str) -> None:
        self.log.states[defer_id] = IntentState(DeferStatus.REJECTED, 0)
        self.log.rejected[defer_id] = RejectedDefer(defer_id, target, reason)

    def _mark_cancelled(self, defer_id: str, state: IntentState) -> None:
        self.log.states[defer_id] = IntentState(DeferStatus.CANCELLED, state.size)
        self.log.calls[defer_id] = replace(self.log.calls[defer_id], cancelled=True)
