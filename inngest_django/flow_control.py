"""Admission of new runs: idempotency, rate limit, singleton, debounce, throttle, priority, keys.

Every decision is made in the database transaction that creates the runs, so it holds however
many workers dispatch at once: pacing state rows are locked (FOR UPDATE on PostgreSQL; SQLite has
one writer), and lookups of active runs use partial indexes. Concurrency is enforced when runs are
claimed (`FunctionRunQuerySet.claim_limited`, the queue's SQL); here each run only gets its keys
and limits.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from .encryption import hash_if_enabled
from .enums import CLAIMABLE_STATUSES, RunStatus
from .flow_options import IDEMPOTENCY_PERIOD, PRIORITY_CLAMP_SECONDS
from .functions import Function
from .models import FlowState, FunctionRun, IdempotencyKey, RunEvent
from .names import MAX_NAME_LENGTH
from .registry import FunctionRegistry
from .waits import encode_value

logger = logging.getLogger(__name__)


def admit(runs: list[FunctionRun], registry: FunctionRegistry, now: datetime) -> list[FunctionRun]:
    """Apply flow control to new, unsaved runs (their `event` set); return the runs to insert.

    Skipped runs are returned with status SKIPPED and the reason in `flow_note`; a debounced
    event that joined a pending run returns nothing.
    """
    batch = _Pending()
    admissions: list[tuple[FunctionRun, _Admission | None]] = []
    for run in runs:
        function = registry.get(run.function_id) if run.function_id in registry else None
        active = function is not None and function.flow.active
        admissions.append((run, _Admission(function, run, now, batch) if active else None))
    # Every key's state row is locked up front and in one order, so two dispatchers
    # deciding for the same keys wait for each other instead of deadlocking.
    keys = sorted({key for _, admission in admissions if admission for key in admission.locks()})
    for function_id, kind, key in keys:
        _locked_state(function_id, kind, key, now)
    return [run for run, admission in admissions if admission is None or admission.apply()]


class _Pending:
    """Runs admitted earlier in the same call, not inserted yet, by singleton, debounce or
    batch key."""

    def __init__(self) -> None:
        self.singletons: dict[tuple[str, str], FunctionRun] = {}
        self.debounced: dict[tuple[str, str], FunctionRun] = {}
        self.batches: dict[tuple[str, str], FunctionRun] = {}


class _Admission:
    def __init__(self, function: Function, run: FunctionRun, now: datetime, batch: _Pending):
        self.function, self.flow, self.run, self.now, self.batch = (
            function,
            function.flow,
            run,
            now,
            batch,
        )
        self.variables = {"event": run.event.to_json()}
        self.notes: list[str] = []

    def key(self, name: str) -> str:
        """Return the encoded value of a key expression ("" when the option has no key)."""
        expression = self.flow.expressions.get(name)
        if expression is None:
            return ""
        try:
            value = expression.evaluate(self.variables)
        except ValueError as exc:
            # A key that cannot be computed groups the run with the others that could not.
            logger.warning(
                "Flow-control key failed; using the empty key function_id=%s option=%s: %s",
                self.function.id,
                name,
                exc,
                extra={"function_id": self.function.id, "action": "flow_key_failed"},
            )
            return ""
        text = value if isinstance(value, str) and len(value) <= 200 else encode_value(value)
        # With encryption on, keys computed from event data are stored as keyed hashes.
        return hash_if_enabled(text)

    def locks(self) -> list[tuple[str, str, str]]:
        """Return the (function, kind, key) state rows the decision reads or writes."""
        flow, fn = self.flow, self.function.id
        found = []
        if flow.batch:
            found.append((fn, "batch", self.key("batch") or "-"))
        if flow.rate_limit:
            found.append((fn, "rate_limit", self.key("rate_limit")))
        if flow.singleton:
            found.append((fn, "singleton", self.key("singleton") or "-"))
        if flow.debounce:
            found.append((fn, "debounce", self.key("debounce") or "-"))
        if flow.throttle:
            found.append((fn, "throttle", self.key("throttle")))
        return found

    def skip(self, reason: str) -> bool:
        self.run.status = RunStatus.SKIPPED
        self.run.finished_at = self.now
        self.run.flow_note = reason[:MAX_NAME_LENGTH]
        logger.info(
            "Run skipped run_id=%s function_id=%s reason=%s",
            self.run.pk,
            self.function.id,
            reason,
            extra={"run_id": self.run.pk, "function_id": self.function.id, "action": "run_skipped"},
        )
        return True

    def apply(self) -> bool:
        """Decide the run's fate; return False if it joined a pending debounced run."""
        flow = self.flow
        if flow.batch and self._batched():
            return False
        if flow.idempotency and not self._idempotent():
            return self.skip(f"idempotency: key {self.key('idempotency')!r} used within 24h")
        if flow.rate_limit and not self._within_rate_limit():
            return self.skip(
                f"rate limit: over {flow.rate_limit.limit} per {flow.periods['rate_limit']}"
            )
        if flow.singleton and not self._singleton():
            return True
        # Priority first: debounce and throttle then decide from the shifted time.
        if flow.priority:
            self._prioritise()
        if flow.debounce and self._debounced():
            return False
        if flow.throttle:
            self._throttle()
        self._concurrency_keys()
        self.run.flow_note = "; ".join(self.notes)[:MAX_NAME_LENGTH]
        return True

    # -- the options -------------------------------------------------------------------------

    def _idempotent(self) -> bool:
        key = f"idempotency:{self.key('idempotency')}"[:MAX_NAME_LENGTH]
        return IdempotencyKey.acquire(
            self.function.id, key, now=self.now, expires_at=self.now + IDEMPOTENCY_PERIOD
        )

    def _within_rate_limit(self) -> bool:
        limit = self.flow.rate_limit
        assert limit is not None
        period = self.flow.periods["rate_limit"]
        interval = period / limit.limit
        state = _locked_state(self.function.id, "rate_limit", self.key("rate_limit"), self.now)
        # GCRA: a start conforms while the theoretical arrival time is within the window.
        if state.tat - self.now > period - interval:
            return False
        state.tat = max(state.tat, self.now) + interval
        state.save(update_fields=["tat"])
        return True

    def _singleton(self) -> bool:
        singleton = self.flow.singleton
        assert singleton is not None
        key = self.key("singleton")
        self.run.singleton_key = key or "-"
        pending = self.batch.singletons.get((self.function.id, self.run.singleton_key))
        active = list(
            FunctionRun.objects.filter(
                function_id=self.function.id,
                singleton_key=self.run.singleton_key,
                status__in=CLAIMABLE_STATUSES,
            ).values_list("pk", flat=True)
        )
        if singleton.mode == "skip":
            if pending is not None or active:
                self.skip(f"singleton: run {pending.pk if pending else active[0]} is active")
                return False
        else:
            if pending is not None:
                pending.status, pending.finished_at = RunStatus.SKIPPED, self.now
                pending.flow_note = f"singleton: replaced by run {self.run.pk}"
            for run_id in active:
                FunctionRun.request_cancel(
                    run_id, now=self.now, reason=f"singleton: replaced by run {self.run.pk}"
                )
        self.batch.singletons[(self.function.id, self.run.singleton_key)] = self.run
        return True

    def _debounced(self) -> bool:
        """Fold the event into a pending debounced run; return True if it did."""
        debounce = self.flow.debounce
        assert debounce is not None
        key = self.key("debounce") or "-"
        period = self.flow.periods["debounce"]
        start = self.now + period
        pending = self.batch.debounced.get((self.function.id, key))
        if pending is not None:
            pending.available_at = _capped(start, pending.debounce_deadline)
            if self.run.event.ts >= pending.event.ts:
                pending.event = self.run.event
            return True
        found = (
            FunctionRun.objects.filter(
                function_id=self.function.id,
                debounce_key=key,
                status=RunStatus.QUEUED,
                started_at__isnull=True,  # a run queued again to retry keeps its event
            )
            .select_related("event")
            .first()
        )
        if found is not None:
            update: dict[str, Any] = {
                "available_at": _capped(start, found.debounce_deadline),
                "flow_note": f"debounced: last event {self.run.event.pk}",
            }
            # Events older than the one the run holds do not replace it.
            if self.run.event.ts >= found.event.ts:
                update["event"] = self.run.event
            # Compare-and-set: a run a worker claimed meanwhile is no longer pending.
            if FunctionRun.objects.filter(
                pk=found.pk, status=RunStatus.QUEUED, lease_token="", started_at__isnull=True
            ).update(**update):
                return True
        timeout = self.flow.periods.get("debounce.timeout")
        self.run.debounce_key = key
        self.run.debounce_deadline = self.now + timeout if timeout else None
        self.run.available_at = start
        self.notes.append(f"debounced for {period}")
        self.batch.debounced[(self.function.id, key)] = self.run
        return False

    def _batched(self) -> bool:
        """Add the event to its key's open batch; return True if it joined one."""
        batch = self.flow.batch
        assert batch is not None
        condition = self.flow.expressions.get("batch.if")
        if condition is not None and not condition.matches(self.variables):
            self.notes.append("not batched: batch_events.if_exp is not true")
            return False
        key = self.key("batch") or "-"
        pending = self.batch.batches.get((self.function.id, key))
        if pending is not None:
            pending.events_to_batch.append(self.run.event)
            pending.batch_size += 1
            pending.flow_note = f"batch of {pending.batch_size}"
            if pending.batch_size >= batch.max_size:
                pending.batch_key, pending.available_at = "", self.now
                del self.batch.batches[(self.function.id, key)]
            return True
        # Locked, so a worker's claim (which skips locked rows) cannot start it half-filled.
        found = (
            FunctionRun.objects.select_for_update()
            .filter(
                function_id=self.function.id,
                batch_key=key,
                status=RunStatus.QUEUED,
                lease_token="",
                started_at__isnull=True,
            )
            .only("pk", "batch_size")
            .first()
        )
        if found is not None:
            RunEvent.objects.create(
                run_id=found.pk, event=self.run.event, position=found.batch_size
            )
            size = found.batch_size + 1
            update: dict[str, Any] = {"batch_size": size, "flow_note": f"batch of {size}"}
            if size >= batch.max_size:
                update.update(batch_key="", available_at=self.now)
            FunctionRun.objects.filter(pk=found.pk).update(**update)
            return True
        self.run.batch_key, self.run.batch_size = key, 1
        self.run.events_to_batch = [self.run.event]
        self.run.available_at = self.now + self.flow.periods["batch"]
        self.notes.append("batch of 1")
        self.batch.batches[(self.function.id, key)] = self.run
        return False

    def _throttle(self) -> None:
        throttle = self.flow.throttle
        assert throttle is not None
        interval = self.flow.periods["throttle"] / throttle.limit
        burst = timedelta(0) if not throttle.burst else interval * (throttle.burst - 1)
        state = _locked_state(self.function.id, "throttle", self.key("throttle"), self.now)
        start = max(self.run.available_at, state.tat - burst)
        state.tat = max(state.tat, start) + interval
        state.save(update_fields=["tat"])
        if start > self.run.available_at:
            self.run.available_at = start
            self.notes.append(f"throttled until {start.isoformat()}")

    def _prioritise(self) -> None:
        expression = self.flow.expressions["priority"]
        try:
            value = expression.evaluate(self.variables)
        except ValueError:
            value = 0
        seconds = value if isinstance(value, int) and not isinstance(value, bool) else 0
        seconds = max(-PRIORITY_CLAMP_SECONDS, min(PRIORITY_CLAMP_SECONDS, seconds))
        if seconds:
            # Queued as if it had been sent `seconds` earlier (or later, when negative).
            self.run.available_at -= timedelta(seconds=seconds)
            self.notes.append(f"priority {seconds:+d}s")

    def _concurrency_keys(self) -> None:
        slots = []
        for index, limit in enumerate(self.flow.concurrency):
            value = self.key(f"concurrency[{index}]")
            scope = limit.scope or "fn"
            owner = self.function.id if scope == "fn" else scope
            slots.append((f"{owner}:{value}"[:MAX_NAME_LENGTH], limit.limit))
        if self.flow.singleton is not None and self.flow.singleton.mode == "cancel":
            # A replaced run may still be finishing its step: the new one waits for it.
            slots.append(
                (f"singleton:{self.function.id}:{self.run.singleton_key}"[:MAX_NAME_LENGTH], 1)
            )
        # FlowOptions refuses more than two at declaration: the run has two key columns.
        if slots:
            self.run.concurrency_key, self.run.concurrency_limit = slots[0]
        if len(slots) > 1:
            self.run.concurrency_key_2, self.run.concurrency_limit_2 = slots[1]


def _capped(start: datetime, deadline: datetime | None) -> datetime:
    return min(start, deadline) if deadline else start


def _locked_state(function_id: str, kind: str, key: str, now: datetime) -> FlowState:
    """Return the pacing row for a key, locked until the transaction ends."""
    rows = FlowState.objects.select_for_update().filter(
        function_id=function_id, kind=kind, key=key[:MAX_NAME_LENGTH]
    )
    state = rows.first()
    if state is not None:
        return state
    try:
        with transaction.atomic():
            # An idle key: its first start is due at once, whatever time the run was stamped.
            idle = now - timedelta(days=1)
            FlowState.objects.create(
                function_id=function_id, kind=kind, key=key[:MAX_NAME_LENGTH], tat=idle
            )
    except IntegrityError:
        pass  # another worker created it first
    return rows.get()


def flow_active(registry: FunctionRegistry) -> bool:
    """Return True if some function (or a source's runs) needs the concurrency-aware claim."""
    if registry.sources_limit_concurrency():
        return True
    return any(fn.flow.concurrency or fn.flow.singleton for fn in registry)
