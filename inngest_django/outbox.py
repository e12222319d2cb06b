"""relay_pending(): turn each outbox row into exactly one deferred run; the deferred event codec."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from . import clock
from .conf import app_settings
from .events import emit_row, queued_run, save_runs
from .exceptions import DecryptionError, NonRetriableError
from .functions import DEFERRED_EVENT
from .models import DeferIntent, Event, FunctionRun, OutboxMessage
from .models.queue import any_unset
from .names import ENGINE_DATA_KEY
from .registry import FunctionRegistry, default_registry
from .schemas.defers import ExperimentRef, Parent

logger = logging.getLogger(__name__)


def has_unrelayed() -> bool:
    """Return True if an outbox row waits; a read, so idle workers take no write lock."""
    return any_unset(OutboxMessage, "relayed_at")


def relay_pending(
    *, limit: int | None = None, registry: FunctionRegistry = default_registry
) -> int:
    """Start the deferred runs of a batch of outbox rows; return how many rows were relayed."""
    if not has_unrelayed():
        return 0
    now = clock.now()
    with transaction.atomic():
        intent_ids = OutboxMessage.claim_unrelayed(
            limit=limit or app_settings.RELAY_BATCH_SIZE, now=now
        )
        if not intent_ids:
            return 0
        intents = list(
            DeferIntent.objects.filter(pk__in=intent_ids)
            .select_related("run")
            .only("defer_id", "function_id", "payload", "experiment", "run__function_id")
            .order_by("pk")
        )
        _log_missing(set(intent_ids) - {intent.pk for intent in intents})
        events, runs = [], []
        for intent in intents:
            try:
                if not _payload_is_object(intent):
                    continue
                event = _event_for(intent, now)
            except DecryptionError as exc:
                # Skipped, not retried: no later relay could read the payload either.
                logger.error(
                    "Defer skipped: %s intent_id=%s parent_run_id=%s",
                    exc,
                    intent.pk,
                    intent.run_id,
                    extra={"run_id": intent.run_id, "action": "defer_unreadable"},
                )
                continue
            events.append(event)
            runs.append(_run_for(intent, event, now))
        Event.objects.bulk_create(events)
        try:
            with transaction.atomic():
                runs = save_runs(runs, registry=registry)
        except IntegrityError:
            # Only possible if a run already exists for an intent; start the others.
            runs = _create_one_by_one(runs, registry)
    for run in runs:
        logger.info(
            "Deferred run queued run_id=%s function_id=%s parent_run_id=%s",
            run.pk,
            run.function_id,
            run.parent_run_id,
            extra={"run_id": run.pk, "function_id": run.function_id, "action": "defer_relayed"},
        )
    return len(intent_ids)


def _log_missing(intent_ids: set[int]) -> None:
    # Only a database without its foreign keys keeps an outbox row whose intent is gone.
    for intent_id in sorted(intent_ids):
        logger.error(
            "Outbox row skipped: its defer intent is missing intent_id=%s",
            intent_id,
            extra={"action": "defer_skipped"},
        )


def _payload_is_object(intent: DeferIntent) -> bool:
    """Return True if the intent's payload can become event data; log and skip it if not."""
    # ctx.defer stores objects only, so anything else was written around it.
    if intent.payload is None or isinstance(intent.payload, dict):
        return True
    logger.error(
        "Defer skipped: its payload is not a JSON object intent_id=%s parent_run_id=%s type=%s",
        intent.pk,
        intent.run_id,
        type(intent.payload).__name__,
        extra={"run_id": intent.run_id, "action": "defer_skipped"},
    )
    return False


def _event_for(intent: DeferIntent, now: datetime) -> Event:
    # Marked dispatched: the relay starts the one run; no trigger may match it again.
    return emit_row(DEFERRED_EVENT, event_data(intent, intent.run.function_id), dispatched_at=now)


def _run_for(intent: DeferIntent, event: Event, now: datetime) -> FunctionRun:
    return queued_run(
        intent.function_id, event, now=now, parent_run_id=intent.run_id, defer_intent=intent
    )


def _create_one_by_one(runs: list[FunctionRun], registry: FunctionRegistry) -> list[FunctionRun]:
    created = []
    for run in runs:
        try:
            with transaction.atomic():
                save_runs([run], registry=registry)
            created.append(run)
        except IntegrityError:
            logger.warning(
                "Deferred run already exists; not starting a second intent_id=%s",
                run.defer_intent_id,
                extra={"action": "defer_relay_duplicate"},
            )
    return created


# -- the deferred run's event ------------------------------------------------------------------


def event_data(intent: DeferIntent, parent_function_id: str) -> dict[str, Any]:
    """Return the data of a deferred run's event: the payload plus where it came from."""
    return {
        **(intent.payload or {}),
        ENGINE_DATA_KEY: {
            "fn_slug": intent.function_id,
            "defer_id": intent.defer_id,
            "parent_fn_slug": parent_function_id,
            "parent_run_id": intent.run_id,
            "experiment": intent.experiment,
        },
    }


def split_event_data(data: Mapping[str, Any]) -> tuple[dict[str, Any], Parent]:
    """Return a deferred run's payload and its Parent, from its event's data."""
    meta = data.get(ENGINE_DATA_KEY)
    if not isinstance(meta, Mapping) or not meta.get("parent_run_id"):
        raise NonRetriableError(
            f"deferred run's event has no {ENGINE_DATA_KEY!r} parent data; was it sent by hand?"
        )
    experiment = meta.get("experiment")
    parent = Parent(
        fn_slug=str(meta.get("parent_fn_slug", "")),
        run_id=str(meta["parent_run_id"]),
        experiment=ExperimentRef.model_validate(experiment) if experiment else None,
    )
    return {k: v for k, v in data.items() if k != ENGINE_DATA_KEY}, parent
