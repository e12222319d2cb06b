"""Run control from Python: cancel_run."""

from __future__ import annotations

import logging

from . import clock
from .models import FunctionRun

logger = logging.getLogger(__name__)


def cancel_run(run_id: str, *, reason: str = "cancel_run() was called") -> bool:
    """Ask a run to stop; return False if it has finished already or does not exist.

    A run that is not executing is cancelled by the next worker round; one that is executing
    stops before its next step (a step already running finishes). Either way it becomes
    CANCELLED, emits `inngest/function.cancelled` and still starts its pending defers.
    `reason` is kept as the run's cancel reason, shown in the admin.
    """
    requested = FunctionRun.request_cancel(run_id, now=clock.now(), reason=reason)
    if requested:
        logger.info(
            "Run cancel requested run_id=%s",
            run_id,
            extra={"run_id": run_id, "action": "run_cancel_requested"},
        )
    return requested
