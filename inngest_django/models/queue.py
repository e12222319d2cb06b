"""The queue in raw SQL: claims of runs, events and outbox rows, concurrency parking, leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction

from ..connections import sqlite_immediate
from ..enums import CLAIMABLE_STATUSES, RunStatus
from .cursors import prepared_cursor
from .pauses import paused_clause
from .rows import adapt_datetime
from .run_reads import events_table, read_with_events, with_event_columns

_CLAIMABLE_SQL = ", ".join(f"'{status.value}'" for status in CLAIMABLE_STATUSES)
# Without statistics (no ANALYZE) SQLite may pick the status index and sort every queued run;
# the claim index yields the oldest due runs first, so a claim reads only what it takes.
_SQLITE_CLAIM_INDEX = "INDEXED BY inngest_run_claimable "
# What a claim sets: worker, lease token, lease end (twice: it is the due time too), now.
_CLAIM_ASSIGNMENTS = (
    f"status = '{RunStatus.RUNNING.value}', locked_by = %s, lease_token = %s, "
    "locked_until = %s, available_at = %s, started_at = COALESCE(started_at, %s), "
    "wake_requested_at = NULL, parked_from = NULL"
)


def _due_sql(table: str) -> str:
    """Return SQL true for a claimable run due at the one parameter (now)."""
    # A paused function's runs wait, due, until it is resumed.
    return f"status IN ({_CLAIMABLE_SQL}) AND available_at <= %s AND {paused_clause(table)}"


def _skip_locked_claim_sql(table: str, returning: str) -> tuple[str, str]:
    """Return PostgreSQL's claim of the oldest due runs: its `picked` CTE and its UPDATE.

    Parameters: now and the limit (the CTE's), then the assignments' (`_assignment_params`).
    Rows another worker is claiming right now are skipped, not waited for.
    """
    picked = (
        f"picked AS (SELECT id, available_at FROM {table} WHERE {_due_sql(table)} "
        "ORDER BY available_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
    )
    update = (
        f"UPDATE {table} SET {_CLAIM_ASSIGNMENTS} FROM picked WHERE {table}.id = picked.id "
        f"RETURNING {returning}"
    )
    return picked, update


def _assignment_params(
    worker_id: str, lease_token: str, now: datetime, lease_until: datetime
) -> list[Any]:
    """Return the parameters of `_CLAIM_ASSIGNMENTS`."""
    return [worker_id, lease_token, _adapt(lease_until), _adapt(lease_until), _adapt(now)]


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
    return adapt_datetime(value)


def _stamp_oldest_unset(
    model: type[models.Model], column: str, returning: str, *, limit: int, now: datetime
) -> list[Any]:
    """Set `column` to `now` on up to `limit` oldest rows where it is NULL; return `returning`.

    One statement, so on SQLite the transaction starts with a write and holds the lock; on
    PostgreSQL rows another worker is taking are skipped, not waited for.
    """
    with connection.cursor() as cursor:
        cursor.execute(*stamp_oldest_unset_sql(model, column, returning, limit=limit, now=now))
        return sorted(row[0] for row in cursor.fetchall())


def stamp_oldest_unset_sql(
    model: type[models.Model], column: str, returning: str, *, limit: int, now: datetime
) -> tuple[str, list[Any]]:
    """Return the SQL and parameters of `_stamp_oldest_unset`, RETURNING `returning`."""
    table = connection.ops.quote_name(model._meta.db_table)
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    sql = (
        f"UPDATE {table} SET {column} = %s WHERE id IN ("
        f"SELECT id FROM {table} WHERE {column} IS NULL ORDER BY id LIMIT %s{lock}) "
        f"RETURNING {returning}"
    )
    return sql, [_adapt(now), limit]


def any_unset(model: type[models.Model], column: str) -> bool:
    """Return True if some row's `column` is NULL: a worker's per-round look for new work.

    Raw SQL, as every round of every worker asks, busy or idle; the partial index on the
    unset rows answers it.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE {column} IS NULL LIMIT 1")
        return cursor.fetchone() is not None


class FunctionRunQuerySet(models.QuerySet):
    def any_claimable(self, now: datetime) -> bool:
        """Return True if some run is due; a read through the claim index, not a queue scan."""
        table = connection.ops.quote_name(self.model._meta.db_table)
        hint = "" if connection.vendor == "postgresql" else _SQLITE_CLAIM_INDEX
        sql = f"SELECT 1 FROM {table} {hint}WHERE {_due_sql(table)} LIMIT 1"
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
        assignments = _CLAIM_ASSIGNMENTS
        due = _due_sql(table)
        params = _assignment_params(worker_id, lease_token, now, lease_until)
        if connection.features.has_select_for_update_skip_locked:
            # RETURNING lists rows in no set order; the picked due times restore oldest-first.
            picked, update = _skip_locked_claim_sql(table, f"{table}.id, picked.available_at")
            sql = f"WITH {picked} {update}"
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

    def claim_loaded(
        self, *, worker_id: str, lease_token: str, limit: int, now: datetime, lease_until: datetime
    ) -> dict[str, models.Model]:
        """Claim as `claim` does and return the runs, trigger events loaded, oldest due first.

        PostgreSQL only: one statement that claims and reads, atomic without a transaction of
        its own, where a claim in `atomic()` and a read of what it took cost five round trips.
        """
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        picked, update = _skip_locked_claim_sql(
            table, f"{table}.*, picked.available_at AS picked_at"
        )
        sql = (
            f"WITH {picked}, claimed AS ({update}) "
            f"SELECT {with_event_columns(self.model)} FROM claimed c LEFT JOIN "
            f"{events_table(self.model)} e ON e.id = c.event_id ORDER BY c.picked_at, c.id"
        )
        params = [_adapt(now), limit, *_assignment_params(worker_id, lease_token, now, lease_until)]
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            return read_with_events(self.model, cursor.fetchall())

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
            f"AND c.available_at <= %s AND {paused_clause(table, 'c')} "
            f"AND {room('concurrency_key', 'concurrency_limit')} "
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
        runs = self.filter(
            lease_token__in=lease_tokens, status=RunStatus.RUNNING, locked_until__lt=lease_until
        )
        if connection.features.has_select_for_update_skip_locked:
            # A row the worker's own open transaction holds (a run finished in a group commit,
            # a step renewing its lease) is skipped, not waited for: waiting would hold up the
            # beat for every other run until that transaction ends.
            runs = self.filter(pk__in=runs.select_for_update(skip_locked=True).values("pk"))
        # FOR UPDATE needs a transaction: the caller's, else one of its own.
        with transaction.atomic(savepoint=False):
            return runs.update(locked_until=lease_until, available_at=lease_until)
