"""FunctionRegistry: every registered function by slug, and sources that register on first use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from .exceptions import FunctionNotFoundError, InvalidFunctionConfigError

if TYPE_CHECKING:
    from .functions import Function


class FunctionSource(Protocol):
    """Builds the functions whose ids start with `prefix` when one is first looked up."""

    prefix: str

    def resolve(self, function_id: str) -> Function:
        """Return the function with this id, or raise FunctionNotFoundError saying why not."""

    def limits_concurrency(self) -> bool:
        """Return True if its runs may carry concurrency keys (the worker claims with limits)."""


class FunctionRegistry:
    """Functions by slug; dispatch and the scheduler iterate them."""

    def __init__(self) -> None:
        self._functions: dict[str, Function] = {}
        self._sources: dict[str, FunctionSource] = {}

    def register(self, function: Function) -> None:
        """Add `function`; a different function with the same slug is a configuration error."""
        existing = self._functions.get(function.id)
        if existing is not None and existing.qualified_name != function.qualified_name:
            raise InvalidFunctionConfigError(
                f"Two functions have the id {function.id!r}: {existing.qualified_name} and "
                f"{function.qualified_name}. Function ids must be unique per app."
            )
        self._functions[function.id] = function

    def get(self, function_id: str) -> Function:
        """Return the function with this slug or raise FunctionNotFoundError.

        An id under a source's prefix that is not registered yet is registered from the source.
        """
        function = self._functions.get(function_id)
        if function is not None:
            return function
        source = self._source_for(function_id)
        if source is None:
            raise FunctionNotFoundError(function_id)
        function = source.resolve(function_id)
        self.register(function)
        return function

    def __contains__(self, function_id: object) -> bool:
        if function_id in self._functions:
            return True
        if not isinstance(function_id, str) or self._source_for(function_id) is None:
            return False
        try:
            self.get(function_id)
        except FunctionNotFoundError:
            return False
        return True

    def __iter__(self) -> Iterator[Function]:
        return iter(list(self._functions.values()))

    def __len__(self) -> int:
        return len(self._functions)

    def __bool__(self) -> bool:
        # A source counts: a worker with one has functions to run, registered as runs need them.
        return bool(self._functions or self._sources)

    def listens_to(self, name: str) -> bool:
        """Return True if some function has an event trigger for events named `name`."""
        # Copies: a worker thread may register a source's function while another reads.
        return any(fn.listens_to(name) for fn in list(self._functions.values()))

    def with_cron(self) -> list[Function]:
        """Return the functions that have cron triggers."""
        return [fn for fn in list(self._functions.values()) if fn.cron_triggers]

    def add_source(self, source: FunctionSource) -> None:
        """Let `source` register the functions under its prefix when they are first looked up."""
        self._sources[source.prefix] = source

    def sources(self) -> dict[str, FunctionSource]:
        """Return the sources by prefix, for `restore`."""
        return dict(self._sources)

    def sources_limit_concurrency(self) -> bool:
        """Return True if a source's runs may carry concurrency keys."""
        return any(source.limits_concurrency() for source in list(self._sources.values()))

    def _source_for(self, function_id: str) -> FunctionSource | None:
        for prefix, source in list(self._sources.items()):
            if function_id.startswith(prefix):
                return source
        return None

    def snapshot(self) -> dict[str, Function]:
        """Return a copy of the registered functions, for `restore`."""
        return dict(self._functions)

    def restore(
        self, functions: dict[str, Function], *, sources: dict[str, FunctionSource] | None = None
    ) -> None:
        """Replace the registered functions (and, if given, the sources) with a snapshot."""
        self._functions = dict(functions)
        if sources is not None:
            self._sources = dict(sources)


default_registry = FunctionRegistry()


def get_function(function_id: str) -> Function:
    """Return the registered function with this slug or raise FunctionNotFoundError."""
    return default_registry.get(function_id)
