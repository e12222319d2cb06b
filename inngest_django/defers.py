"""`ctx.defer` bookkeeping: validate each call, hold intents until the pass's next durable write."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from pydantic import BaseModel, ValidationError

from .conf import app_settings
from .enums import DeferStatus
from .exceptions import NonRetriableError
from .functions import DeferredFunction
from .models import DeferIntent
from .schemas.defers import ExperimentRef, Parent

logger = logging.getLogger(__name__)

# The key under which a deferred run's event carries its parent; stripped before the handler.
META_KEY = "_inngest"
MAX_DEFER_ID_LENGTH = 255


class DeferRejected(Exception):
    """A defer call that cannot go ahead; the reason is logged and the parent carries on."""

    def __init__(self, reason: str, *, level: int = logging.ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.level = level


@dataclass(frozen=True)
class _State:
    status: str
    size: int


class DeferHandle:
    """What `ctx.defer` returns: `cancel()` (or `abort()`) drops the deferred run."""

    def __init__(self, book: DeferBook | None, defer_id: str) -> None:
        self._book = book
        self.defer_id = defer_id

    def __repr__(self) -> str:
        return f"<DeferHandle {self.defer_id!r}>"

    def cancel(self) -> None:
        """Drop the deferred run; idempotent, and harmless once the run has finished."""
        if self._book is not None:
            self._book.cancel(self.defer_id)

    abort = cancel


class DeferBook:
    """One pass's view of its run's defer intents: what is stored, what waits to be written."""

    def __init__(self, run_id: str, function_id: str) -> None:
        self.run_id = run_id
        self.function_id = function_id
        self.closed = False
        self._stored: dict[str, _State] | None = None
        self._intents: dict[str, _State] = {}
        self._seen: set[str] = set()
        self._unsaved: dict[str, dict[str, Any]] = {}
        self._cancels: set[str] = set()

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
        """Mark a pending intent cancelled; written with the pass's next durable write."""
        state = self._intents.get(defer_id)
        if self.closed or state is None or state.status != DeferStatus.PENDING:
            return
        self._intents[defer_id] = _State(DeferStatus.CANCELLED, state.size)
        if defer_id not in self._unsaved:
            self._cancels.add(defer_id)
        self._log(logging.INFO, "Defer cancelled", defer_id, "defer_cancelled")

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
    def has_writes(self) -> bool:
        return bool(self._unsaved or self._cancels)

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

    def close(self) -> None:
        """Ignore every later call: the pass is over."""
        self.closed = True

    # -- helpers -----------------------------------------------------------------------------

    def _load(self) -> None:
        if self._stored is not None:
            return
        rows = DeferIntent.objects.filter(run_id=self.run_id).values_list(
            "defer_id", "status", "size"
        )
        self._stored = {defer_id: _State(status, size) for defer_id, status, size in rows}
        self._intents = {**self._stored, **self._intents}

    def _defer(self, defer_id: Any, function: Any, data: Any, experiment: Any) -> DeferHandle:
        unusable = call_problem(defer_id, closed=self.closed)
        if unusable is not None:
            level, message = unusable
            self._log(level, message, str(defer_id)[:MAX_DEFER_ID_LENGTH], "defer_skipped")
            return DeferHandle(None, str(defer_id))
        if defer_id in self._seen:
            # No `:N` suffix as steps get: a defer inside a step would change index on a retry.
            # The pass that recorded the first call warned; replays stay quiet.
            level = logging.DEBUG if defer_id in (self._stored or {}) else logging.WARNING
            self._log(
                level,
                "Defer skipped: duplicate id within run, the first call wins",
                defer_id,
                "defer_duplicate",
            )
            return DeferHandle(None, defer_id)
        self._seen.add(defer_id)
        self._load()
        if defer_id in self._intents:
            # A replay reached a call an earlier pass recorded: the same intent.
            return DeferHandle(self, defer_id)
        target = str(getattr(function, "id", None) or repr(function))[:255]
        try:
            payload, experiment_json, size = validate_call(function, data, experiment)
            self._check_limits(size)
        except DeferRejected as skip:
            self._add(defer_id, target, DeferStatus.REJECTED, reason=skip.reason)
            self._log(skip.level, f"Defer skipped: {skip.reason}", defer_id, "defer_rejected")
            return DeferHandle(None, defer_id)
        self._add(
            defer_id,
            target,
            DeferStatus.PENDING,
            payload=payload,
            experiment=experiment_json,
            size=size,
        )
        return DeferHandle(self, defer_id)

    def _check_limits(self, size: int) -> None:
        if size > app_settings.MAX_DEFER_PAYLOAD_BYTES:
            raise DeferRejected(
                f"payload is {size} bytes, over the limit of "
                f"{app_settings.MAX_DEFER_PAYLOAD_BYTES} bytes (MAX_DEFER_PAYLOAD_BYTES)",
                level=logging.WARNING,
            )
        live = [s for s in self._intents.values() if s.status != DeferStatus.REJECTED]
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

    def _add(
        self,
        defer_id: str,
        target: str,
        status: str,
        *,
        payload: Any = None,
        experiment: Any = None,
        size: int = 0,
        reason: str = "",
    ) -> None:
        self._intents[defer_id] = _State(status, size)
        self._unsaved[defer_id] = {
            "function_id": target,
            "payload": payload,
            "experiment": experiment,
            "size": size,
            "reason": reason,
        }

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
    if len(defer_id) > MAX_DEFER_ID_LENGTH:
        return logging.ERROR, f"Defer skipped: id is longer than {MAX_DEFER_ID_LENGTH} characters"
    return None


def validate_call(function: Any, data: Any, experiment: Any) -> tuple[Any, Any, int]:
    """Return the payload as stored JSON, the experiment as JSON, and the payload's size."""
    if not isinstance(function, DeferredFunction):
        raise DeferRejected(f"function {function!r} was not created with create_defer")
    experiment_json = None
    if experiment is not None:
        if not isinstance(experiment, ExperimentRef):
            raise DeferRejected(
                f"experiment must be an ExperimentRef (from ctx.group.experiment), "
                f"not {type(experiment).__name__}"
            )
        experiment_json = experiment.model_dump()
    if data is None:
        data = {}
    if function.schema is not None:
        data = _validate_schema(function, data)
    elif isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if not isinstance(data, Mapping):
        raise DeferRejected(f"data must be a JSON object (a dict), not {type(data).__name__}")
    if META_KEY in data:
        raise DeferRejected(f"data must not use the reserved key {META_KEY!r}")
    try:
        text = json.dumps(dict(data), cls=DjangoJSONEncoder, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DeferRejected(f"data is not JSON-serializable: {exc}") from None
    return json.loads(text), experiment_json, len(text.encode())


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


# -- the deferred run's side -------------------------------------------------------------------


def event_data(intent: DeferIntent, parent_function_id: str) -> dict[str, Any]:
    """Return the data of a deferred run's event: the payload plus where it came from."""
    return {
        **(intent.payload or {}),
        META_KEY: {
            "fn_slug": intent.function_id,
            "defer_id": intent.defer_id,
            "parent_fn_slug": parent_function_id,
            "parent_run_id": intent.run_id,
            "experiment": intent.experiment,
        },
    }


def split_event_data(data: Mapping[str, Any]) -> tuple[dict[str, Any], Parent]:
    """Return a deferred run's payload and its Parent, from its event's data."""
    meta = data.get(META_KEY)
    if not isinstance(meta, Mapping) or not meta.get("parent_run_id"):
        raise NonRetriableError(
            f"deferred run's event has no {META_KEY!r} parent data; was it sent by hand?"
        )
    experiment = meta.get("experiment")
    parent = Parent(
        fn_slug=str(meta.get("parent_fn_slug", "")),
        run_id=str(meta["parent_run_id"]),
        experiment=ExperimentRef.model_validate(experiment) if experiment else None,
    )
    return {k: v for k, v in data.items() if k != META_KEY}, parent


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
