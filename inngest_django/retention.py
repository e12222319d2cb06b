"""Retention: delete old finished runs, their rows and unneeded events, in short batches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Exists, OuterRef

from . import clock
from .conf import app_settings
from .durations import parse_duration
from .enums import FINISHED_STATUSES
from .models import (
    DeferIntent,
    Event,
    FlowState,
    FunctionRun,
    IdempotencyKey,
    OutboxMessage,
    RunEvent,
    StepRun,
    Wait,
)

logger = logging.getLogger(__name__)

# Every model a prune deletes from, in the order reports list them.
PRUNED_MODELS: tuple[type[models.Model], ...] = (
    FunctionRun,
    StepRun,
    Wait,
    DeferIntent,
    OutboxMessage,
    RunEvent,
    Event,
    FlowState,
    IdempotencyKey,
)
# A batch that loses a race with a new reference to one of its rows is rolled back and taken
# again; the next selection no longer picks that row, so this only bounds a pathological case.
_MAX_RETRIES = 5


@dataclass
class PruneReport:
    """What a prune deleted (or, in a dry run, would delete), per model name."""

    cutoff: datetime
    dry_run: bool = False
    counts: dict[str, int] = field(
        default_factory=lambda: {model.__name__: 0 for model in PRUNED_MODELS}
    )
    batches: int = 0

    @property
    def total(self) -> int:
        """Return the number of rows over all models."""
        return sum(self.counts.values())

    def add(self, counts: dict[str, int]) -> None:
        """Add one batch's counts."""
        self.batches += 1
        for name, count in counts.items():
            self.counts[name] = self.counts.get(name, 0) + count


def parse_older_than(value: timedelta | int | str, *, what: str = "older_than") -> timedelta:
    """Return a retention period as a timedelta, or raise ValueError naming `what`."""
    older_than = parse_duration(value, what=what)
    if older_than <= timedelta(0):
        raise ValueError(f"{what} must be longer than 0, got {value!r}")
    return older_than


def configured_older_than() -> timedelta | None:
    """Return PRUNE_OLDER_THAN as a timedelta, or None when the worker never prunes."""
    value = app_settings.PRUNE_OLDER_THAN
    return None if value is None else parse_older_than(value, what="PRUNE_OLDER_THAN")


# -- what may go ---------------------------------------------------------------------------------


def prunable_runs(cutoff: datetime) -> models.QuerySet[FunctionRun]:
    """Return the finished runs older than `cutoff` that nothing unfinished still needs.

    A finished run stays while an unfinished run points at it (a deferred or invoked child
    through `parent_run`, a rerun through `rerun_of`, a caller's invoke wait through
    `child_run`) and while one of its defers waits in the outbox.
    """
    unfinished = FunctionRun.objects.exclude(status__in=FINISHED_STATUSES).order_by()
    # A deferred run's defer intent belongs to its parent_run, so the first test covers it.
    return (
        FunctionRun.objects.filter(
            status__in=FINISHED_STATUSES,
            finished_at__lt=cutoff,
            # Implied by finished_at, and served by the created_at index: only old rows are read.
            created_at__lt=cutoff,
        )
        .filter(~Exists(unfinished.filter(parent_run=OuterRef("pk"))))
        .filter(~Exists(unfinished.filter(rerun_of=OuterRef("pk"))))
        .filter(
            ~Exists(
                Wait.objects.filter(child_run=OuterRef("pk"))
                .exclude(run__status__in=FINISHED_STATUSES)
                .order_by()
            )
        )
        .filter(
            ~Exists(
                OutboxMessage.objects.filter(
                    intent__run=OuterRef("pk"), relayed_at__isnull=True
                ).order_by()
            )
        )
    )


def prunable_events(
    cutoff: datetime, *, going: models.QuerySet[FunctionRun] | None = None
) -> models.QuerySet[Event]:
    """Return dispatched events older than `cutoff` that no run, batch or wait refers to.

    With `going`, references from those runs (and their batches and waits) do not count: what
    a prune would leave once they are gone, for a dry run.
    """
    runs = FunctionRun.objects.filter(event=OuterRef("pk"))
    batches = RunEvent.objects.filter(event=OuterRef("pk"))
    waits = Wait.objects.filter(event=OuterRef("pk"))
    if going is not None:
        runs = runs.exclude(pk__in=going.values("pk"))
        batches = batches.exclude(run__in=going.values("pk"))
        waits = waits.exclude(run__in=going.values("pk"))
    return Event.objects.filter(
        received_at__lt=cutoff,
        # An undispatched event is work not done yet, however old.
        dispatched_at__isnull=False,
    ).filter(
        ~Exists(runs.order_by()),
        ~Exists(batches.order_by()),
        ~Exists(waits.order_by()),
    )


def idle_flow_states(cutoff: datetime) -> models.QuerySet[FlowState]:
    """Return throttle and rate-limit rows whose pace time is older than `cutoff`.

    A pace time in the past means the key is idle: such a row admits runs exactly as a missing
    one does, and flow control recreates it the next time the key is used.
    """
    return FlowState.objects.filter(tat__lt=cutoff)


def expired_idempotency_keys(now: datetime) -> models.QuerySet[IdempotencyKey]:
    """Return idempotency keys that have expired; an expired key acts as a missing one."""
    return IdempotencyKey.objects.filter(expires_at__lt=now)


# -- deleting in batches -------------------------------------------------------------------------


def _pick(queryset: models.QuerySet, batch_size: int) -> list:
    """Return up to `batch_size` primary keys, locked; call inside atomic()."""
    # PostgreSQL: rows another transaction holds (a run being retried, a key being taken) are
    # skipped, not waited for. SQLite ignores this: the transaction's write lock serialises.
    # No ORDER BY: the scan stops at the batch's last row instead of sorting every old row.
    locked = queryset.select_for_update(skip_locked=True).order_by()
    return list(locked.values_list("pk", flat=True)[:batch_size])


def _delete_runs(cutoff: datetime, batch_size: int) -> dict[str, int] | None:
    with transaction.atomic():
        ids = _pick(prunable_runs(cutoff), batch_size)
        if not ids:
            return None
        # The ORM deletes the runs' steps, waits, batch rows, defers and outbox rows, and sets
        # to NULL the links kept rows have to them (a finished child's parent_run, a rerun's
        # rerun_of, a caller's wait.child_run). only("pk"): outputs are never loaded.
        _, deleted = FunctionRun.objects.filter(pk__in=ids).only("pk").delete()
    return {label.rsplit(".", 1)[-1]: count for label, count in deleted.items()}


def _event_batches(cutoff: datetime, batch_size: int) -> Callable[[], dict[str, int] | None]:
    """Return a step that deletes the unused events of the next window of old events."""
    after = ""

    def step() -> dict[str, int] | None:
        nonlocal after
        with transaction.atomic():
            # A window of old events in id order, then the unused ones among them: each old
            # event is looked at once per prune, and the reference tests are index lookups
            # on a few rows, whatever the planner thinks of the whole table.
            window = list(
                Event.objects.filter(
                    received_at__lt=cutoff, dispatched_at__isnull=False, pk__gt=after
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not window:
                return None
            ids = _pick(prunable_events(cutoff).filter(pk__in=window), batch_size)
            count = _delete_unused_events(cutoff, ids) if ids else 0
        # Only once committed: a window rolled back by a lost race is taken again.
        after = window[-1]
        return {"Event": count}

    return step


def _delete_unused_events(cutoff: datetime, ids: list[str]) -> int:
    # Not the ORM's delete: it would cascade to a run that referred to one of these events
    # since the selection. One statement that checks again deletes only unreferenced rows;
    # on PostgreSQL a reference committed meanwhile fails the deferred foreign key check at
    # commit, and the batch rolls back.
    recheck = prunable_events(cutoff).filter(pk__in=ids).order_by().values("pk")
    select, params = recheck.query.sql_with_params()
    table = connection.ops.quote_name(Event._meta.db_table)
    pk = connection.ops.quote_name(Event._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({select})", params)
        return cursor.rowcount


def _delete_simple(
    queryset: Callable[[], models.QuerySet], batch_size: int, name: str
) -> dict[str, int] | None:
    with transaction.atomic():
        ids = _pick(queryset(), batch_size)
        if not ids:
            return None
        # Still matching: on PostgreSQL the rows are locked, on SQLite nothing else writes.
        count, _ = queryset().filter(pk__in=ids).delete()
    return {name: count}


def iter_prune(
    older_than: timedelta, *, batch_size: int, now: datetime | None = None
) -> Iterator[dict[str, int]]:
    """Delete what a prune removes, one short transaction per batch; yield each batch's counts.

    Runs go first, so the events only they referred to can go next.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be 1 or more")
    now = now or clock.now()
    cutoff = now - older_than
    phases: list[Callable[[], dict[str, int] | None]] = [
        lambda: _delete_runs(cutoff, batch_size),
        _event_batches(cutoff, batch_size),
        lambda: _delete_simple(lambda: idle_flow_states(cutoff), batch_size, "FlowState"),
        lambda: _delete_simple(lambda: expired_idempotency_keys(now), batch_size, "IdempotencyKey"),
    ]
    for phase in phases:
        retries = 0
        while True:
            try:
                counts = phase()
            except IntegrityError:
                # A row of the batch gained a reference as it was deleted; nothing was lost.
                retries += 1
                if retries > _MAX_RETRIES:
                    raise
                logger.info(
                    "Prune batch lost a race and was rolled back; selecting again",
                    extra={"action": "prune_batch_retried"},
                )
                continue
            if counts is None:
                break
            logger.debug(
                "Prune batch deleted %s",
                counts,
                extra={"action": "prune_batch", "counts": counts},
            )
            yield counts


def count_prunable(older_than: timedelta, *, now: datetime | None = None) -> PruneReport:
    """Return what `prune` would delete now, deleting nothing."""
    now = now or clock.now()
    cutoff = now - older_than
    report = PruneReport(cutoff=cutoff, dry_run=True)
    going = prunable_runs(cutoff)
    ids = going.values("pk")
    report.counts.update(
        FunctionRun=going.count(),
        StepRun=StepRun.objects.filter(run__in=ids).count(),
        Wait=Wait.objects.filter(run__in=ids).count(),
        DeferIntent=DeferIntent.objects.filter(run__in=ids).count(),
        OutboxMessage=OutboxMessage.objects.filter(intent__run__in=ids).count(),
        RunEvent=RunEvent.objects.filter(run__in=ids).count(),
        Event=prunable_events(cutoff, going=going).count(),
        FlowState=idle_flow_states(cutoff).count(),
        IdempotencyKey=expired_idempotency_keys(now).count(),
    )
    return report


def prune(
    older_than: timedelta,
    *,
    batch_size: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete finished runs older than `older_than`, their rows, and the events left unused.

    Each batch of `batch_size` rows is its own short transaction, so claims and steps wait at
    most one batch. Unfinished runs and everything they need stay; see docs/retention.md.

    Args:
        older_than: Runs that finished, and events received, longer ago than this go.
        batch_size: Rows deleted per transaction.
        now: The time the cutoff is measured from (default: now).
        dry_run: Count what would go and delete nothing.

    Returns:
        The rows deleted (or that would be) per model name.

    Raises:
        ValueError: `older_than` is not longer than 0 or `batch_size` is below 1.
    """
    if older_than <= timedelta(0):
        raise ValueError("older_than must be longer than 0")
    if batch_size < 1:
        raise ValueError("batch_size must be 1 or more")
    now = now or clock.now()
    if dry_run:
        return count_prunable(older_than, now=now)
    report = PruneReport(cutoff=now - older_than)
    for counts in iter_prune(older_than, batch_size=batch_size, now=now):
        report.add(counts)
    return report
