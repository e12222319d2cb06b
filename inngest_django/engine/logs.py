"""The engine's run log lines: one format, with the run and function ids in `extra`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError

from ..models import FunctionRun

logger = logging.getLogger("inngest_django.executor")
worker_logger = logging.getLogger("inngest_django.worker")


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


@contextmanager
def pass_failures_logged(run_id: str) -> Iterator[None]:
    """Log, and swallow, a worker's run pass that lost the database or crashed."""
    try:
        yield
    except DatabaseError as exc:
        # The database went away mid-pass: nothing half-done was committed, and the run
        # resumes when its lease ends. The loop's backoff logs the outage itself.
        worker_logger.warning(
            "Run pass lost the database run_id=%s error=%s; it resumes after its lease",
            run_id,
            exc.__class__.__name__,
            extra={"run_id": run_id, "action": "run_pass_lost_database"},
        )
    except Exception:
        # The lease expires and another pass retries the run; the worker carries on.
        worker_logger.exception("Run pass crashed run_id=%s", run_id, extra={"run_id": run_id})
