"""Rules the engine and `run_function` share: exceptions, invoke targets, the handler's event."""

from __future__ import annotations

import signal
import threading
from typing import Any

from ..exceptions import NonRetriableError, StepError
from ..functions import INVOKED_EVENT, DeferredFunction
from ..names import ENGINE_DATA_KEY
from ..registry import FunctionRegistry
from ..schemas.events import Event


def stops_the_process(exc: BaseException) -> bool:
    """Return True for a KeyboardInterrupt that may be a real Ctrl-C, which must stop drain()."""
    # Python turns SIGINT into KeyboardInterrupt only in the main thread, and only while its
    # default handler is installed: run_inngest_worker runs handlers in pool threads and handles
    # SIGINT itself, and django-q's workers ignore it. drain() runs handlers in its caller's.
    # Any other BaseException from user code (SystemExit, GeneratorExit, a user's own) fails
    # the step or handler like an Exception: escaping, it would crash the run after every lease.
    return (
        isinstance(exc, KeyboardInterrupt)
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


def error_for_handler(exc: BaseException, error: dict[str, Any]) -> BaseException:
    """Return what the handler sees of a step that failed for good: the error, or a StepError."""
    if isinstance(exc, NonRetriableError | StepError):
        return exc
    return StepError(error["message"], error["name"], error["stack"])


def invoke_refusal(registry: FunctionRegistry, function_id: str) -> str | None:
    """Return why `step.invoke` cannot start `function_id`, or None if it can."""
    if function_id not in registry:
        return f"no registered function has the id {function_id!r}"
    if isinstance(registry.get(function_id), DeferredFunction):
        return f"{function_id!r} is a deferred function, started only by ctx.defer"
    return None


def readable(event: Event) -> Event:
    """Return `event`, or raise NonRetriableError if its stored data is not a JSON object."""
    if not isinstance(event.data, dict):
        raise NonRetriableError(
            f"event {event.name!r} ({event.id}) data is a {type(event.data).__name__}, not a "
            "JSON object; was its row changed outside inngest_django?"
        )
    return event


def as_handler_sees(event: Event) -> Event:
    """Return `event` without the engine's data: an invoked run's caller stays out of sight."""
    if event.name != INVOKED_EVENT or ENGINE_DATA_KEY not in event.data:
        return event
    data = {k: v for k, v in event.data.items() if k != ENGINE_DATA_KEY}
    return event.model_copy(update={"data": data})
