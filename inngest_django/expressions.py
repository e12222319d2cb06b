"""CEL expressions (trigger filters, later flow-control keys), compiled once and evaluated."""

from __future__ import annotations

from typing import Any

# The CEL library parses and evaluates recursively on the native stack: a chain of some 20,000
# operators ("1+1+1...") overflows it and kills the process with a segfault, not an exception.
# Real expressions are a few dozen characters; this bound leaves that crash far out of reach.
MAX_EXPRESSION_LENGTH = 4096


class InvalidExpressionError(ValueError):
    """A CEL expression does not parse."""


class Expression:
    """A compiled CEL expression."""

    def __init__(self, source: str) -> None:
        # Imported on first use: the package loads its CLI (prompt_toolkit) too, about 0.3 s
        # that a worker or command without expressions need not spend at start.
        import cel

        if isinstance(source, str) and len(source) > MAX_EXPRESSION_LENGTH:
            raise InvalidExpressionError(
                f"invalid CEL expression {source[:40]!r}...: it is longer than "
                f"{MAX_EXPRESSION_LENGTH} characters"
            )
        try:
            self._program = cel.compile(source)
        except (TypeError, ValueError) as exc:
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
