"""DeferBook: a pass's `ctx.defer` intents, held until the pass's next durable write."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .defer_rules import DeferHandle, DeferRules, IntentState
from .enums import DeferStatus
from .functions import DeferredFunction
from .models import DeferIntent

__all__ = ["DeferBook", "DeferHandle"]


class DeferBook(DeferRules):
    """One pass's view of its run's defer intents: what is stored, what waits to be written."""

    def __init__(self, run_id: str, function_id: str) -> None:
        super().__init__(run_id, function_id)
        self._stored: dict[str, IntentState] | None = None
        self._intents: dict[str, IntentState] = {}
        self._unsaved: dict[str, dict[str, Any]] = {}
        self._cancels: set[str] = set()

    # -- what the executor calls -------------------------------------------------------------

    def checkpoint(self) -> tuple[Any, ...]:
        """Return the book's state, to restore if the step that starts now rolls back."""
        return dict(self._intents), set(self._seen), dict(self._unsaved), set(self._cancels)

    def restore(self, checkpoint: tuple[Any, ...]) -> None:
        """Forget the calls made since `checkpoint`: their step's transaction rolled back."""
        intents, seen, unsaved, cancels = checkpoint
        # Rows loaded since the checkpoint are still stored: keep them.
        self._intents, self._seen = {**(self._stored or {}), **intents}, set(seen)
        self._unsaved, self._cancels = dict(unsaved), set(cancels)

    @property
    def may_have_pending(self) -> bool:
        """False only if no intent of the run can be pending: none stored earlier, none now."""
        if self._stored is None:
            return True
        return any(state.status == DeferStatus.PENDING for state in self._intents.values())

    def flush(self) -> None:
        """Write new intents and cancels; call inside the transaction of a durable write."""
        if self._unsaved:
            DeferIntent.objects.bulk_create(
                [
                    DeferIntent(
                        run_id=self.run_id,
                        defer_id=defer_id,
                        status=self._intents[defer_id].status,
                        **fields,
                    )
                    for defer_id, fields in self._unsaved.items()
                ]
            )
        if self._cancels:
            DeferIntent.objects.filter(
                run_id=self.run_id, defer_id__in=self._cancels, status=DeferStatus.PENDING
            ).update(status=DeferStatus.CANCELLED)
        self._unsaved, self._cancels = {}, set()

    def assume_nothing_stored(self) -> None:
        """Skip the read of stored intents: this is the run's first pass, so there are none."""
        if self._stored is None:
            self._stored = {}

    # -- where intents live ------------------------------------------------------------------

    def _state(self, defer_id: str) -> IntentState | None:
        if defer_id not in self._intents:
            self._load()
        return self._intents.get(defer_id)

    def _states(self) -> Iterable[IntentState]:
        self._load()
        return self._intents.values()

    def _known_before(self, defer_id: str) -> bool:
        return defer_id in (self._stored or {})

    def _accept(
        self, defer_id: str, function: DeferredFunction, payload: Any, experiment: Any, size: int
    ) -> None:
        self._intents[defer_id] = IntentState(DeferStatus.PENDING, size)
        self._unsaved[defer_id] = {
            "function_id": function.id,
            "payload": payload,
            "experiment": experiment.model_dump() if experiment is not None else None,
            "size": size,
            "reason": "",
        }

    def _reject(self, defer_id: str, target: str, reason: str) -> None:
        self._intents[defer_id] = IntentState(DeferStatus.REJECTED, 0)
        self._unsaved[defer_id] = {
            "function_id": target,
            "payload": None,
            "experiment": None,
            "size": 0,
            "reason": reason,
        }

    def _mark_cancelled(self, defer_id: str, state: IntentState) -> None:
        self._intents[defer_id] = IntentState(DeferStatus.CANCELLED, state.size)
        if defer_id not in self._unsaved:
            self._cancels.add(defer_id)

    def load(self) -> None:
        """Read the stored intents now, if not yet read (async passes: not from the loop)."""
        self._load()

    def _load(self) -> None:
        if self._stored is not None:
            return
        rows = DeferIntent.objects.filter(run_id=self.run_id).values_list(
            "defer_id", "status", "size"
        )
        self._stored = {defer_id: IntentState(status, size) for defer_id, status, size in rows}
        self._intents = {**self._stored, **self._intents}
