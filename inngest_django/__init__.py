"""inngest_django: Inngest-style durable functions that run from your Django database."""

from __future__ import annotations

from typing import Any

from .client import Inngest
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
from .functions import Function
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
from .schemas.events import Event

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Cancel",
    "Concurrency",
    "Context",
    "Debounce",
    "Event",
    "Function",
    "FunctionNotFoundError",
    "Inngest",
    "InngestDjangoError",
    "InvalidEventError",
    "InvalidFunctionConfigError",
    "NonRetriableError",
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
    "send",
]


def __getattr__(name: str) -> Any:
    # send touches models, which cannot load before the app registry is ready.
    if name == "send":
        from .events import send

        return send
    raise AttributeError(f"module 'inngest_django' has no attribute {name!r}")
