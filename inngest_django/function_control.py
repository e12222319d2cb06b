"""Function control from Python: pause, resume, and invoke a function with a payload."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, connection, transaction

from . import clock
from .events import emit, encoded_event, queued_run, save_runs
from .exceptions import InvalidEventError
from .functions import INVOKED_EVENT, DeferredFunction
from .models import FunctionPause
from .names import ENGINE_DATA_KEY
from .notify import CHANNEL
from .registry import default_registry

logger = logging.getLogger(__name__)


def pause_function(function_id: str, *, paused_by: str = "") -> bool:
    """Pause a function; return False if it was paused already.

    While paused, its triggers (events, cron ticks) start no runs, and workers claim none of
    its runs: queued, sleeping and retrying runs wait, and a run executing now stops after its
    current step. Events sent meanwhile are stored but never start it, as in Inngest.

    Raises:
        FunctionNotFoundError: no registered function has this id.
    """
    default_registry.get(function_id)
    try:
        with transaction.atomic():
            FunctionPause.objects.create(
                function_id=function_id, paused_at=clock.now(), paused_by=paused_by[:150]
            )
    except IntegrityError:
        return False
    logger.info(
        "Function paused function_id=%s by=%s",
        function_id,
        paused_by,
        extra={"function_id": function_id, "action": "function_paused"},
    )
    return True


def resume_function(function_id: str) -> bool:
    """Resume a paused function; return False if it was not paused.

    Its waiting runs are claimed again, oldest due first; cron ticks start runs again from the
    next tick (ticks missed while paused are not made up).
    """
    with transaction.atomic():
        deleted, _ = FunctionPause.objects.filter(function_id=function_id).delete()
        if deleted and connection.vendor == "postgresql":
            # Idle workers sleep until notified; the runs now claimable changed no run row.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, "resume"])
    if deleted:
        logger.info(
            "Function resumed function_id=%s",
            function_id,
            extra={"function_id": function_id, "action": "function_resumed"},
        )
    return bool(deleted)


def invoke_function(function_id: str, data: dict[str, Any] | None = None) -> str | None:
    """Start a run of a function with `data` as its event data, as Inngest's "Invoke" does.

    The run's event is an `inngest/function.invoked` event, whatever the function's
    triggers; flow control applies as to any new run. A paused function's run waits, queued,
    until it is resumed. Returns the new run's id (a SKIPPED run's if flow control skipped
    it), or None if debounce merged it into a pending run.

    Raises:
        FunctionNotFoundError: no registered function has this id.
        InvalidEventError: `data` is not a JSON object, or the function is a deferred function.
    """
    function = default_registry.get(function_id)
    if isinstance(function, DeferredFunction):
        raise InvalidEventError(f"{function_id!r} is a deferred function, started only by defer")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InvalidEventError(f"data must be a JSON object, not {type(data).__name__}")
    if ENGINE_DATA_KEY in data:
        raise InvalidEventError(f"data may not hold the engine's key {ENGINE_DATA_KEY!r}")
    # Refused as send() would refuse it: not JSON, not storable alike everywhere, too big.
    encoded_event({"name": INVOKED_EVENT, "data": data}, "invoked event", system=False)
    now = clock.now()
    with transaction.atomic():
        # Born dispatched: the event goes to this function only, as an invoke step's does.
        event = emit(INVOKED_EVENT, data, dispatched_at=now)
        run = queued_run(function_id, event, now=now)
        stored = save_runs([run])
    if run not in stored:
        return None
    logger.info(
        "Function invoked function_id=%s run_id=%s",
        function_id,
        run.pk,
        extra={"function_id": function_id, "run_id": run.pk, "action": "function_invoked"},
    )
    return run.pk
