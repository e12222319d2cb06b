"""relay_pending(): turn each outbox row into exactly one deferred run."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction

from . import clock
from .conf import app_settings
from .defers import event_data
from .enums import RunStatus
from .events import emit_row, save_runs
from .exceptions import DecryptionError
from .functions import DEFERRED_EVENT
from .ids import new_id
from .models import DeferIntent, Event, FunctionRun, OutboxMessage
from .registry import FunctionRegistry, default_registry

logger = logging.getLogger(__name__)


def has_unrelayed() -> bool:
    """Return True if an outbox row waits; a read, so idle workers take no write lock."""
    return OutboxMessage.objects.filter(relayed_at__isnull=True).exists()


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
    return FunctionRun(
        id=new_id(),
        function_id=intent.function_id,
        event=event,
        status=RunStatus.QUEUED,
        available_at=now,
        parent_run_id=intent.run_id,
        defer_intent=intent,
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
