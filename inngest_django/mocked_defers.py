"""The in-memory `ctx.defer` of run_function: validates and limits like the real recorder."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from .conf import app_settings
from .defers import (
    MAX_DEFER_ID_LENGTH,
    DeferHandle,
    DeferRejected,
    call_problem,
    validate_call,
)
from .functions import DeferredFunction
from .schemas.defers import ExperimentRef, Parent

defer_logger = logging.getLogger("inngest_django.defers")


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
    """The run's defer calls across passes, as the real recorder would have stored them."""

    def __init__(self) -> None:
        self.calls: dict[str, DeferCall] = {}
        self.sizes: dict[str, int] = {}
        self.rejected: dict[str, RejectedDefer] = {}


class MemoryDeferRecorder:
    """One pass's `ctx.defer`: validates and limits like the real recorder, in memory."""

    def __init__(self, defers: DeferLog, *, run_id: str, function_id: str) -> None:
        self._defers = defers
        self._run_id = run_id
        self._function_id = function_id
        self._earlier = set(defers.calls) | set(defers.rejected)
        self._seen: set[str] = set()
        self.closed = False

    def defer(
        self, defer_id: Any, *, function: Any, data: Any = None, experiment: Any = None
    ) -> DeferHandle:
        """Record a deferred run of `function`; never raises, logs and skips bad calls."""
        try:
            return self._defer(defer_id, function, data, experiment)
        except Exception:
            defer_logger.exception(
                "Defer skipped: unexpected error run_id=%s defer_id=%s", self._run_id, defer_id
            )
            return DeferHandle(None, str(defer_id))

    def cancel(self, defer_id: str) -> None:
        """Mark a call cancelled; ignored once the pass is over or for unknown ids."""
        call = self._defers.calls.get(defer_id)
        if self.closed or call is None or call.cancelled:
            return
        self._defers.calls[defer_id] = replace(call, cancelled=True)
        self._log(logging.INFO, "Defer cancelled", defer_id, "defer_cancelled")

    def checkpoint(self) -> tuple[Any, ...]:
        """Return the state to restore if the step that starts now fails."""
        defers = self._defers
        return dict(defers.calls), dict(defers.sizes), dict(defers.rejected), set(self._seen)

    def restore(self, checkpoint: tuple[Any, ...]) -> None:
        """Forget calls made since `checkpoint`: the real step's transaction rolled them back."""
        calls, sizes, rejected, seen = checkpoint
        self._defers.calls, self._defers.sizes, self._defers.rejected = calls, sizes, rejected
        self._seen = seen

    def close(self) -> None:
        """Ignore every later call: the pass is over."""
        self.closed = True

    def _defer(self, defer_id: Any, function: Any, data: Any, experiment: Any) -> DeferHandle:
        unusable = call_problem(defer_id, closed=self.closed)
        if unusable is not None:
            level, message = unusable
            self._log(level, message, str(defer_id)[:MAX_DEFER_ID_LENGTH], "defer_skipped")
            return DeferHandle(None, str(defer_id))
        if defer_id in self._seen:
            # The pass that recorded the first call warned; replays stay quiet.
            level = logging.DEBUG if defer_id in self._earlier else logging.WARNING
            self._log(
                level,
                "Defer skipped: duplicate id within run, the first call wins",
                defer_id,
                "defer_duplicate",
            )
            return DeferHandle(None, defer_id)
        self._seen.add(defer_id)
        if defer_id in self._defers.calls:
            return DeferHandle(self, defer_id)
        if defer_id in self._defers.rejected:
            return DeferHandle(None, defer_id)
        target = str(getattr(function, "id", None) or repr(function))[:255]
        try:
            payload, _, size = validate_call(function, data, experiment)
            self._check_limits(size)
        except DeferRejected as skip:
            self._defers.rejected[defer_id] = RejectedDefer(defer_id, target, skip.reason)
            self._log(skip.level, f"Defer skipped: {skip.reason}", defer_id, "defer_rejected")
            return DeferHandle(None, defer_id)
        self._defers.calls[defer_id] = DeferCall(
            defer_id=defer_id,
            function_id=target,
            data=payload,
            experiment=experiment,
            function=function,
            parent=Parent(fn_slug=self._function_id, run_id=self._run_id, experiment=experiment),
        )
        self._defers.sizes[defer_id] = size
        return DeferHandle(self, defer_id)

    def _check_limits(self, size: int) -> None:
        """Raise DeferRejected past the limits the real recorder enforces."""
        if size > app_settings.MAX_DEFER_PAYLOAD_BYTES:
            raise DeferRejected(
                f"payload is {size} bytes, over the limit of "
                f"{app_settings.MAX_DEFER_PAYLOAD_BYTES} bytes (MAX_DEFER_PAYLOAD_BYTES)",
                level=logging.WARNING,
            )
        calls = self._defers.calls
        if len(calls) >= app_settings.MAX_DEFERS_PER_RUN:
            raise DeferRejected(
                f"the run already made {len(calls)} defers, the limit (MAX_DEFERS_PER_RUN)",
                level=logging.WARNING,
            )
        pending = sum(self._defers.sizes[i] for i, call in calls.items() if not call.cancelled)
        limit = app_settings.MAX_DEFER_PAYLOAD_BYTES_PER_RUN
        if size + pending > limit:
            raise DeferRejected(
                f"the run's pending defer payloads would be {size + pending} bytes, over the "
                f"limit of {limit} bytes (MAX_DEFER_PAYLOAD_BYTES_PER_RUN)",
                level=logging.WARNING,
            )

    def _log(self, level: int, message: str, defer_id: Any, action: str) -> None:
        defer_logger.log(
            level,
            message + " run_id=%s function_id=%s defer_id=%s",
            self._run_id,
            self._function_id,
            defer_id,
            extra={"run_id": self._run_id, "defer_id": defer_id, "action": action},
        )
