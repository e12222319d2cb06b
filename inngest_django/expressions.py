"""CEL expressions (trigger filters, later flow-control keys), compiled once and evaluated."""

from __future__ import annotations

from typing import Any


class InvalidExpressionError(ValueError):
    """A CEL expression does not parse."""


class Expression:
    """A compiled CEL expression."""

    def __init__(self, source: str) -> None:
        # Imported on first use: the package loads its CLI (prompt_toolkit) too, about 0.3 s
        # that a worker or command without expressions need not spend at start.
        import cel

        try:
            self._program = cel.compile(source)
        except ValueError as exc:
            raise InvalidExpressionError(f"invalid CEL expression {source!r}: {exc}") from exc
        self.source = source

    def evaluate(self, variables: dict[str, Any]) -> Any:
        """Evaluate with `variables`; a missing field or type error raises ValueError."""
        try:
            return self._program.execute(variables)
        except Exception as exc:
            raise ValueError(f"CEL expression {self.source!r} failed: {exc}") from exc

    def matches(self, variables: dict[str, Any]) -> bool:
        """Return True only when the expression evaluates to boolean true."""
        try:
            return self.evaluate(variables) is True
        except ValueError:
            return False
