"""inngest_django: Inngest-style durable functions that run from your Django database."""

from __future__ import annotations

from typing import Any

from . import experiment
from .client import Inngest, create_defer
from .context import Context
from .exceptions import (
    FunctionNotFoundError,
    InngestDjangoError,
    InvalidEventError,
    InvalidFunctionConfigError,
    NonRetriableError,
    RetryAfterError,
    StepError,
)
from .functions import DeferredFunction, Function
from .schemas.config import (
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    TriggerCron,
    TriggerEvent,
)
from .schemas.defers import ExperimentRef, Parent
from .schemas.events import Event

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Cancel",
    "Concurrency",
    "Context",
    "Debounce",
    "DeferHandle",
    "DeferredFunction",
    "Event",
    "ExperimentRef",
    "Function",
    "FunctionNotFoundError",
    "Inngest",
    "InngestDjangoError",
    "InvalidEventError",
    "InvalidFunctionConfigError",
    "NonRetriableError",
    "Parent",
    "Priority",
    "RateLimit",
    "RetryAfterError",
    "Singleton",
    "StepError",
    "Throttle",
    "Timeouts",
    "TriggerCron",
    "TriggerEvent",
    "__version__",
    "cancel_run",
    "create_defer",
    "experiment",
    "invoke_function",
    "pause_function",
    "rerun_run",
    "resume_function",
    "retry_run",
    "send",
]


def __getattr__(name: str) -> Any:
    # These touch models, which cannot load before the app registry is ready.
    if name == "send":
        from .events import send

        return send
    if name in ("cancel_run", "rerun_run", "retry_run"):
        from . import runs

        return getattr(runs, name)
    if name in ("invoke_function", "pause_function", "resume_function"):
        from . import function_control

        return getattr(function_control, name)
    if name == "DeferHandle":
        from .defer_rules import DeferHandle

        return DeferHandle
    raise AttributeError(f"module 'inngest_django' has no attribute {name!r}")
