"""Function objects behind `client.create_function`, validated when they are declared."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from .exceptions import InvalidFunctionConfigError
from .expressions import Expression
from .flow_options import FlowConfigError, FlowOptions
from .schemas.config import Cancel, Timeouts, TriggerCron, TriggerEvent

if TYPE_CHECKING:
    from .client import Inngest
    from .context import Context

Handler = Callable[["Context"], Any]
MAX_TRIGGERS = 10
MAX_CANCEL_RULES = 5
FAILED_EVENT = "inngest/function.failed"
FINISHED_EVENT = "inngest/function.finished"
CANCELLED_EVENT = "inngest/function.cancelled"
INVOKED_EVENT = "inngest/function.invoked"
SCHEDULED_EVENT = "inngest/scheduled.timer"
DEFERRED_EVENT = "inngest/deferred.schedule"
# Options create_function takes that create_defer refuses: a deferred function is started
# only by ctx.defer, one call at a time, and its failures never reach an on_failure handler.
_NOT_FOR_DEFER = ("trigger", "on_failure", "batch_events")

FLOW_OPTIONS = (
    "concurrency",
    "throttle",
    "rate_limit",
    "debounce",
    "priority",
    "singleton",
    "idempotency",
    "batch_events",
)


class Function:
    """A registered durable function: its slug, triggers, retries and handler."""

    # Whether a pass may run inside a commit group that earlier passes on its thread opened.
    # A handler whose user code runs outside any step (a django.tasks task is one call) would
    # hold the group's transaction, and on SQLite the one write lock, for as long as it runs.
    shares_commit_groups = True

    def __init__(
        self,
        *,
        app_id: str,
        fn_id: str,
        handler: Handler,
        triggers: Sequence[TriggerEvent | TriggerCron],
        name: str | None = None,
        retries: int | None = None,
        output_type: Any = None,
        on_failure: Handler | None = None,
        default_retries: int = 4,
        cancel: Sequence[Cancel] | None = None,
        timeouts: Timeouts | None = None,
        flow: dict[str, Any] | None = None,
    ) -> None:
        _check_id(fn_id)
        self.app_id = app_id
        self.local_id = fn_id
        self.id = f"{app_id}-{fn_id}"
        self.name = name or fn_id
        self.handler = handler
        # An `async def` handler awaits its step tools; the worker runs many such runs at once.
        self.is_async = inspect.iscoroutinefunction(handler)
        self.qualified_name = f"{handler.__module__}.{handler.__qualname__}"
        self.output_type = output_type
        self.retries = self._check_retries(default_retries if retries is None else retries)
        self.triggers = self._check_triggers(triggers)
        self.cancel = self._check_cancel(cancel)
        if timeouts is not None and not isinstance(timeouts, Timeouts):
            raise self._fail(f"timeouts must be a Timeouts, got {timeouts!r}")
        self.timeouts = timeouts
        try:
            self.flow = FlowOptions.build(flow or {})
        except FlowConfigError as exc:
            raise self._fail(str(exc)) from None
        if self.flow.batch is not None and self.cancel:
            raise self._fail("batch_events cannot be combined with cancel rules")
        self.event_triggers = [t for t in self.triggers if isinstance(t, TriggerEvent)]
        self.cron_triggers = [t for t in self.triggers if isinstance(t, TriggerCron)]
        self._expressions = {
            i: Expression(t.expression) for i, t in enumerate(self.event_triggers) if t.expression
        }
        self.on_failure_fn: Function | None = None
        if on_failure is not None:
            self.on_failure_fn = Function(
                app_id=app_id,
                fn_id=f"{fn_id}-failure",
                handler=on_failure,
                name=f"{self.name} (failure)",
                triggers=[
                    TriggerEvent(
                        event=FAILED_EVENT, expression=f"event.data.function_id == '{self.id}'"
                    )
                ],
                retries=0,
            )

    def __repr__(self) -> str:
        return f"<Function {self.id}>"

    def _fail(self, message: str) -> InvalidFunctionConfigError:
        return InvalidFunctionConfigError(
            f"Function {self.id!r} ({self.qualified_name}): {message}"
        )

    def _check_retries(self, retries: int) -> int:
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
            raise self._fail(f"retries must be an int from 0 to 20, got {retries!r}")
        return retries

    def _check_triggers(self, triggers: Any) -> list[TriggerEvent | TriggerCron]:
        if isinstance(triggers, TriggerEvent | TriggerCron):
            triggers = [triggers]
        if not isinstance(triggers, list | tuple) or not triggers:
            raise self._fail("trigger must be a TriggerEvent, a TriggerCron or a list of them")
        if len(triggers) > MAX_TRIGGERS:
            raise self._fail(f"has {len(triggers)} triggers; the limit is {MAX_TRIGGERS}")
        for trigger in triggers:
            if not isinstance(trigger, TriggerEvent | TriggerCron):
                raise self._fail(f"trigger {trigger!r} is not a TriggerEvent or TriggerCron")
        crons = [t.cron for t in triggers if isinstance(t, TriggerCron)]
        if len(crons) != len(set(crons)):
            raise self._fail("has the same cron trigger twice")
        return list(triggers)

    def _check_cancel(self, cancel: Any) -> list[Cancel]:
        if cancel is None:
            return []
        if isinstance(cancel, Cancel):
            cancel = [cancel]
        if not isinstance(cancel, list | tuple) or not all(isinstance(c, Cancel) for c in cancel):
            raise self._fail("cancel must be a Cancel or a list of them")
        if len(cancel) > MAX_CANCEL_RULES:
            raise self._fail(f"has {len(cancel)} cancel rules; the limit is {MAX_CANCEL_RULES}")
        return list(cancel)

    def listens_to(self, name: str) -> bool:
        """Return True if an event trigger names `name`, whatever its expression."""
        return any(_name_matches(trigger.event, name) for trigger in self.event_triggers)

    def matches(self, event_json: dict[str, Any]) -> bool:
        """Return True if any event trigger matches this event, expression included."""
        variables = {"event": event_json}
        for index, trigger in enumerate(self.event_triggers):
            if not _name_matches(trigger.event, event_json["name"]):
                continue
            expression = self._expressions.get(index)
            if expression is None or expression.matches(variables):
                return True
        return False


class DeferredFunction(Function):
    """A function with no trigger, started only by `ctx.defer`; `schema` types its data."""

    def __init__(self, *, schema: type[BaseModel] | None = None, **kwargs: Any) -> None:
        super().__init__(triggers=(), **kwargs)
        if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise self._fail(f"schema must be a pydantic model class, got {schema!r}")
        self.schema = schema

    def __repr__(self) -> str:
        return f"<DeferredFunction {self.id}>"

    def _check_triggers(self, triggers: Any) -> list[TriggerEvent | TriggerCron]:
        return []


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return pattern == name


def _check_id(fn_id: Any) -> None:
    if not isinstance(fn_id, str) or not fn_id.strip():
        raise InvalidFunctionConfigError(f"fn_id must be a non-empty string, got {fn_id!r}")
    if any(ch in fn_id for ch in "'\\\n\r"):
        raise InvalidFunctionConfigError(f"fn_id {fn_id!r} must not contain quotes or newlines")


def build_function(
    client: Inngest, handler: Handler, *, fn_id: str, trigger: Any, **options: Any
) -> Function:
    """Validate `options` and return the Function for `handler`."""
    _check_options(fn_id, options)
    try:
        return Function(
            app_id=client.app_id,
            fn_id=fn_id,
            handler=handler,
            triggers=trigger,
            name=options.get("name"),
            retries=options.get("retries"),
            output_type=options.get("output_type"),
            on_failure=options.get("on_failure"),
            default_retries=client.default_retries,
            cancel=options.get("cancel"),
            timeouts=options.get("timeouts"),
            flow={name: options.get(name) for name in FLOW_OPTIONS},
        )
    except ValidationError as exc:
        raise InvalidFunctionConfigError(f"Function {fn_id!r}: {exc}") from exc


def build_deferred_function(
    client: Inngest,
    handler: Handler,
    *,
    fn_id: str,
    schema: type[BaseModel] | None = None,
    **options: Any,
) -> DeferredFunction:
    """Validate `options` and return the DeferredFunction for `handler`."""
    refused = [name for name in _NOT_FOR_DEFER if name in options]
    if refused:
        raise InvalidFunctionConfigError(
            f"Deferred function {fn_id!r}: create_defer does not take {', '.join(refused)}; "
            "a deferred function is started only by ctx.defer(...), and its failures never "
            "reach an on_failure handler"
        )
    _check_options(fn_id, options)
    return DeferredFunction(
        app_id=client.app_id,
        fn_id=fn_id,
        handler=handler,
        schema=schema,
        name=options.get("name"),
        retries=options.get("retries"),
        output_type=options.get("output_type"),
        default_retries=client.default_retries,
        cancel=options.get("cancel"),
        timeouts=options.get("timeouts"),
        flow={name: options.get(name) for name in FLOW_OPTIONS},
    )


def _check_options(fn_id: str, options: dict[str, Any]) -> None:
    known = {
        "name",
        "retries",
        "output_type",
        "on_failure",
        "cancel",
        "timeouts",
        *FLOW_OPTIONS,
    }
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidFunctionConfigError(
            f"Function {fn_id!r}: unknown option(s) {', '.join(unknown)}"
        )
