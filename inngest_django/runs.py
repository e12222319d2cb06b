"""Run control from Python: cancel, rerun from the start, retry from the failed step."""

from __future__ import annotations

import logging

from django.db import transaction

from . import clock
from .events import queued_run
from .models import FunctionRun, RunEvent
from .registry import default_registry
from .waits import cancel_rule_waits, save_waits

logger = logging.getLogger(__name__)

# Keys flow control computed for the original run; a rerun keeps them so it shares its limits.
_KEPT_FLOW_FIELDS = (
    "concurrency_key",
    "concurrency_limit",
    "concurrency_key_2",
    "concurrency_limit_2",
)


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


def rerun_run(run_id: str) -> str | None:
    """Start a new run of the same function with the same event; return its id.

    The new run starts from the first step with no memos, records `rerun_of`, keeps the
    original's parent, batch and concurrency keys, and is not subject to idempotency, rate
    limits, debounce or singleton: rerunning is an operator's explicit choice. Returns None if
    `run_id` does not exist.

    Raises:
        FunctionNotFoundError: the run's function is no longer registered.
    """
    with transaction.atomic():
        original = FunctionRun.objects.select_related("event").filter(pk=run_id).first()
        if original is None:
            return None
        function = default_registry.get(original.function_id)
        rerun = queued_run(
            original.function_id,
            original.event,
            now=clock.now(),
            parent_run_id=original.parent_run_id,
            rerun_of=original,
            batch_size=original.batch_size,
            **{field: getattr(original, field) for field in _KEPT_FLOW_FIELDS},
        )
        rerun.save(force_insert=True)
        batch = RunEvent.objects.filter(run_id=original.pk).order_by("position")
        RunEvent.objects.bulk_create(
            [RunEvent(run=rerun, event_id=row.event_id, position=row.position) for row in batch]
        )
        waits = cancel_rule_waits([(rerun, function, original.event)])
        if waits:
            save_waits(waits)
    logger.info(
        "Run rerun requested run_id=%s rerun_id=%s",
        run_id,
        rerun.pk,
        extra={"run_id": run_id, "rerun_id": rerun.pk, "action": "run_rerun"},
    )
    return rerun.pk


def retry_run(run_id: str) -> bool:
    """Queue a FAILED run again from its failed step; return False if it is not FAILED.

    Completed steps stay memoized and are not run again; the failed step (if the failure was in
    a step) loses its memo and runs with a fresh set of retries. Defers the failure already
    scheduled stay scheduled, and the run's cancel rules apply again.
    """
    with transaction.atomic():
        if not FunctionRun.reopen_failed(run_id, now=clock.now()):
            return False
        run = FunctionRun.objects.select_related("event").get(pk=run_id)
        known = run.function_id in default_registry
        function = default_registry.get(run.function_id) if known else None
        waits = cancel_rule_waits([(run, function, run.event)]) if function else []
        if waits:
            save_waits(waits)
    logger.info(
        "Run retry requested run_id=%s",
        run_id,
        extra={"run_id": run_id, "action": "run_retry"},
    )
    return True
