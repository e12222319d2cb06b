"""execute_run(): one pass of a claimed run, ended through finalize() whatever goes wrong."""

from __future__ import annotations

import logging
from datetime import datetime

from ..enums import RunStatus
from ..exceptions import DecryptionError, FunctionNotFoundError
from ..models import FunctionRun
from ..models.run_reads import runs_with_events
from ..registry import FunctionRegistry, default_registry
from ..serialization import error_to_json
from .finalize import finalize
from .logs import log_run
from .run_pass import RunPass


def execute_run(
    run_id: str,
    *,
    lease_token: str,
    registry: FunctionRegistry = default_registry,
    claimed_at: datetime | None = None,
    loaded: FunctionRun | None = None,
) -> None:
    """Execute one pass of a run this worker has claimed under `lease_token` at `claimed_at`.

    `loaded` is the run with its event as read after the claim, which spares a read per run.
    """
    run = loaded if loaded is not None else load_claimed([run_id]).get(run_id)
    if run is None or run.lease_token != lease_token:
        return
    try:
        function = registry.get(run.function_id)
    except FunctionNotFoundError as exc:
        # Defers an earlier pass recorded still start: their cleanup may matter most.
        if finalize(run, lease_token, RunStatus.FAILED, error=error_to_json(exc)):
            log_run(logging.ERROR, "Run failed: function not registered", run, "run_failed")
        FunctionRun.objects.unpark([run.concurrency_key, run.concurrency_key_2])
        return
    try:
        # The claim stamps started_at only if no earlier pass had: then no step rows exist.
        first_start = claimed_at is not None and run.started_at == claimed_at
        RunPass(run, function, lease_token, registry, first_start=first_start).execute()
    except DecryptionError as exc:
        unreadable(run, lease_token, exc)
    after_pass(run)


def unreadable(run: FunctionRun, lease_token: str, exc: DecryptionError) -> None:
    """Fail a run whose trigger event or a step memo no configured key opens."""
    # Retrying cannot help.
    if finalize(run, lease_token, RunStatus.FAILED, error=error_to_json(exc)):
        log_run(logging.ERROR, "Run failed: %s", run, "run_failed", exc)


def after_pass(run: FunctionRun) -> None:
    """Let runs parked behind `run`'s concurrency keys go, now that the pass has ended."""
    if run.concurrency_key or run.concurrency_key_2:
        # The pass has released the run's slot (finished, asleep, waiting or retrying later).
        FunctionRun.objects.unpark([run.concurrency_key, run.concurrency_key_2])


def load_claimed(run_ids: list[str]) -> dict[str, FunctionRun]:
    """Return the claimed runs with their trigger events, read in one query, by id."""
    return runs_with_events(FunctionRun, run_ids)
