"""Worker: relay defers, dispatch events, fire cron ticks, then claim and execute runs."""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.db import DatabaseError, close_old_connections, transaction

from . import clock
from .conf import app_settings
from .enums import CLAIMABLE_STATUSES
from .events import dispatch_pending
from .executor import execute_run
from .flow_control import flow_active
from .ids import new_token
from .models import Event, FunctionRun
from .outbox import has_unrelayed, relay_pending
from .registry import FunctionRegistry, default_registry
from .scheduler import CronScheduler

logger = logging.getLogger(__name__)

MIN_POLL_SECONDS = 0.01


def default_worker_id() -> str:
    """Return `host:pid:random`, unique per worker process."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_token()[:6]}"


class Worker:
    """The engine loop behind `run_inngest_worker` and `testing.drain()`.

    Args:
        threads: Runs executed at once in a thread pool; 0 executes in the calling thread.
        worker_id: Name recorded as `locked_by` on claimed runs.
        until_idle: Return from `run()` once nothing is due now; a database error then
            propagates instead of being retried.
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        worker_id: str | None = None,
        until_idle: bool = False,
        registry: FunctionRegistry = default_registry,
    ) -> None:
        if threads < 0:
            raise ValueError("threads must be 0 or more")
        self.threads = threads
        self.worker_id = worker_id or default_worker_id()
        self.until_idle = until_idle
        self.registry = registry
        self.scheduler = CronScheduler(registry)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[str, str] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._heartbeat_stop = threading.Event()

    # -- one iteration ---------------------------------------------------------------------

    def run_once(self) -> int:
        """Do one round of relay, dispatch, cron and claims; return how much work it found."""
        work = relay_pending(registry=self.registry)
        work += dispatch_pending(registry=self.registry)
        work += self.scheduler.fire_due()
        if not self._stopping.is_set():
            work += self._claim_and_execute()
        return work

    def _free_slots(self) -> int:
        with self._lock:
            return max(self.threads, 1) - len(self._in_flight)

    def _claim_and_execute(self) -> int:
        free = self._free_slots()
        if free <= 0:
            return 0
        # A read first, so an idle worker does not take SQLite's write lock on every loop.
        if not FunctionRun.objects.any_claimable(clock.now()):
            return 0
        token = new_token()
        with transaction.atomic():
            # Timed once the transaction holds the write lock (SQLite waits for it in BEGIN
            # IMMEDIATE, maybe for a whole step): a lease timed before that wait may be over.
            now = clock.now()
            # The concurrency-aware claim costs a few statements more; only when needed.
            claim = (
                FunctionRun.objects.claim_limited
                if flow_active(self.registry)
                else FunctionRun.objects.claim
            )
            ids = claim(
                worker_id=self.worker_id,
                lease_token=token,
                limit=free,
                now=now,
                lease_until=now + timedelta(seconds=app_settings.LEASE_SECONDS),
            )
        for run_id in ids:
            with self._lock:
                self._in_flight[run_id] = token
            if self._pool is None:
                self._execute(run_id, token)
            else:
                self._pool.submit(self._execute, run_id, token)
        return len(ids)

    def _execute(self, run_id: str, token: str) -> None:
        if self._pool is not None:
            close_old_connections()
        try:
            execute_run(run_id, lease_token=token, registry=self.registry)
        except Exception:
            # The lease expires and another pass retries the run; the worker carries on.
            logger.exception("Run pass crashed run_id=%s", run_id, extra={"run_id": run_id})
        finally:
            with self._lock:
                self._in_flight.pop(run_id, None)
            if self._pool is not None:
                close_old_connections()
            self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Loop until stopped (or, with `until_idle`, until nothing is due)."""
        logger.info(
            "Worker started worker_id=%s threads=%d functions=%d",
            self.worker_id,
            self.threads,
            len(self.registry),
            extra={"action": "worker_started", "worker_id": self.worker_id},
        )
        if self.threads > 0:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="inngest-run")
        heartbeat = threading.Thread(target=self._heartbeat, name="inngest-heartbeat", daemon=True)
        heartbeat.start()
        idle_seconds = MIN_POLL_SECONDS
        try:
            while not self._stopping.is_set():
                # A run finishing during this round may have left work (its finish event, a
                # queued run it made room for) that the round looked for too early.
                busy = self._in_flight_count()
                try:
                    close_old_connections()
                    work = self.run_once()
                except DatabaseError:
                    if self.until_idle:
                        # A round that could not look is not idle: fail instead of exiting 0.
                        raise
                    logger.exception("Worker loop database error; retrying")
                    work = 0
                    idle_seconds = app_settings.POLL_INTERVAL_SECONDS
                if work:
                    idle_seconds = MIN_POLL_SECONDS
                    continue
                if self.until_idle and not busy:
                    break
                self._wake.wait(idle_seconds)
                self._wake.clear()
                # Back off while idle, up to the poll interval; any work resets it.
                idle_seconds = min(idle_seconds * 2, app_settings.POLL_INTERVAL_SECONDS)
        finally:
            self._stopping.set()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._heartbeat_stop.set()
            heartbeat.join(timeout=5)
            logger.info(
                "Worker stopped worker_id=%s",
                self.worker_id,
                extra={"action": "worker_stopped", "worker_id": self.worker_id},
            )

    def _in_flight_count(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def stop(self) -> None:
        """Stop claiming; `run()` returns once in-flight runs finish."""
        self._stopping.set()
        self._wake.set()

    def _heartbeat(self) -> None:
        interval = app_settings.LEASE_SECONDS / 3
        # Beats go on while stopping, until the last in-flight run has finished.
        while not self._heartbeat_stop.wait(interval):
            with self._lock:
                tokens = sorted(set(self._in_flight.values()))
            if not tokens:
                continue
            try:
                with transaction.atomic():
                    # Timed inside the transaction, as for claims.
                    FunctionRun.objects.extend_leases(
                        tokens, clock.now() + timedelta(seconds=app_settings.LEASE_SECONDS)
                    )
            except DatabaseError:
                logger.exception("Heartbeat failed; retrying at the next beat")
            finally:
                close_old_connections()


def next_due_at(now: datetime) -> datetime | None:
    """Return when the next run becomes claimable (`now` if events or defers wait), or None."""
    if Event.objects.undispatched().exists() or has_unrelayed():
        return now
    return (
        FunctionRun.objects.filter(status__in=CLAIMABLE_STATUSES)
        .order_by("available_at")
        .values_list("available_at", flat=True)
        .first()
    )
