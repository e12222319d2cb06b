"""The rules of `ctx.defer`, shared by the database book and run_function's in-memory one."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .conf import app_settings
from .enums import DeferStatus
from .exceptions import NonRetriableError
from .functions import DeferredFunction
from .names import ENGINE_DATA_KEY, MAX_NAME_LENGTH
from .schemas.defers import ExperimentRef
from .serialization import OutputNotSerializableError, dump_value

logger = logging.getLogger("inngest_django.defers")


class DeferRejected(Exception):
    """A defer call that cannot go ahead; the reason is logged and the parent carries on."""

    def __init__(self, reason: str, *, level: int = logging.ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.level = level


@dataclass(frozen=True)
class IntentState:
    """What the rules need to know of one intent: its status and its payload's size."""

    status: str
    size: int


class DeferHandle:
    """What `ctx.defer` returns: `cancel()` (or `abort()`) drops the deferred run."""

    def __init__(self, book: DeferRules | None, defer_id: str) -> None:
        self._book = book
        self.defer_id = defer_id

    def __repr__(self) -> str:
        return f"<DeferHandle {self.defer_id!r}>"

    def cancel(self) -> None:
        """Drop the deferred run; idempotent, and harmless once the run has finished."""
        if self._book is not None:
            self._book.cancel(self.defer_id)

    abort = cancel


class DeferRules:
    """One pass's `ctx.defer`: ids, duplicates, validation, limits and log lines.

    Subclasses say where intents live: `_state()`, `_states()`, `_accept()`, `_reject()`
    and `_mark_cancelled()`; `_known_before()` tells a replayed call from a new duplicate.
    """

    def __init__(self, run_id: str, function_id: str) -> None:
        self.run_id = run_id
        self.function_id = function_id
        self.closed = False
        self._seen: set[str] = set()

    # -- the calls a handler makes -----------------------------------------------------------

    def defer(
        self, defer_id: Any, *, function: Any, data: Any = None, experiment: Any = None
    ) -> DeferHandle:
        """Record a deferred run of `function`; never raises, logs and skips bad calls."""
        try:
            return self._defer(defer_id, function, data, experiment)
        except Exception:
            logger.exception(
                "Defer skipped: unexpected error run_id=%s defer_id=%s",
                self.run_id,
                defer_id,
                extra={"run_id": self.run_id, "defer_id": defer_id, "action": "defer_skipped"},
            )
            return DeferHandle(None, str(defer_id))

    def cancel(self, defer_id: str) -> None:
        """Mark a pending intent cancelled; ignored once the pass is over or for unknown ids."""
        state = self._state(defer_id)
        if self.closed or state is None or state.status != DeferStatus.PENDING:
            return
        self._mark_cancelled(defer_id, state)
        self._log(logging.INFO, "Defer cancelled", defer_id, "defer_cancelled")

    def close(self) -> None:
        """Ignore every later call: the pass is over."""
        self.closed = True

    # -- where intents live (subclasses) -----------------------------------------------------

    def _state(self, defer_id: str) -> IntentState | None:
        raise NotImplementedError

    def _states(self) -> Iterable[IntentState]:
        raise NotImplementedError

    def _known_before(self, defer_id: str) -> bool:
        raise NotImplementedError

    def _accept(
        self, defer_id: str, function: DeferredFunction, payload: Any, experiment: Any, size: int
    ) -> None:
        raise NotImplementedError

    def _reject(self, defer_id: str, target: str, reason: str) -> None:
        raise NotImplementedError

    def _mark_cancelled(self, defer_id: str, state: IntentState) -> None:
        raise NotImplementedError

    # -- the rules ---------------------------------------------------------------------------

    def _defer(self, defer_id: Any, function: Any, data: Any, experiment: Any) -> DeferHandle:
        unusable = call_problem(defer_id, closed=self.closed)
        if unusable is not None:
            level, message = unusable
            self._log(level, message, str(defer_id)[:MAX_NAME_LENGTH], "defer_skipped")
            return DeferHandle(None, str(defer_id))
        if defer_id in self._seen:
            # No `:N` suffix as steps get: a defer inside a step would change index on a retry.
            # The pass that recorded the first call warned; replays stay quiet.
            level = logging.DEBUG if self._known_before(defer_id) else logging.WARNING
            self._log(
                level,
                "Defer skipped: duplicate id within run, the first call wins",
                defer_id,
                "defer_duplicate",
            )
            return DeferHandle(None, defer_id)
        self._seen.add(defer_id)
        state = self._state(defer_id)
        if state is not None:
            # A replay reached a call an earlier pass recorded: the same intent.
            live = state.status != DeferStatus.REJECTED
            return DeferHandle(self if live else None, defer_id)
        target = str(getattr(function, "id", None) or repr(function))[:MAX_NAME_LENGTH]
        try:
            payload, size = validate_call(function, data, experiment)
            self._check_limits(size)
        except DeferRejected as skip:
            self._reject(defer_id, target, skip.reason)
            self._log(skip.level, f"Defer skipped: {skip.reason}", defer_id, "defer_rejected")
            return DeferHandle(None, defer_id)
        self._accept(defer_id, function, payload, experiment, size)
        return DeferHandle(self, defer_id)

    def _check_limits(self, size: int) -> None:
        """Raise DeferRejected past the per-defer, per-run count and per-run size limits."""
        if size > app_settings.MAX_DEFER_PAYLOAD_BYTES:
            raise DeferRejected(
                f"payload is {size} bytes, over the limit of "
                f"{app_settings.MAX_DEFER_PAYLOAD_BYTES} bytes (MAX_DEFER_PAYLOAD_BYTES)",
                level=logging.WARNING,
            )
        live = [s for s in self._states() if s.status != DeferStatus.REJECTED]
        if len(live) >= app_settings.MAX_DEFERS_PER_RUN:
            raise DeferRejected(
                f"the run already made {len(live)} defers, the limit (MAX_DEFERS_PER_RUN)",
                level=logging.WARNING,
            )
        # Cancelled intents release their bytes, as in Inngest.
        total = size + sum(s.size for s in live if s.status == DeferStatus.PENDING)
        limit = app_settings.MAX_DEFER_PAYLOAD_BYTES_PER_RUN
        if total > limit:
            raise DeferRejected(
                f"the run's pending defer payloads would be {total} bytes, over the limit of "
                f"{limit} bytes (MAX_DEFER_PAYLOAD_BYTES_PER_RUN)",
                level=logging.WARNING,
            )

    def _log(self, level: int, message: str, defer_id: Any, action: str) -> None:
        logger.log(
            level,
            message + " run_id=%s function_id=%s defer_id=%s",
            self.run_id,
            self.function_id,
            defer_id,
            extra={"run_id": self.run_id, "defer_id": defer_id, "action": action},
        )


def call_problem(defer_id: Any, *, closed: bool) -> tuple[int, str] | None:
    """Return the log level and message of a call that cannot be recorded at all, or None."""
    if closed:
        return logging.WARNING, "Defer skipped: the run's pass is over"
    if not isinstance(defer_id, str) or not defer_id.strip():
        return (
            logging.ERROR,
            f"Defer skipped: defer id must be a non-empty string, got {defer_id!r}",
        )
    if len(defer_id) > MAX_NAME_LENGTH:
        return logging.ERROR, f"Defer skipped: id is longer than {MAX_NAME_LENGTH} characters"
    return None


def validate_call(function: Any, data: Any, experiment: Any) -> tuple[Any, int]:
    """Return the payload as stored JSON and its size; raise DeferRejected for a bad call."""
    if not isinstance(function, DeferredFunction):
        raise DeferRejected(f"function {function!r} was not created with create_defer")
    if experiment is not None and not isinstance(experiment, ExperimentRef):
        raise DeferRejected(
            f"experiment must be an ExperimentRef (from ctx.group.experiment), "
            f"not {type(experiment).__name__}"
        )
    if data is None:
        data = {}
    if function.schema is not None:
        data = _validate_schema(function, data)
    elif isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if not isinstance(data, Mapping):
        raise DeferRejected(f"data must be a JSON object (a dict), not {type(data).__name__}")
    if ENGINE_DATA_KEY in data:
        raise DeferRejected(f"data must not use the reserved key {ENGINE_DATA_KEY!r}")
    try:
        return dump_value(dict(data))
    except OutputNotSerializableError as exc:
        # The encoder's own words when it refused a type; else why the JSON cannot be stored.
        raise DeferRejected(f"data is not JSON-serializable: {exc.__cause__ or exc}") from None


def validate_received(function: DeferredFunction, payload: dict[str, Any]) -> Any:
    """Return the payload as the handler sees it; a schema mismatch fails without retries."""
    if function.schema is None:
        return payload
    try:
        return function.schema.model_validate(payload)
    except ValidationError as exc:
        raise NonRetriableError(
            f"defer handler {function.id!r} schema validation failed: {_issues(exc)}"
        ) from None


def _validate_schema(function: DeferredFunction, data: Any) -> Any:
    schema = function.schema
    assert schema is not None
    try:
        value = schema.model_validate(data)
    except ValidationError as exc:
        raise DeferRejected(f"schema validation failed: {_issues(exc)}") from None
    pending = _awaitables(value)
    if pending:
        for awaitable in pending:
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()  # an unawaited coroutine would warn at garbage collection
        raise DeferRejected(
            f"schema {schema.__name__} has an asynchronous validator; ctx.defer is synchronous, "
            "so its schema must validate synchronously"
        )
    try:
        return value.model_dump(mode="json")
    except Exception as exc:  # pydantic's serialization errors have no common base to name
        raise DeferRejected(f"data is not JSON-serializable: {exc}") from None


def _awaitables(value: Any) -> list[Any]:
    if inspect.isawaitable(value):
        return [value]
    if isinstance(value, BaseModel):
        return [a for v in value.__dict__.values() for a in _awaitables(v)]
    if isinstance(value, Mapping):
        return [a for v in value.values() for a in _awaitables(v)]
    if isinstance(value, list | tuple | set | frozenset):
        return [a for v in value for a in _awaitables(v)]
    return []


def _issues(exc: ValidationError) -> str:
    # Without the input: it may be megabytes, or a payload that encryption keeps out of sight.
    issues = exc.errors(include_url=False, include_context=False, include_input=False)
    return json.dumps(issues, default=str)
