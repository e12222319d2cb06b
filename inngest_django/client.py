"""The Inngest client: declares functions and sends events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from .functions import DeferredFunction, Function, Handler, build_deferred_function, build_function
from .registry import FunctionRegistry, default_registry
from .schemas.config import TriggerCron, TriggerEvent
from .schemas.events import Event


class Inngest:
    """An app's client: `create_function` registers handlers, `send` stores events.

    Args:
        app_id: Prefix of every function slug (`f"{app_id}-{fn_id}"`).
        logger: Logger for the client's own messages (default: `inngest_django`).
    """

    def __init__(
        self,
        *,
        app_id: str,
        logger: logging.Logger | None = None,
        registry: FunctionRegistry | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not app_id.strip():
            raise ValueError("app_id must be a non-empty string")
        self.app_id = app_id
        self.logger = logger or logging.getLogger("inngest_django")
        self._registry = registry

    @property
    def registry(self) -> FunctionRegistry:
        return self._registry if self._registry is not None else default_registry

    @property
    def default_retries(self) -> int:
        from .conf import app_settings

        return app_settings.DEFAULT_RETRIES

    def create_function(
        self,
        *,
        fn_id: str,
        trigger: TriggerEvent | TriggerCron | Sequence[TriggerEvent | TriggerCron],
        **options: Any,
    ) -> Callable[[Handler], Function]:
        """Return a decorator that registers the handler as a durable function.

        Args:
            fn_id: The function's id, unique within the app.
            trigger: A TriggerEvent, a TriggerCron, or a list of up to 10.
            **options: name, retries, on_failure, output_type, cancel, timeouts, and the
                flow-control options concurrency, throttle, rate_limit, debounce, priority,
                singleton, idempotency and batch_events (docs/flow-control.md).

        Returns:
            A decorator returning the registered `Function`.

        Raises:
            InvalidFunctionConfigError: The configuration is invalid.
        """

        def decorator(handler: Handler) -> Function:
            function = build_function(self, handler, fn_id=fn_id, trigger=trigger, **options)
            self.registry.register(function)
            if function.on_failure_fn is not None:
                self.registry.register(function.on_failure_fn)
            return function

        return decorator

    def create_defer(
        self, *, id: str, schema: type[BaseModel] | None = None, **options: Any
    ) -> Callable[[Handler], DeferredFunction]:
        """Return a decorator that registers the handler as a deferred function.

        Args:
            id: The function's id, unique within the app.
            schema: A pydantic model class that validates (and types) the deferred data.
            **options: What create_function takes, except trigger, on_failure, batch_events.

        Raises:
            InvalidFunctionConfigError: The configuration is invalid.
        """

        def decorator(handler: Handler) -> DeferredFunction:
            function = build_deferred_function(self, handler, fn_id=id, schema=schema, **options)
            self.registry.register(function)
            return function

        return decorator

    def send(self, events: Event | Sequence[Event], *, using: str | None = None) -> list[str]:
        """Store events in the caller's transaction and return their internal ids.

        Raises:
            InvalidEventError: An event has a reserved or empty name, bad data, or is too large.
        """
        from .events import send

        return send(events, using=using)

    send_sync = send


def create_defer(
    client: Inngest, *, id: str, schema: type[BaseModel] | None = None, **options: Any
) -> Callable[[Handler], DeferredFunction]:
    """Return a decorator registering a deferred function: `client.create_defer` as a function."""
    return client.create_defer(id=id, schema=schema, **options)
