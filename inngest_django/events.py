"""Sending events in the caller's transaction, and dispatching them to function runs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, router, transaction
from pydantic import BaseModel, ValidationError

from . import clock
from .conf import app_settings
from .dispatch_batch import claim_for_dispatch
from .enums import RunStatus
from .exceptions import DecryptionError, InvalidEventError
from .flow_control import admit
from .functions import Function
from .handover import Handover
from .ids import new_id
from .models import Event, FunctionRun, IdempotencyKey, RunEvent, WaitKey, rows
from .names import MAX_NAME_LENGTH, RESERVED_PREFIX
from .registry import FunctionRegistry, default_registry
from .schemas.events import Event as EventIn
from .serialization import storable_problem
from .waits import WaitResolver, cancel_rule_waits, catch_up_cancel_rules, save_waits

logger = logging.getLogger(__name__)


def send(
    events: EventIn | Mapping[str, Any] | Sequence[Any], *, using: str | None = None
) -> list[str]:
    """Store user events (validated) in the current transaction and return their ids."""
    items = list(events) if isinstance(events, list | tuple) else [events]
    built = [build_event_row(item, index, system=False) for index, item in enumerate(items)]
    if not built:
        return []
    alias = using or router.db_for_write(Event)
    # One INSERT, which outside a transaction commits at once: no BEGIN and COMMIT around it.
    if not rows.insert_all(built, using=alias):
        Event.objects.db_manager(alias).bulk_create(built)
    return [row.id for row in built]


def emit(
    name: str,
    data: dict[str, Any],
    *,
    external_id: str = "",
    dispatched_at: datetime | None = None,
    unless_awaited: bool = False,
) -> Event:
    """Store a system event (names under `inngest/` allowed) in the current transaction."""
    pending = system_event(
        name,
        data,
        external_id=external_id,
        dispatched_at=dispatched_at,
        unless_awaited=unless_awaited,
    )
    # Raw SQL: every run that finishes stores one, and the ORM's INSERT costs more to build.
    rows.insert(pending.row, computed=pending.computed)
    return pending.row


def system_event(
    name: str,
    data: dict[str, Any],
    *,
    external_id: str = "",
    dispatched_at: datetime | None = None,
    unless_awaited: bool = False,
    data_is_stored: bool = False,
) -> rows.PendingInsert:
    """Return the INSERT of a system event, as `emit` sends it, for a statement to carry.

    With `unless_awaited`, `dispatched_at` stands only if no wait for `name` was ever stored:
    asked by the INSERT itself, so it costs no statement of its own. `data_is_stored`: `data`
    is made of values read from or checked for storage already (a run's events, its stored
    output or error), so the checks and JSON round trip of `emit` are skipped.
    """
    if data_is_stored:
        row = rows.new_row(
            Event,
            id=new_id(),
            name=name,
            data=data,
            external_id=external_id,
            ts=_now_ms(),
            dispatched_at=dispatched_at,
        )
    else:
        row = emit_row(name, data, external_id=external_id, dispatched_at=dispatched_at)
    computed = None
    if unless_awaited and dispatched_at is not None:
        field = Event._meta.get_field("dispatched_at")
        computed = {
            "dispatched_at": (
                f"CASE WHEN EXISTS (SELECT 1 FROM {WaitKey._meta.db_table} "
                "WHERE event_name = %s) THEN NULL ELSE %s END",
                [name, field.get_db_prep_save(dispatched_at, connection)],
            )
        }
    return rows.PendingInsert(row, computed)


def emit_row(
    name: str,
    data: dict[str, Any],
    *,
    external_id: str = "",
    dispatched_at: datetime | None = None,
) -> Event:
    """Return an unsaved system event, validated as `emit` would store it."""
    row = build_event_row(EventIn(name=name, data=data, id=external_id), 0, system=True)
    row.dispatched_at = dispatched_at
    return row


def encoded_event(payload: dict[str, Any], where: str, *, system: bool) -> str:
    """Return `payload` as JSON, or raise InvalidEventError if `send` would refuse it.

    The engine's own (`system`) events skip the storability and size checks.
    """
    try:
        encoded = json.dumps(payload, cls=DjangoJSONEncoder)
    # RecursionError: data nested deeper than the interpreter's recursion limit.
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEventError(f"{where} data is not JSON-serializable: {exc}") from None
    # Escapes only: NUL is written \u0000 and every surrogate \udXXX, so most events skip the walk.
    if not system and ("\\u0000" in encoded or "\\ud" in encoded):
        problem = storable_problem(json.loads(encoded))
        if problem:
            raise InvalidEventError(f"{where} {problem}")
    size, limit = len(encoded.encode()), app_settings.MAX_EVENT_BYTES
    # The engine's own events carry outputs and defer payloads bounded by their own limits;
    # refusing one here would fail a finalize or a relay over and over.
    if size > limit and not system:
        raise InvalidEventError(
            f"{where} is {size} bytes, over the limit of {limit} bytes (MAX_EVENT_BYTES)"
        )
    return encoded


def _now_ms() -> int:
    return int(time.time() * 1000)


def build_event_row(item: Any, index: int, *, system: bool) -> Event:
    """Return an unsaved Event for `item`, validated as `send` (or, if `system`, `emit`) does."""
    where = f"event {index}"
    if isinstance(item, Mapping):
        try:
            item = EventIn.model_validate(dict(item))
        except ValidationError as exc:
            raise InvalidEventError(f"{where} is invalid: {exc}") from None
    if not isinstance(item, EventIn):
        raise InvalidEventError(f"{where} must be an Event or a dict, not {type(item).__name__}")
    name = item.name
    if not isinstance(name, str) or not name.strip():
        raise InvalidEventError(f"{where} has an empty name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidEventError(f"{where} name is longer than {MAX_NAME_LENGTH} characters")
    if name.startswith(RESERVED_PREFIX) and not system:
        raise InvalidEventError(
            f"{where} name {name!r} is reserved: names starting with {RESERVED_PREFIX!r} are "
            "sent only by the engine"
        )
    data = item.data.model_dump(mode="json") if isinstance(item.data, BaseModel) else item.data
    if not isinstance(data, dict):
        raise InvalidEventError(f"{where} data must be a JSON object, not {type(data).__name__}")
    ts = item.ts or _now_ms()
    if not -(2**63) <= ts < 2**63:
        raise InvalidEventError(f"{where} ts {ts} does not fit in 64 bits (epoch milliseconds)")
    if len(item.id) > MAX_NAME_LENGTH:
        raise InvalidEventError(f"{where} id is longer than {MAX_NAME_LENGTH} characters")
    payload = {"name": name, "data": data, "id": item.id, "ts": ts}
    encoded = encoded_event(payload, where, system=system)
    return rows.new_row(
        Event, id=new_id(), name=name, data=json.loads(encoded)["data"], external_id=item.id, ts=ts
    )


def dispatch_pending(
    *,
    registry: FunctionRegistry = default_registry,
    limit: int | None = None,
    handover: Handover | None = None,
    look: bool = True,
) -> int:
    """Start runs for a batch of new events; return how many events were dispatched.

    With `handover`, some of the new runs are stored leased to its worker (in `handover.runs`).
    `look=False` skips the read for new events, for a caller that knows some were committed.
    """
    # A read first, so an idle worker does not take SQLite's write lock on every loop.
    if look and not Event.objects.any_undispatched():
        return 0
    now = clock.now()
    # Only a transaction of its own may skip the flush wait: a caller's would skip it too.
    flush_wait = connection.in_atomic_block
    with transaction.atomic():
        # Paused functions start no runs: Inngest drops their triggers, it does not queue them.
        events, paused, wait_keys = claim_for_dispatch(
            limit=limit or app_settings.DISPATCH_BATCH_SIZE, now=now, flush_wait=flush_wait
        )
        if not events:
            return 0
        runs: list[FunctionRun] = []
        readable = []
        for event in events:
            try:
                if not _data_is_object(event):
                    continue
                runs.extend(_runs_for(event, registry, now, paused))
            except DecryptionError as exc:
                # Skipped, not retried: no later dispatch could read it either.
                logger.error(
                    "Event skipped: %s event_id=%s name=%s",
                    exc,
                    event.pk,
                    event.name,
                    extra={"event_id": event.pk, "action": "event_unreadable"},
                )
                continue
            readable.append(event)
        if handover is not None:
            # Before admission, which passes runs without flow control (the only ones taken) as
            # they are.
            handover.take(runs, registry)
        runs = save_runs(runs, registry=registry)
        # After the new runs' cancel rules exist: a later event of this batch may cancel them.
        # Their names' match keys are read again, as the rules may have added some.
        for name in _cancel_rule_names(runs, registry):
            wait_keys.pop(name, None)
        resolver = WaitResolver(now, keys=wait_keys)
        resolved = sum(resolver.resolve(event) for event in readable)
        if handover is not None and resolved:
            handover.reread_cancel_requests()
    # RUNNING: handed over, leased as stored.
    started = (RunStatus.QUEUED, RunStatus.RUNNING)
    for run in (run for run in runs if run.status in started):
        logger.info(
            "Run queued run_id=%s function_id=%s event_id=%s",
            run.pk,
            run.function_id,
            run.event_id,
            extra={"run_id": run.pk, "function_id": run.function_id, "action": "run_queued"},
        )
    return len(events)


def _cancel_rule_names(runs: list[FunctionRun], registry: FunctionRegistry) -> set[str]:
    functions = {run.function_id for run in runs if run.status != RunStatus.SKIPPED}
    return {
        rule.event
        for function_id in functions
        if function_id in registry
        for rule in getattr(registry.get(function_id), "cancel", None) or []
    }


def _data_is_object(event: Event) -> bool:
    """Return True if `event` may start runs; log and skip one whose data is not an object."""
    # send() stores objects only, so anything else was written around it (raw SQL, a bad data
    # migration). JSON null reads as {}, as the Event schema has it.
    if event.data is None or isinstance(event.data, dict):
        return True
    logger.error(
        "Event skipped: its data is not a JSON object event_id=%s name=%s type=%s",
        event.pk,
        event.name,
        type(event.data).__name__,
        extra={"event_id": event.pk, "action": "event_skipped"},
    )
    return False


def _runs_for(
    event: Event, registry: FunctionRegistry, now: datetime, paused: set[str]
) -> list[FunctionRun]:
    event_json = event.to_json()
    runs = []
    for function in registry:
        if not function.matches(event_json):
            continue
        if function.id in paused:
            logger.info(
                "Function paused; no run event_id=%s function_id=%s",
                event.pk,
                function.id,
                extra={"event_id": event.pk, "function_id": function.id, "action": "run_paused"},
            )
            continue
        if event.external_id and not _first_with_id(function, event, now):
            logger.info(
                "Event id seen before; no run event_id=%s id=%s function_id=%s",
                event.pk,
                event.external_id,
                function.id,
                extra={"event_id": event.pk, "action": "event_deduplicated"},
            )
            continue
        runs.append(queued_run(function.id, event, now=now))
    return runs


def _first_with_id(function: Function, event: Event, now: datetime) -> bool:
    window = timedelta(seconds=app_settings.EVENT_DEDUPE_SECONDS)
    return IdempotencyKey.acquire(
        function.id,
        f"event:{event.external_id}"[:MAX_NAME_LENGTH],
        now=now,
        expires_at=now + window,
    )


def save_runs(
    runs: list[FunctionRun], *, registry: FunctionRegistry = default_registry
) -> list[FunctionRun]:
    """Store new runs (their `event` set) after flow control, with their cancel-rule waits.

    Returns the runs stored: skipped ones included (status SKIPPED), debounced ones that
    joined a pending run left out.
    """
    runs = admit(runs, registry, clock.now())
    # Raw SQL: the ORM's INSERT cost more to build than to send on an idle worker's path.
    if runs and not rows.insert_all(runs):
        FunctionRun.objects.bulk_create(runs)
    batched = [
        RunEvent(run=run, event=event, position=position)
        for run in runs
        for position, event in enumerate(getattr(run, "events_to_batch", ()))
    ]
    if batched:
        RunEvent.objects.bulk_create(batched)
    waits = cancel_rule_waits(
        (run, registry.get(run.function_id), run.event)
        for run in runs
        if run.function_id in registry and run.status != RunStatus.SKIPPED
    )
    if waits:
        save_waits(waits)
        now = clock.now()
        # robust: a failed catch-up is logged; the dispatch that stored the runs stands.
        transaction.on_commit(lambda: catch_up_cancel_rules(waits, now=now), robust=True)
    return runs


def queued_run(function_id: str, event: Event, *, now: datetime, **fields: Any) -> FunctionRun:
    """Return an unsaved run of `function_id` for `event`, queued and due at `now`.

    The one builder of new runs: dispatch, invoke, the outbox relay and rerun all call it.
    """
    return rows.new_row(
        FunctionRun,
        id=new_id(),
        function_id=function_id,
        event=event,
        status=RunStatus.QUEUED,
        available_at=now,
        **fields,
    )
