"""A step's failed attempts, kept in its row's error JSON so a success does not erase them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..enums import StepStatus

# The list under this key of a step row's error: {attempt, started_at, failed_at, name, message}
# per failed attempt, oldest first. Stacks stay out: the latest failure's is the error's own.
FAILED_ATTEMPTS_KEY = "failed_attempts"
# A step retried more often keeps its latest attempts; each entry's number tells where gaps are.
KEPT_ATTEMPTS = 20


def failed_attempts(error: Any) -> list[dict[str, Any]]:
    """Return the failed attempts a step row's error records (none for other shapes)."""
    if not isinstance(error, dict):
        return []
    attempts = error.get(FAILED_ATTEMPTS_KEY)
    return [entry for entry in attempts if isinstance(entry, dict)] if attempts else []


def with_failed_attempts(
    previous_error: Any,
    error: dict[str, Any] | None,
    *,
    status: str,
    attempt: int,
    started_at: datetime,
    now: datetime,
) -> dict[str, Any] | None:
    """Return the error to store for a step: `error` plus the attempts that failed so far.

    A step that completes after failures stores only the list, under an error with no name.
    """
    history = failed_attempts(previous_error)
    if error is not None and status in (StepStatus.ERRORED, StepStatus.FAILED):
        history.append(
            {
                "attempt": attempt,
                "started_at": started_at.isoformat(),
                "failed_at": now.isoformat(),
                "name": error.get("name", "Error"),
                "message": error.get("message", ""),
            }
        )
    if not history:
        return error
    return {**(error or {}), FAILED_ATTEMPTS_KEY: history[-KEPT_ATTEMPTS:]}
