"""Handing a dispatch's new runs straight to the worker that dispatched them, already leased."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from . import clock
from .conf import app_settings
from .enums import RunStatus
from .models import FunctionRun
from .registry import FunctionRegistry


class Handover:
    """Leases up to `room` runs a dispatch creates to `worker_id`, in the dispatch transaction.

    An idle worker that dispatches an event would otherwise commit the run as queued, read
    that something is claimable, claim it in a transaction of its own and read it back: about
    4 ms on PostgreSQL between the event and its first step. A run leased as it is stored is
    exactly a claimed one (a crash leaves it to expire and be claimed again), so the worker
    executes `runs` once the dispatch commits.
    """

    def __init__(self, *, room: int, worker_id: str, lease_token: str) -> None:
        self.room = room
        self.worker_id = worker_id
        self.lease_token = lease_token
        self.runs: list[FunctionRun] = []
        self.leased_at: datetime | None = None

    def take(self, runs: Iterable[FunctionRun], registry: FunctionRegistry) -> None:
        """Lease the new (unsaved, queued, due) `runs` of functions without flow control."""
        # Timed here, inside the transaction (SQLite may have waited for its write lock).
        now = self.leased_at = clock.now()
        lease_until = now + timedelta(seconds=app_settings.LEASE_SECONDS)
        for run in runs:
            if len(self.runs) >= self.room:
                return
            # Flow control may skip, delay or park a run as it is admitted: those go the
            # queue's way.
            if run.function_id not in registry or registry.get(run.function_id).flow.active:
                continue
            # The fields FunctionRunQuerySet.claim() sets.
            run.status = RunStatus.RUNNING
            run.locked_by = self.worker_id
            run.lease_token = self.lease_token
            run.locked_until = lease_until
            run.available_at = lease_until
            run.started_at = now
            self.runs.append(run)

    def reread_cancel_requests(self) -> None:
        """Copy cancel requests made since the runs were stored (a cancel rule of the batch)."""
        requested = FunctionRun.objects.filter(
            pk__in=[run.pk for run in self.runs], cancel_requested_at__isnull=False
        ).values_list("pk", "cancel_requested_at", "cancel_reason")
        by_id = {pk: (at, reason) for pk, at, reason in requested}
        for run in self.runs:
            if run.pk in by_id:
                run.cancel_requested_at, run.cancel_reason = by_id[run.pk]
