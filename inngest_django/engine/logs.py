"""The engine's run log lines: one format, with the run and function ids in `extra`."""

from __future__ import annotations

import logging
from typing import Any

from ..models import FunctionRun

logger = logging.getLogger("inngest_django.executor")


def log_run(level: int, message: str, run: FunctionRun, action: str, *args: Any) -> None:
    """Log `message` about `run`, tagged with `action` for structured logs."""
    logger.log(
        level,
        message + " run_id=%s function_id=%s",
        *args,
        run.pk,
        run.function_id,
        extra={"run_id": run.pk, "function_id": run.function_id, "action": action},
    )
