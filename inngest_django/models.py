"""Events, runs, step memos, dedupe keys, event keys and cron state, with their hot queries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .connections import sqlite_immediate
from .encryption import seal_if_enabled
from .enums import (
    CLAIMABLE_STATUSES,
    FINISHED_STATUSES,
    DeferStatus,
    RunStatus,
    StepOp,
    StepStatus,
    WaitKind,
    WaitOutcome,
)
from .sealed_fields import SealedJSONField, SealedTextField

_CLAIMABLE_SQL = ", ".join(f"'{status.value}'" for status in CLAIMABLE_STATUSES)
# Without statistics (no ANALYZE) SQLite may pick the status index and sort every queued run;
# the claim index yields the oldest due runs first, so a claim reads only what it takes.
_SQLITE_CLAIM_INDEX = "INDEXED BY inngest_run_claimable "


def _full_keys(cursor: Any, table: str, now: datetime) -> list[str]:
    """Return the concurrency keys whose executing runs use every slot, sorted."""
    stamp = _adapt(now)
    running = f"status = '{RunStatus.RUNNING.value}' AND locked_until > %s"
    # Bounded by the runs executing now, whatever the backlog.
    cursor.execute(
        f"SELECT k, MIN(cap), COUNT(*) FROM (SELECT concurrency_key AS k, "
        f"concurrency_limit AS cap FROM {table} WHERE NOT (concurrency_key = '') "
        f"AND {running} UNION ALL SELECT concurrency_key_2 AS k, concurrency_limit_2 AS cap "
        f"FROM {table} WHERE NOT (concurrency_key_2 = '') AND {running}) held GROUP BY k",
        [stamp, stamp],
    )
    return sorted(key for key, cap, count in cursor.fetchall() if cap and count >= cap)


def _blocked_due(
    cursor: Any,
    table: str,
    keys: list[str],
    now: datetime,
    *,
    probe: bool = False,
    park_until: datetime | None = None,
) -> int:
    """Count (`probe`: 1 if any) or park the due, not executing runs of these full keys."""
    marks = ", ".join(["%s"] * len(keys))
    found = 0
    for column in ("concurrency_key", "concurrency_key_2"):
        index = "inngest_run_queued_key" + ("_2" if column.endswith("_2") else "")
        hint = "" if connection.vendor == "postgresql" else f"INDEXED BY {index} "
        # Worded as the partial index's condition, so both databases probe it per key.
        where = (
            f"WHERE status IN ({_CLAIMABLE_SQL}) AND NOT ({column} = '') AND {column} IN "
            f"({marks}) AND available_at <= %s AND status <> '{RunStatus.RUNNING.value}' "
            "AND cancel_requested_at IS NULL"
        )
        if probe:
            cursor.execute(f"SELECT 1 FROM {table} {hint}{where} LIMIT 1", [*keys, _adapt(now)])
            if cursor.fetchone():
                return 1
            continue
        cursor.execute(
            f"UPDATE {table} {hint}SET parked_from = COALESCE(parked_from, available_at), "
            f"available_at = %s {where}",
            [_adapt(park_until), *keys, _adapt(now)],
        )
        found += cursor.rowcount
    return found


def _adapt(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _stamp_oldest_unset(
    model: type[models.Model], column: str, returning: str, *, limit: int, now: datetime
) -> list[Any]:
    """Set `column` to `now` on up to `limit` oldest rows where it is NULL; return `returning`.

    One statement, so on SQLite the transaction starts with a write and holds the lock; on
    PostgreSQL rows another worker is taking are skipped, not waited for.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    sql = (
        f"UPDATE {table} SET {column} = %s WHERE id IN ("
        f"SELECT id FROM {table} WHERE {column} IS NULL ORDER BY id LIMIT %s{lock}) "
        f"RETURNING {returning}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_adapt(now), limit])
        return sorted(row[0] for row in cursor.fetchall())


class EventQuerySet(models.QuerySet):
    def undispatched(self) -> EventQuerySet:
        return self.filter(dispatched_at__isnull=True)

    def claim_undispatched(self, *, limit: int, now: datetime) -> list[str]:
        """Mark up to `limit` new events dispatched and return their ids; call inside atomic()."""
        return _stamp_oldest_unset(self.model, "dispatched_at", "id", limit=limit, now=now)


class Event(models.Model):
    """An event received from `send`, the Event API, cron or the engine itself."""

    id = models.CharField(_("id"), max_length=26, primary_key=True, help_text=_("Internal ULID."))
    name = models.CharField(_("name"), max_length=255, db_index=True)
    data = SealedJSONField(_("data"), default=dict, blank=True)
    external_id = models.CharField(
        _("producer id"),
        max_length=255,
        blank=True,
        db_index=True,
        help_text=_("The sender's `id`; a repeat within 24 hours starts no second run."),
    )
    ts = models.BigIntegerField(_("timestamp (ms)"), help_text=_("Epoch milliseconds."))
    seed_id = models.CharField(
        _("seed id"),
        max_length=26,
        blank=True,
        default="",
        help_text=_(
            "The id an Event API client's id seed gives this event; a retry with the same seed "
            "finds this row instead of storing a copy."
        ),
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(
        _("dispatched at"),
        null=True,
        blank=True,
        help_text=_("When the event was matched against function triggers."),
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(dispatched_at__isnull=True),
                name="inngest_event_undispatched",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["seed_id"],
                condition=~Q(seed_id=""),
                name="inngest_event_seed_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def to_json(self) -> dict[str, Any]:
        """Return the event as handlers and expressions see it."""
        return {
            "name": self.name,
            "data": self.data,
            "id": self.external_id or self.id,
            "ts": self.ts,
        }


class FunctionRunQuerySet(models.QuerySet):
    def any_claimable(self, now: datetime) -> bool:
        """Return True if some run is due; a read through the claim index, not a queue scan."""
        table = connection.ops.quote_name(self.model._meta.db_table)
        hint = "" if connection.vendor == "postgresql" else _SQLITE_CLAIM_INDEX
        sql = (
            f"SELECT 1 FROM {table} {hint}WHERE status IN ({_CLAIMABLE_SQL}) "
            "AND available_at <= %s LIMIT 1"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [_adapt(now)])
            return cursor.fetchone() is not None

    def claimable(self, now: datetime) -> FunctionRunQuerySet:
        return self.filter(status__in=CLAIMABLE_STATUSES, available_at__lte=now)

    def held(self, run_id: str, lease_token: str) -> FunctionRunQuerySet:
        """Return the run only while this lease still holds it."""
        return self.filter(pk=run_id, lease_token=lease_token)

    def claim(
        self, *, worker_id: str, lease_token: str, limit: int, now: datetime, lease_until: datetime
    ) -> list[str]:
        """Lease up to `limit` due runs to this worker and return their ids.

        The runs are the oldest due; PostgreSQL lists them oldest due first, SQLite (whose
        RETURNING cannot see the replaced due times) in the order they were stored.
        """
        table = connection.ops.quote_name(self.model._meta.db_table)
        assignments = (
            f"status = '{RunStatus.RUNNING.value}', locked_by = %s, lease_token = %s, "
            "locked_until = %s, available_at = %s, started_at = COALESCE(started_at, %s), "
            "wake_requested_at = NULL, parked_from = NULL"
        )
        due = f"status IN ({_CLAIMABLE_SQL}) AND available_at <= %s"
        params = [worker_id, lease_token, _adapt(lease_until), _adapt(lease_until), _adapt(now)]
        if connection.features.has_select_for_update_skip_locked:
            # Rows another worker is claiming right now are skipped, not waited for.
            # RETURNING lists rows in no set order; the picked due times restore oldest-first.
            sql = (
                f"WITH picked AS (SELECT id, available_at FROM {table} WHERE {due} "
                f"ORDER BY available_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
                f"UPDATE {table} SET {assignments} FROM picked WHERE {table}.id = picked.id "
                f"RETURNING {table}.id, picked.available_at"
            )
            params = [_adapt(now), limit, *params]
        elif limit > 1 and sqlite_immediate(connection):
            return self._claim_in_order(assignments, params, due, now, limit)
        else:
            # SQLite has one writer at a time: this single UPDATE is the serialised claim.
            sql = (
                f"UPDATE {table} SET {assignments} WHERE id IN (SELECT id FROM {table} "
                f"{_SQLITE_CLAIM_INDEX}WHERE {due} ORDER BY available_at, id LIMIT %s) RETURNING id"
            )
            params = [*params, _adapt(now), limit]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if rows and len(rows[0]) > 1:
            rows.sort(key=lambda row: (row[1], row[0]))
        return [row[0] for row in rows]

    def _claim_in_order(
        self, assignments: str, params: list[Any], due: str, now: datetime, limit: int
    ) -> list[str]:
        """SQLite claim of several runs, returned oldest due first (priority order)."""
        # The IMMEDIATE transaction holds the write lock since BEGIN, so the rows read here
        # cannot change before the UPDATE; SQLite's RETURNING sees only the replaced due times.
        table = connection.ops.quote_name(self.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {table} {_SQLITE_CLAIM_INDEX}WHERE {due} "
                "ORDER BY available_at, id LIMIT %s",
                [_adapt(now), limit],
            )
            picked = [row[0] for row in cursor.fetchall()]
            if not picked:
                return []
            marks = ", ".join(["%s"] * len(picked))
            cursor.execute(
                f"UPDATE {table} SET {assignments} WHERE id IN ({marks}) RETURNING id",
                [*params, *picked],
            )
            claimed = {row[0] for row in cursor.fetchall()}
        return [run_id for run_id in picked if run_id in claimed]

    def claim_limited(
        self, *, worker_id: str, lease_token: str, limit: int, now: datetime, lease_until: datetime
    ) -> list[str]:
        """Like `claim`, but never lets more runs of a concurrency key execute than its limit.

        Call inside atomic(). Candidates whose keys look full are passed over in the scan;
        the keys of the rest are then locked (PostgreSQL advisory locks, in key order; SQLite
        has one writer) and counted again, so two workers cannot both take the last slot.
        """
        table = connection.ops.quote_name(self.model._meta.db_table)
        on_postgres = connection.vendor == "postgresql"
        lock = " FOR UPDATE OF c SKIP LOCKED" if on_postgres else ""
        hint = "" if on_postgres else _SQLITE_CLAIM_INDEX

        def holders(column: str, key: str) -> str:
            # Worded as the partial index's condition, so both databases count from it.
            return (
                f"(SELECT COUNT(*) FROM {table} r WHERE NOT (r.{column} = '') "
                f"AND r.status = '{RunStatus.RUNNING.value}' AND r.{column} = c.{key} "
                "AND r.locked_until > %s AND r.id <> c.id)"
            )

        def room(key: str, cap: str) -> str:
            return (
                f"(c.{key} = '' OR {holders('concurrency_key', key)} "
                f"+ {holders('concurrency_key_2', key)} < c.{cap})"
            )

        sql = (
            "SELECT c.id, c.concurrency_key, c.concurrency_limit, c.concurrency_key_2, "
            f"c.concurrency_limit_2 FROM {table} c {hint}WHERE c.status IN ({_CLAIMABLE_SQL}) "
            f"AND c.available_at <= %s AND {room('concurrency_key', 'concurrency_limit')} "
            f"AND {room('concurrency_key_2', 'concurrency_limit_2')} "
            f"ORDER BY c.available_at, c.id LIMIT %s{lock}"
        )
        stamp = _adapt(now)
        with connection.cursor() as cursor:
            # Five leases: parked runs wake when slots free, so this is only a backstop.
            self._park_blocked(cursor, table, now=now, until=now + (lease_until - now) * 5)
            cursor.execute(sql, [stamp, stamp, stamp, stamp, stamp, limit * 4])
            candidates = cursor.fetchall()
            keys = sorted({k for row in candidates for k in (row[1], row[3]) if k})
            running = self._running_per_key(cursor, table, keys, [r[0] for r in candidates], now)
            accepted = []
            for run_id, key, cap, key_2, cap_2 in candidates:
                slots = [(k, c) for k, c in ((key, cap), (key_2, cap_2)) if k]
                if len(accepted) < limit and all(running.get(k, 0) < c for k, c in slots):
                    accepted.append(run_id)
                    for k, _ in slots:
                        running[k] = running.get(k, 0) + 1
        if not accepted:
            return []
        picked = self.filter(pk__in=accepted)
        picked.update(
            status=RunStatus.RUNNING,
            locked_by=worker_id,
            lease_token=lease_token,
            locked_until=lease_until,
            available_at=lease_until,
            wake_requested_at=None,
            parked_from=None,
            started_at=models.functions.Coalesce("started_at", models.Value(now)),
        )
        order = {run_id: index for index, run_id in enumerate(accepted)}
        return sorted(accepted, key=order.__getitem__)

    @staticmethod
    def _park_blocked(cursor: Any, table: str, *, now: datetime, until: datetime) -> int:
        """Set aside due runs whose concurrency key is full; return how many.

        Without this, every claim would pass over each queued run of a full key again, so
        claims would slow down with the backlog. A parked run keeps its due time in
        `parked_from` and is due again when a run of its key frees a slot (`unpark`); `until`
        is only a backstop (a limit raised by a deploy frees slots no run hands over). The
        cost is in executing runs and index probes per full key, never in queued runs.
        """
        full = _full_keys(cursor, table, now)
        if not full or not _blocked_due(cursor, table, full, now, probe=True):
            return 0
        if connection.vendor == "postgresql":
            # unpark takes these locks too: a slot freed while this claim decides is either
            # seen by the count below or wakes these runs once the claim commits. Their own
            # namespace, all taken before the claim's key locks, so no two claims deadlock.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('inngest-park:' || k)) FROM (SELECT k "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n) AS sorted",
                [full],
            )
            still = set(_full_keys(cursor, table, now))
            full = [key for key in full if key in still]
            if not full:
                return 0
        return _blocked_due(cursor, table, full, now, park_until=until)

    def unpark(self, keys: Sequence[str]) -> int:
        """Make the oldest parked run of each key due again, at its old place: a slot freed.

        Call once the run that held the slot has released it (committed).
        """
        woken = 0
        for key in sorted({key for key in keys if key}):
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        # The park lock of the key: see _park_blocked.
                        cursor.execute(
                            "SELECT pg_advisory_xact_lock(hashtext('inngest-park:' || %s))", [key]
                        )
                for column in ("concurrency_key", "concurrency_key_2"):
                    oldest = (
                        self.filter(parked_from__isnull=False, **{column: key})
                        .order_by("parked_from", "id")
                        .values("pk")[:1]
                    )
                    # Checked again: another run's unpark may have woken the same one.
                    picked = self.filter(pk__in=models.Subquery(oldest), parked_from__isnull=False)
                    woken += picked.update(available_at=models.F("parked_from"), parked_from=None)
        return woken

    @staticmethod
    def _running_per_key(
        cursor: Any, table: str, keys: list[str], excluded: list[str], now: datetime
    ) -> dict[str, int]:
        """Lock `keys` (PostgreSQL) and return how many live runs hold each."""
        if not keys:
            return {}
        if connection.vendor == "postgresql":
            for key in keys:  # in sorted order, so two workers never wait on each other
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
        marks = ", ".join(["%s"] * len(keys))
        skip = ", ".join(["%s"] * len(excluded)) or "''"
        stamp = _adapt(now)
        running = f"status = '{RunStatus.RUNNING.value}' AND locked_until > %s"
        sql = (
            f"SELECT k, COUNT(*) FROM (SELECT concurrency_key AS k FROM {table} "
            f"WHERE NOT (concurrency_key = '') AND {running} "
            f"AND concurrency_key IN ({marks}) AND id NOT IN ({skip}) "
            f"UNION ALL SELECT concurrency_key_2 AS k FROM {table} "
            f"WHERE NOT (concurrency_key_2 = '') AND {running} "
            f"AND concurrency_key_2 IN ({marks}) AND id NOT IN ({skip})) counted GROUP BY k"
        )
        cursor.execute(sql, [stamp, *keys, *excluded, stamp, *keys, *excluded])
        return dict(cursor.fetchall())

    def extend_leases(self, lease_tokens: Sequence[str], lease_until: datetime) -> int:
        """Push back the lease expiry of runs held under these tokens (the heartbeat)."""
        # Only ever later: a beat that waited behind a step which renewed the lease itself must
        # not hand the run back early with a time computed before the wait.
        return self.filter(
            lease_token__in=lease_tokens, status=RunStatus.RUNNING, locked_until__lt=lease_until
        ).update(locked_until=lease_until, available_at=lease_until)


_RELEASED = {"locked_by": "", "lease_token": "", "locked_until": None}


def _due_unless_cancelled(at: datetime) -> models.Case:
    """Return `at`, or the time of a cancel or wake request that came while the run executed."""
    # Evaluated in the UPDATE itself, on the row as it is when the update gets its lock, so a
    # request that lands while the run executes is seen when the run releases its lease.
    return models.Case(
        models.When(cancel_requested_at__isnull=False, then=models.F("cancel_requested_at")),
        models.When(wake_requested_at__isnull=False, then=models.F("wake_requested_at")),
        default=models.Value(at),
    )


class FunctionRun(models.Model):
    """One run of a function: its status, trigger event, output or error, and lease."""

    id = models.CharField(_("id"), max_length=26, primary_key=True)
    function_id = models.CharField(_("function"), max_length=255, help_text=_("Function slug."))
    status = models.CharField(
        _("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    event = models.ForeignKey(
        Event,
        verbose_name=_("trigger event"),
        on_delete=models.CASCADE,
        related_name="runs",
    )
    output = SealedJSONField(_("output"), null=True, blank=True)
    error = SealedJSONField(
        _("error"),
        null=True,
        blank=True,
        help_text=_("Name, message and stack of the failure (or of the last failed attempt)."),
    )
    parent_run = models.ForeignKey(
        "self",
        verbose_name=_("parent run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="child_runs",
    )
    rerun_of = models.ForeignKey(
        "self",
        verbose_name=_("rerun of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reruns",
        help_text=_("The run this one repeats from the start, with the same event."),
    )
    defer_intent = models.OneToOneField(
        "DeferIntent",
        verbose_name=_("started by defer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deferred_run",
        help_text=_("The ctx.defer call this deferred run was started by; one run per call."),
    )
    cancel_requested_at = models.DateTimeField(
        _("cancel requested at"),
        null=True,
        blank=True,
        help_text=_("Set by cancel_run; the run stops at its next step boundary."),
    )
    wake_requested_at = models.DateTimeField(
        _("wake requested at"),
        null=True,
        blank=True,
        help_text=_("Set when what the run waits for arrived; cleared when a worker claims it."),
    )
    cancel_reason = models.CharField(
        _("cancel reason"), max_length=255, blank=True, default="", help_text=_("Who asked.")
    )
    flow_note = models.CharField(
        _("flow control"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("Why flow control skipped, delayed or reordered the run."),
    )
    concurrency_key = models.CharField(_("concurrency key"), max_length=255, blank=True, default="")
    concurrency_limit = models.PositiveIntegerField(_("concurrency limit"), default=0)
    concurrency_key_2 = models.CharField(
        _("second concurrency key"), max_length=255, blank=True, default=""
    )
    concurrency_limit_2 = models.PositiveIntegerField(_("second concurrency limit"), default=0)
    parked_from = models.DateTimeField(
        _("parked from"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Set while the run waits for a slot of a full concurrency key: the due time it "
            "had, restored when a slot frees."
        ),
    )
    singleton_key = models.CharField(_("singleton key"), max_length=255, blank=True, default="")
    debounce_key = models.CharField(_("debounce key"), max_length=255, blank=True, default="")
    batch_key = models.CharField(
        _("open batch key"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("Set while the run's batch still takes events."),
    )
    batch_size = models.PositiveIntegerField(
        _("batch size"), default=0, help_text=_("Events in the run's batch; 0 for no batch.")
    )
    debounce_deadline = models.DateTimeField(
        _("debounce deadline"),
        null=True,
        blank=True,
        help_text=_("Debounce timeout: later events no longer push the start past this."),
    )
    attempt = models.PositiveIntegerField(
        _("attempt"), default=0, help_text=_("Failed attempts of the current step (0-based).")
    )
    manual_retries = models.PositiveIntegerField(
        _("manual retries"),
        default=0,
        help_text=_("How often someone retried this run after it failed."),
    )
    available_at = models.DateTimeField(
        _("available at"),
        help_text=_("When the run may be claimed next; for a running run, its lease expiry."),
    )
    locked_by = models.CharField(_("locked by"), max_length=255, blank=True, default="")
    lease_token = models.CharField(_("lease token"), max_length=32, blank=True, default="")
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = FunctionRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("function run")
        verbose_name_plural = _("function runs")
        ordering = ["-created_at"]
        permissions = [
            ("cancel_functionrun", "Can cancel function runs"),
            ("rerun_functionrun", "Can rerun function runs"),
            ("retry_functionrun", "Can retry failed function runs"),
            ("view_payloads", "Can view payloads (event data, inputs, outputs, errors)"),
        ]
        indexes = [
            # (available_at, id): the claim's ORDER BY, so it reads the first rows and stops.
            models.Index(
                fields=["available_at", "id"],
                condition=Q(status__in=CLAIMABLE_STATUSES),
                name="inngest_run_claimable",
            ),
            # The newest-first run lists of the admin and the REST API, with no other filter.
            models.Index(fields=["-created_at"], name="inngest_run_created"),
            models.Index(fields=["function_id", "-created_at"], name="inngest_run_function"),
            models.Index(fields=["status", "-created_at"], name="inngest_run_status"),
            models.Index(fields=["lease_token"], name="inngest_run_lease"),
            # Counting a key's executing runs reads only those, never the key's history.
            models.Index(
                fields=["concurrency_key"],
                condition=~Q(concurrency_key="") & Q(status=RunStatus.RUNNING),
                name="inngest_run_concurrency",
            ),
            models.Index(
                fields=["concurrency_key_2"],
                condition=~Q(concurrency_key_2="") & Q(status=RunStatus.RUNNING),
                name="inngest_run_concurrency_2",
            ),
            # A full key's due runs, for the claim to park them without reading the queue.
            models.Index(
                fields=["concurrency_key", "available_at"],
                condition=Q(status__in=CLAIMABLE_STATUSES) & ~Q(concurrency_key=""),
                name="inngest_run_queued_key",
            ),
            models.Index(
                fields=["concurrency_key_2", "available_at"],
                condition=Q(status__in=CLAIMABLE_STATUSES) & ~Q(concurrency_key_2=""),
                name="inngest_run_queued_key_2",
            ),
            # A key's parked runs, oldest first, for the run that frees a slot to wake one.
            models.Index(
                fields=["concurrency_key", "parked_from", "id"],
                condition=Q(parked_from__isnull=False),
                name="inngest_run_parked",
            ),
            models.Index(
                fields=["concurrency_key_2", "parked_from", "id"],
                condition=Q(parked_from__isnull=False),
                name="inngest_run_parked_2",
            ),
            models.Index(
                fields=["function_id", "singleton_key"],
                condition=~Q(singleton_key="") & Q(status__in=CLAIMABLE_STATUSES),
                name="inngest_run_singleton",
            ),
            models.Index(
                fields=["function_id", "batch_key"],
                condition=~Q(batch_key="") & Q(status=RunStatus.QUEUED),
                name="inngest_run_open_batch",
            ),
            models.Index(
                fields=["function_id", "debounce_key"],
                condition=~Q(debounce_key="") & Q(status=RunStatus.QUEUED),
                name="inngest_run_debounce",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.function_id} {self.id}"

    @classmethod
    def touch(cls, run_id: str, lease_token: str, lease_until: datetime) -> bool:
        """Extend the lease and reset the attempt counter after a step; False if lease lost."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                attempt=0, locked_until=lease_until, available_at=lease_until
            )
        )

    @classmethod
    def take_over(
        cls,
        run_id: str,
        handed_token: str,
        *,
        lease_token: str,
        locked_by: str,
        lease_until: datetime,
    ) -> bool:
        """Swap a running run's lease for a new holder's; False if `handed_token` lost it."""
        return bool(
            cls.objects.held(run_id, handed_token)
            .filter(status=RunStatus.RUNNING)
            .update(
                lease_token=lease_token,
                locked_by=locked_by,
                locked_until=lease_until,
                available_at=lease_until,
            )
        )

    @classmethod
    def request_cancel(cls, run_id: str, *, now: datetime, reason: str = "") -> bool:
        """Ask an unfinished run to stop; a run not executing now becomes due at once."""
        not_running = Q(status__in=[RunStatus.QUEUED, RunStatus.SLEEPING, RunStatus.WAITING])
        return bool(
            cls.objects.filter(pk=run_id, cancel_requested_at__isnull=True)
            .exclude(status__in=FINISHED_STATUSES)
            .update(
                cancel_requested_at=now,
                cancel_reason=reason[:255],
                available_at=models.Case(
                    models.When(not_running, then=models.Value(now)),
                    default=models.F("available_at"),
                ),
            )
        )

    @classmethod
    def cancel_requested(cls, run_id: str) -> bool:
        """Return True if someone asked this run to stop."""
        return cls.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists()

    @classmethod
    def mark_queued_for_retry(
        cls, run_id: str, lease_token: str, *, retry_at: datetime, error: dict[str, Any]
    ) -> bool:
        """Release the run to be retried at `retry_at` with one more failed attempt."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.QUEUED,
                attempt=models.F("attempt") + 1,
                available_at=_due_unless_cancelled(retry_at),
                error=error,
                **_RELEASED,
            )
        )

    @classmethod
    def release_claim(
        cls, run_id: str, lease_token: str, *, claimed_at: datetime, now: datetime
    ) -> bool:
        """Hand back a run claimed ahead and never started, due now for any worker."""
        # The claim stamped started_at only if no earlier pass had: undo just that stamp.
        started_at = models.Case(
            models.When(started_at=claimed_at, then=models.Value(None)),
            default=models.F("started_at"),
            output_field=models.DateTimeField(),
        )
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.QUEUED, available_at=now, started_at=started_at, **_RELEASED
            )
        )

    @classmethod
    def mark_sleeping(cls, run_id: str, lease_token: str, *, until: datetime) -> bool:
        """Release the run until `until`."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.SLEEPING,
                attempt=0,
                available_at=_due_unless_cancelled(until),
                **_RELEASED,
            )
        )

    @classmethod
    def mark_waiting(cls, run_id: str, lease_token: str, *, until: datetime) -> bool:
        """Release the run until `until` (a timeout) or until what it waits for arrives."""
        return bool(
            cls.objects.held(run_id, lease_token).update(
                status=RunStatus.WAITING,
                attempt=0,
                available_at=_due_unless_cancelled(until),
                **_RELEASED,
            )
        )

    @classmethod
    def wake(cls, run_id: str, *, now: datetime) -> int:
        """Make a waiting run due now: what it waited for has arrived."""
        # An executing run keeps its lease expiry; the flag makes its release due at once.
        return cls.objects.filter(pk=run_id).update(
            wake_requested_at=now,
            available_at=models.Case(
                models.When(status=RunStatus.WAITING, then=models.Value(now)),
                default=models.F("available_at"),
            ),
        )

    @classmethod
    def reopen_failed(cls, run_id: str, *, now: datetime) -> bool:
        """Queue a FAILED run again, keeping its completed steps; False if it is not FAILED."""
        reopened = cls.objects.filter(pk=run_id, status=RunStatus.FAILED).update(
            status=RunStatus.QUEUED,
            attempt=0,
            manual_retries=models.F("manual_retries") + 1,
            output=None,
            finished_at=None,
            cancel_requested_at=None,
            cancel_reason="",
            wake_requested_at=None,
            available_at=now,
            **_RELEASED,
        )
        if reopened:
            # The failed step's memo would replay as a StepError; without it the step runs again.
            StepRun.objects.filter(run_id=run_id, status=StepStatus.FAILED).delete()
        return bool(reopened)

    @classmethod
    def mark_finished(
        cls,
        run_id: str,
        lease_token: str,
        *,
        status: RunStatus,
        now: datetime,
        output: Any = None,
        error: dict[str, Any] | None = None,
        cancel_reason: str | None = None,
    ) -> bool:
        """Set a final status with its output or error and release the run."""
        extra = {} if cancel_reason is None else {"cancel_reason": cancel_reason[:255]}
        return bool(
            cls.objects.held(run_id, lease_token).update(
                **extra,
                status=status,
                output=output,
                error=error,
                finished_at=now,
                available_at=now,
                **_RELEASED,
            )
        )


class StepRun(models.Model):
    """The memo of one step of one run: what it returned or how it failed."""

    run = models.ForeignKey(
        FunctionRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="steps"
    )
    step_key = models.CharField(
        _("step id"), max_length=255, help_text=_("The step id, with :N for the n-th repeat.")
    )
    op = models.CharField(_("operation"), max_length=16, choices=StepOp.choices)
    status = models.CharField(_("status"), max_length=16, choices=StepStatus.choices)
    output = SealedJSONField(_("output"), null=True, blank=True)
    error = SealedJSONField(_("error"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    wake_at = models.DateTimeField(
        _("wakes at"), null=True, blank=True, help_text=_("For sleeps: when the run resumes.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_key"], name="inngest_step_unique_key"),
        ]

    def __str__(self) -> str:
        return self.step_key

    @classmethod
    def record_if_held(
        cls,
        *,
        run_id: str,
        lease_token: str,
        step_key: str,
        op: str,
        status: str,
        output: Any,
        started_at: datetime,
        finished_at: datetime,
    ) -> bool:
        """Insert a step memo only while `lease_token` holds the run; False if it does not."""
        meta, run_meta = cls._meta, FunctionRun._meta
        quote = connection.ops.quote_name
        columns = ", ".join(
            quote(meta.get_field(name).column)
            for name in (
                "run",
                "step_key",
                "op",
                "status",
                "output",
                "attempts",
                "created_at",
                "started_at",
                "finished_at",
            )
        )
        on_postgres = connection.vendor == "postgresql"
        json_param = "%s::jsonb" if on_postgres else "%s"
        # FOR SHARE keeps a claimer from taking the run between this check and the commit.
        lock = " FOR SHARE" if on_postgres else ""
        # Raw SQL: the ORM's per-call query building costs more than the statement itself.
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) "
            f"SELECT id, %s, %s, %s, {json_param}, 1, %s, %s, %s "
            f"FROM {quote(run_meta.db_table)} WHERE id = %s AND lease_token = %s{lock}"
        )
        params = [
            step_key,
            op,
            status,
            None if output is None else json.dumps(seal_if_enabled(output)),
            _adapt(finished_at),
            _adapt(started_at),
            _adapt(finished_at),
            run_id,
            lease_token,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1


class DeferIntent(models.Model):
    """One `ctx.defer` call of one run: its target, payload and whether it will start."""

    run = models.ForeignKey(
        FunctionRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="defers"
    )
    defer_id = models.CharField(_("defer id"), max_length=255)
    function_id = models.CharField(
        _("deferred function"), max_length=255, help_text=_("Slug of the function to start.")
    )
    payload = SealedJSONField(
        _("payload"), null=True, blank=True, help_text=_("The validated data, as JSON.")
    )
    experiment = models.JSONField(
        _("experiment"),
        null=True,
        blank=True,
        help_text=_("The experiment variant the deferred run is attributed to."),
    )
    status = models.CharField(_("status"), max_length=16, choices=DeferStatus.choices)
    reason = SealedTextField(
        _("reason"), blank=True, default="", help_text=_("Why the call was rejected.")
    )
    size = models.PositiveIntegerField(_("payload size (bytes)"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("defer")
        verbose_name_plural = _("defers")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "defer_id"], name="inngest_defer_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.defer_id} -> {self.function_id}"

    @classmethod
    def schedule_pending(cls, run_id: str, *, now: datetime) -> int:
        """Mark the run's pending defers scheduled and write one outbox row each."""
        table = connection.ops.quote_name(cls._meta.db_table)
        # One statement when the run deferred nothing, which is the common finalize.
        sql = (
            f"UPDATE {table} SET status = %s, updated_at = %s "
            "WHERE run_id = %s AND status = %s RETURNING id"
        )
        params = [DeferStatus.SCHEDULED.value, _adapt(now), run_id, DeferStatus.PENDING.value]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids = sorted(row[0] for row in cursor.fetchall())
            if ids:
                # Raw: bulk_create's SQL building costs more than the insert itself.
                outbox = connection.ops.quote_name(OutboxMessage._meta.db_table)
                rows = ", ".join(["(%s, %s)"] * len(ids))
                stamp = _adapt(now)
                cursor.execute(
                    f"INSERT INTO {outbox} (intent_id, created_at) VALUES {rows}",
                    [value for pk in ids for value in (pk, stamp)],
                )
        return len(ids)


class OutboxMessage(models.Model):
    """A defer to start, written with its parent's final status; relayed into one run."""

    intent = models.OneToOneField(
        DeferIntent, verbose_name=_("defer"), on_delete=models.CASCADE, related_name="outbox"
    )
    created_at = models.DateTimeField(_("created at"))
    relayed_at = models.DateTimeField(
        _("relayed at"),
        null=True,
        blank=True,
        help_text=_("When the relay started the deferred run."),
    )

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(relayed_at__isnull=True),
                name="inngest_outbox_unrelayed",
            ),
        ]

    def __str__(self) -> str:
        return f"outbox {self.pk}"

    @classmethod
    def claim_unrelayed(cls, *, limit: int, now: datetime) -> list[int]:
        """Mark up to `limit` rows relayed and return their intent ids; call inside atomic()."""
        return _stamp_oldest_unset(cls, "relayed_at", "intent_id", limit=limit, now=now)


class RunEvent(models.Model):
    """One event of a batched run, in the order the batch received them."""

    run = models.ForeignKey(
        FunctionRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="batch_events"
    )
    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="+"
    )
    position = models.PositiveIntegerField(_("position"))

    class Meta:
        verbose_name = _("batched event")
        verbose_name_plural = _("batched events")
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="inngest_run_event_position"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}[{self.position}]"


class FlowState(models.Model):
    """The pacing state of one throttle or rate limit key: GCRA's theoretical arrival time."""

    function_id = models.CharField(_("function"), max_length=255)
    kind = models.CharField(_("kind"), max_length=16)
    key = models.CharField(_("key"), max_length=255, blank=True, default="")
    tat = models.DateTimeField(
        _("theoretical arrival time"),
        help_text=_("Starts are paced so that this time moves on by period / limit each."),
    )

    class Meta:
        verbose_name = _("flow control state")
        verbose_name_plural = _("flow control states")
        constraints = [
            models.UniqueConstraint(
                fields=["function_id", "kind", "key"], name="inngest_flow_state_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.function_id} {self.kind} {self.key}"


class WaitQuerySet(models.QuerySet):
    def pending(self) -> WaitQuerySet:
        return self.filter(resolved_at__isnull=True)


class Wait(models.Model):
    """What a run waits for: an event (wait_for_event), an invoked run, or a cancel rule's event."""

    run = models.ForeignKey(
        FunctionRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="waits"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=WaitKind.choices)
    step_key = models.CharField(_("step id"), max_length=255, blank=True, default="")
    event_name = models.CharField(
        _("event name"), max_length=255, blank=True, default="", help_text=_("The awaited event.")
    )
    match_key = models.CharField(
        _("match field"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("Path such as data.user_id that must equal the run's trigger event's."),
    )
    match_value = models.CharField(
        _("match value"), max_length=255, blank=True, default="", help_text=_("As JSON.")
    )
    expression = SealedTextField(
        _("if expression"), blank=True, default="", help_text=_("CEL over `event` and `async`.")
    )
    after_event_id = models.CharField(
        _("after event id"),
        max_length=26,
        blank=True,
        default="",
        help_text=_("Only events with a later id count: those received after the wait began."),
    )
    child_run = models.ForeignKey(
        FunctionRun,
        verbose_name=_("invoked run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoked_by",
    )
    expires_at = models.DateTimeField(_("times out at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=WaitOutcome.choices, blank=True, default=""
    )
    event = models.ForeignKey(
        Event,
        verbose_name=_("matched event"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = WaitQuerySet.as_manager()

    class Meta:
        verbose_name = _("wait")
        verbose_name_plural = _("waits")
        ordering = ["id"]
        indexes = [
            # One incoming event finds its waits by name and match value, never by a scan.
            models.Index(
                fields=["event_name", "match_key", "match_value"],
                condition=Q(resolved_at__isnull=True),
                name="inngest_wait_pending_match",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.step_key or self.event_name}"

    @classmethod
    def resolve(
        cls,
        pk: int,
        *,
        now: datetime,
        outcome: WaitOutcome,
        event_id: str | None = None,
    ) -> bool:
        """Resolve a pending wait; False if something else resolved it first."""
        return bool(
            cls.objects.filter(pk=pk, resolved_at__isnull=True).update(
                resolved_at=now, outcome=outcome, event_id=event_id
            )
        )


class WaitKey(models.Model):
    """A match field ("" for none) some wait used for an event name: where an event looks."""

    event_name = models.CharField(_("event name"), max_length=255)
    match_key = models.CharField(_("match field"), max_length=255)

    class Meta:
        verbose_name = _("wait key")
        verbose_name_plural = _("wait keys")
        constraints = [
            models.UniqueConstraint(
                fields=["event_name", "match_key"], name="inngest_wait_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_name}: {self.match_key}"


class IdempotencyKey(models.Model):
    """A key that lets one run per function through until it expires (event ids, for now)."""

    function_id = models.CharField(_("function"), max_length=255)
    key = models.CharField(_("key"), max_length=255)
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["function_id", "key"], name="inngest_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.function_id}: {self.key}"

    @classmethod
    def acquire(cls, function_id: str, key: str, *, now: datetime, expires_at: datetime) -> bool:
        """Take the key until `expires_at`; False if someone holds it unexpired."""
        rows = cls.objects.filter(function_id=function_id, key=key)
        # Twice at most: retention may delete an expired key between the insert and the update.
        for _attempt in range(2):
            try:
                with transaction.atomic():
                    cls.objects.create(function_id=function_id, key=key, expires_at=expires_at)
                    return True
            except IntegrityError:
                if rows.filter(expires_at__lte=now).update(expires_at=expires_at):
                    return True
                if rows.exists():
                    return False
        return False


class EventKey(models.Model):
    """A credential for the Event API: only its SHA-256 digest is stored."""

    name = models.CharField(
        _("name"), max_length=255, help_text=_("Who uses the key, for example 'billing service'.")
    )
    prefix = models.CharField(
        _("prefix"),
        max_length=8,
        db_index=True,
        help_text=_("The key's first characters, to tell keys apart without storing them."),
    )
    digest = models.CharField(_("SHA-256 digest"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(
        _("revoked at"),
        null=True,
        blank=True,
        help_text=_("A revoked key is refused with 401; the row stays for the record."),
    )
    event_prefixes = models.JSONField(
        _("event name prefixes"),
        default=list,
        blank=True,
        help_text=_(
            "Event names this key may send must start with one of these; empty allows any name."
        ),
    )

    class Meta:
        verbose_name = _("event key")
        verbose_name_plural = _("event keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class CronSchedule(models.Model):
    """The next tick of one cron trigger, advanced by compare-and-set so each tick fires once."""

    key = models.CharField(_("key"), max_length=512, unique=True)
    function_id = models.CharField(_("function"), max_length=255)
    cron = models.CharField(_("cron"), max_length=300)
    next_tick_at = models.DateTimeField(_("next tick at"))
    last_tick_at = models.DateTimeField(_("last tick at"), null=True, blank=True)

    class Meta:
        verbose_name = _("cron schedule")
        verbose_name_plural = _("cron schedules")

    def __str__(self) -> str:
        return f"{self.function_id}: {self.cron}"

    @classmethod
    def advance(cls, key: str, *, expected_tick: datetime, next_tick: datetime) -> bool:
        """Move the schedule from `expected_tick` to `next_tick`; False if another worker did."""
        return bool(
            cls.objects.filter(key=key, next_tick_at=expected_tick).update(
                next_tick_at=next_tick, last_tick_at=expected_tick
            )
        )
