"""FunctionRegistry: every registered function by slug."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .exceptions import FunctionNotFoundError, InvalidFunctionConfigError

if TYPE_CHECKING:
    from .functions import Function


class FunctionRegistry:
    """Functions by slug; dispatch and the scheduler iterate them."""

    def __init__(self) -> None:
        self._functions: dict[str, Function] = {}

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
        """Return the function with this slug or raise FunctionNotFoundError."""
        try:
            return self._functions[function_id]
        except KeyError:
            raise FunctionNotFoundError(function_id) from None

    def __contains__(self, function_id: object) -> bool:
        return function_id in self._functions

    def __iter__(self) -> Iterator[Function]:
        return iter(list(self._functions.values()))

    def __len__(self) -> int:
        return len(self._functions)

    def listens_to(self, name: str) -> bool:
        """Return True if some function has an event trigger for events named `name`."""
        return any(fn.listens_to(name) for fn in self._functions.values())

    def with_cron(self) -> list[Function]:
        """Return the functions that have cron triggers."""
        return [fn for fn in self._functions.values() if fn.cron_triggers]

    def snapshot(self) -> dict[str, Function]:
        """Return a copy of the registered functions, for `restore`."""
        return dict(self._functions)

    def restore(self, functions: dict[str, Function]) -> None:
        """Replace the registered functions with a snapshot."""
        self._functions = dict(functions)


default_registry = FunctionRegistry()


def get_function(function_id: str) -> Function:
    """Return the registered function with this slug or raise FunctionNotFoundError."""
    return default_registry.get(function_id)
