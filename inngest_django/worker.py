"""Worker: dispatch events, relay defers, fire cron ticks, then claim and execute runs."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from . import clock
from .backends import load_backend
from .conf import app_settings
from .connections import (
    close_for_ended_threads,
    close_opened_since,
    open_aliases,
    open_connections,
    refresh_connections,
)
from .engine import execute_run, load_claimed
from .engine.async_runs import AsyncRuns
from .engine.group_commit import GroupCommit, group_commit_seconds, shares_groups
from .engine.logs import pass_failures_logged
from .events import dispatch_pending
from .flow_control import flow_active
from .handover import Handover
from .heartbeats import start_heartbeats
from .idle import next_work_after, wait_for_commits
from .ids import new_token
from .models import Event, FunctionRun
from .notify import Backoff, Listener, listen_enabled
from .outbox import relay_pending
from .pass_times import PassTimes
from .pruner import Pruner
from .registry import FunctionRegistry, default_registry
from .scheduler import CronScheduler

logger = logging.getLogger(__name__)

MIN_POLL_SECONDS = 0.01
# The most runs one claim takes, as PREFETCH_RUNS allows at most.
MAX_CLAIM = 100


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
        executor: "worker" executes claimed runs in this worker's threads, "django_q" hands
            them to a django-q2 cluster; None follows the EXECUTOR setting.
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        worker_id: str | None = None,
        until_idle: bool = False,
        registry: FunctionRegistry = default_registry,
        executor: str | None = None,
    ) -> None:
        if threads < 0:
            raise ValueError("threads must be 0 or more")
        self.threads = threads
        self.worker_id = worker_id or default_worker_id()
        self.until_idle = until_idle
        self.registry = registry
        self.scheduler = CronScheduler(registry)
        self.pruner = Pruner()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[str, str] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._heartbeat_stop = threading.Event()
        self._pool_connections: set[BaseDatabaseWrapper] = set()
        # Set by each claim: True once one found no more due runs than it had room for.
        self._queue_drained = False
        self.pass_times = PassTimes()
        self.executor = executor or app_settings.EXECUTOR
        self.backend = load_backend(self.executor)
        self._async = AsyncRuns.for_worker(
            threads, registry, lock=self._lock, in_flight=self._in_flight, wake=self._wake
        )

    # -- one iteration ---------------------------------------------------------------------

    def run_once(self, *, events_heard: bool = False) -> int:
        """Do one round of dispatch, relay, cron and claims; return how much work it found.

        `events_heard`: a notification said new events were committed, so dispatch need not
        look for them first.
        """
        if not self.registry:
            # With no functions (say, a misnamed inngest_functions module) dispatch would match
            # events to no trigger and mark them done, and every claimed run would fail as
            # unknown: both are left for a worker that has the functions.
            return relay_pending(registry=self.registry)
        # Dispatch first: an event's first step then waits for no other look.
        handover = self._handover()
        work = dispatch_pending(registry=self.registry, handover=handover, look=not events_heard)
        if handover is not None and handover.runs:
            loaded = {run.pk: run for run in handover.runs}
            self._start_claimed(list(loaded), handover.lease_token, handover.leased_at, loaded)
        work += relay_pending(registry=self.registry)
        work += self.scheduler.fire_due()
        # A no-op unless PRUNE_OLDER_THAN is set; then one batch a round while a prune runs.
        work += self.pruner.maybe_prune(clock.now())
        if not self._stopping.is_set():
            work += self._claim_and_execute()
        return work

    def _free_slots(self) -> int:
        return max(self.threads, 1) - self._held_on_threads()

    def _held_on_threads(self) -> int:
        """Return how many claimed runs are executing on this worker's threads or wait for one."""
        with self._lock:
            # Async runs sit in _in_flight too, but on the loop, not on a thread.
            return len(self._in_flight) - (self._async.held if self._async else 0)

    def _claim_room(self, prefetch: int) -> int:
        """Return how many runs to claim: a thread each, plus `prefetch` queued behind them."""
        threads = max(self.threads, 1)
        # Async runs wait on the event loop, not for a thread; a full loop takes no more.
        if self._async is not None and not self._async.room():
            return 0
        held = self._held_on_threads()
        # Runs queued ahead still wait for a thread: claim more once they have all started.
        if held > threads:
            return 0
        return threads + prefetch - held

    def _prefetch(self, flow: bool) -> int:
        # A run claimed ahead counts against its concurrency key before it starts, which
        # would keep another worker's free thread from a limited function: none then.
        if flow or self.backend is not None:
            return 0
        base = app_settings.PREFETCH_RUNS
        if not base:
            return 0
        # Short passes: one claim (and one round of look-ups) may serve many of them.
        threads = max(self.threads, 1)
        expected = self.pass_times.runs_within(app_settings.PREFETCH_SECONDS) * threads
        return max(base, min(expected, MAX_CLAIM - threads))

    def _handover(self) -> Handover | None:
        """Return a handover for this round's dispatch if runs it starts may skip the queue."""
        # Only once a claim found the queue drained, so new runs never overtake older due ones;
        # never where another executor decides. Handover.take() leaves flow control's runs be.
        if not self._queue_drained or self._stopping.is_set() or self.backend is not None:
            return None
        room = self._claim_room(self._prefetch(flow_active(self.registry)))
        if room <= 0:
            return None
        return Handover(room=room, worker_id=self.worker_id, lease_token=new_token())

    def _claim_and_execute(self) -> int:
        backend = self.backend
        flow = flow_active(self.registry)
        prefetch = self._prefetch(flow)
        if backend is None and self._claim_room(prefetch) <= 0:
            return 0
        if backend is None and not flow and connection.features.has_select_for_update_skip_locked:
            return self._claim_in_one_statement(prefetch)
        # A read first, so an idle worker does not take SQLite's write lock on every loop.
        if not FunctionRun.objects.any_claimable(clock.now()):
            self._queue_drained = True
            return 0
        free = self._claim_room(prefetch) if backend is None else backend.capacity(clock.now())
        if free <= 0:
            return 0
        # Runs waiting for a django-q task say so in the admin until a task takes them over.
        locked_by = self.worker_id if backend is None else f"{self.worker_id} → {backend.name}"
        token = new_token()
        with transaction.atomic():
            # Timed once the transaction holds the write lock (SQLite waits for it in BEGIN
            # IMMEDIATE, maybe for a whole step): a lease timed before that wait may be over.
            now = clock.now()
            lease_until = now + timedelta(seconds=app_settings.LEASE_SECONDS)
            # The concurrency-aware claim costs a few statements more; only when needed.
            claim = FunctionRun.objects.claim_limited if flow else FunctionRun.objects.claim
            ids = claim(
                worker_id=locked_by, lease_token=token, limit=free, now=now, lease_until=lease_until
            )
        if backend is not None:
            # Enqueued after commit, so a task never looks for a claim it cannot see yet. The
            # worker does not beat for these leases: a run no task starts is claimed again.
            if ids:
                backend.dispatch(ids, lease_token=token, lease_until=lease_until)
            return len(ids)
        # The queue held no more due runs than this claim took: dispatch may hand runs over.
        self._queue_drained = len(ids) < free
        if ids:
            # One read for the whole claim, not one per run.
            self._start_claimed(ids, token, now, load_claimed(ids))
        return len(ids)

    def _claim_in_one_statement(self, prefetch: int) -> int:
        """Claim and read due runs in one statement (PostgreSQL, no flow control), start them."""
        free = self._claim_room(prefetch)
        token, now = new_token(), clock.now()
        # No look first and no transaction: a claim that finds nothing locks nothing.
        loaded = FunctionRun.objects.claim_loaded(
            worker_id=self.worker_id,
            lease_token=token,
            limit=free,
            now=now,
            lease_until=now + timedelta(seconds=app_settings.LEASE_SECONDS),
        )
        self._queue_drained = len(loaded) < free
        if loaded:
            self._start_claimed(list(loaded), token, now, loaded)
        return len(loaded)

    def _start_claimed(
        self, ids: list[str], token: str, now: datetime, loaded: dict[str, FunctionRun]
    ) -> None:
        """Execute runs leased to this worker under `token` at `now`, on its threads or loop."""
        with self._lock:
            # All at once, before any executes: the heartbeat renews the queued runs' leases.
            self._in_flight.update(dict.fromkeys(ids, token))
        runs: deque[str] = deque()
        for run_id in ids:
            if self._async is not None and self._async.takes(loaded.get(run_id)):
                self._async.submit(run_id, token, now, loaded.get(run_id))
            else:
                runs.append(run_id)
        # Each thread takes the claim's runs one after another, so a long pass holds up none.
        for _ in range(min(max(self.threads, 1), len(runs))):
            if self._pool is None:
                self._execute_claimed(runs, token, now, loaded)
            else:
                self._pool.submit(self._execute_claimed, runs, token, now, loaded)

    def _execute_claimed(
        self, runs: deque[str], token: str, claimed_at: datetime, loaded: dict[str, FunctionRun]
    ) -> None:
        """Execute runs taken from `runs` until none is left, committed in groups if set."""
        with GroupCommit(group_commit_seconds()) as group:
            while True:
                try:
                    run_id = runs.popleft()
                except IndexError:  # every run of the claim is taken
                    return
                if self._pool is not None:
                    # Kept between passes (a new connection costs more than a short pass), and
                    # closed once the pool's threads have ended; one a pass broke is replaced
                    # (not while a group is open: its transaction holds it).
                    refresh_connections()
                run = loaded.get(run_id)
                group.before_pass(more=bool(runs), alone=not shares_groups(run, self.registry))
                self._execute(run_id, token, claimed_at, run)
                group.after_pass()

    def _execute(
        self, run_id: str, token: str, claimed_at: datetime, loaded: FunctionRun | None
    ) -> None:
        try:
            with pass_failures_logged(run_id):
                if self._stopping.is_set():
                    # Claimed ahead, not started: another worker takes it now, not after a lease.
                    FunctionRun.release_claim(run_id, token, claimed_at=claimed_at, now=clock.now())
                    return
                started = clock.monotonic()
                execute_run(
                    run_id,
                    lease_token=token,
                    registry=self.registry,
                    claimed_at=claimed_at,
                    loaded=loaded,
                )
                self.pass_times.add(clock.monotonic() - started)
        finally:
            with self._lock:
                self._in_flight.pop(run_id, None)
                if self._pool is not None:
                    self._pool_connections.update(open_connections())
            # While runs claimed ahead still wait for a thread a round could claim nothing, and
            # what the pass committed for others wakes them (NOTIFY) or is polled for.
            if self._held_on_threads() <= max(self.threads, 1):
                self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Loop until stopped (or, with `until_idle`, until nothing is due)."""
        found_open = open_aliases()
        logger.info(
            "Worker started worker_id=%s executor=%s threads=%d functions=%d",
            self.worker_id,
            self.executor,
            self.threads,
            len(self.registry),
            extra={"action": "worker_started", "worker_id": self.worker_id},
        )
        if not self.registry:
            logger.warning(
                "Worker has no registered functions: it relays deferred runs but dispatches no "
                "events and claims no runs, leaving them for a worker that has the functions. "
                "Is there an inngest_functions module in an installed app? worker_id=%s",
                self.worker_id,
                extra={"action": "worker_without_functions", "worker_id": self.worker_id},
            )
        if self.threads > 0:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="inngest-run")
        heartbeat = threading.Thread(target=self._heartbeat, name="inngest-heartbeat", daemon=True)
        heartbeat.start()
        beats = start_heartbeats(self)
        # A worker that exits once idle has no idle waits to cut short.
        listener = Listener(self._wake) if not self.until_idle and listen_enabled() else None
        if listener is not None:
            listener.start()
        backoff = Backoff("Worker loop", log=logger)
        idle_seconds = MIN_POLL_SECONDS
        try:
            while not self._stopping.is_set():
                # A run finishing during this round may have left work (its finish event, a
                # queued run it made room for) that the round looked for too early.
                busy = self._in_flight_count()
                # Cleared before looking: work committed earlier is seen by this round, and a
                # wake-up from now on cuts the wait after it short.
                self._wake.clear()
                heard = listener.take_heard() if listener is not None else set()
                looked_at = clock.now()
                try:
                    refresh_connections()
                    work = self.run_once(events_heard=Event._meta.db_table in heard)
                    due = None if work else self._next_due(looked_at)
                except DatabaseError as exc:
                    if self.until_idle:
                        # A round that could not look is not idle: fail instead of exiting 0.
                        raise
                    # Drop the connection even if Django did not mark it broken, so the next
                    # round connects afresh instead of failing on a dead socket.
                    connection.close()
                    self._pause(backoff.failed(exc), listener)
                    idle_seconds = MIN_POLL_SECONDS
                    continue
                backoff.recovered()
                if work:
                    idle_seconds = MIN_POLL_SECONDS
                    continue
                if self.until_idle and not busy:
                    break
                # Committed work wakes a listening worker; polling is then only the fallback.
                listening = listener is not None and listener.listening
                wait = app_settings.POLL_INTERVAL_SECONDS if listening else idle_seconds
                if due is not None:
                    # Sleeps, retries and cron ticks ending before the wait would are not late.
                    until_due = (due - clock.now()).total_seconds()
                    wait = min(wait, max(until_due, MIN_POLL_SECONDS))
                if listening or self._in_flight_count():
                    # A NOTIFY, or a pass that ends, sets the wake-up.
                    self._wake.wait(wait)
                else:
                    wait_for_commits(self._wake, wait)
                # Back off while idle, up to the poll interval; any work resets it.
                idle_seconds = min(idle_seconds * 2, app_settings.POLL_INTERVAL_SECONDS)
        finally:
            self._stopping.set()
            if listener is not None:
                listener.stop()
            if self._async is not None:
                self._async.stop()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                close_for_ended_threads(self._pool_connections)
            self._heartbeat_stop.set()
            heartbeat.join(timeout=5)
            if beats is not None:
                beats.stop()
            # The thread's connections are left as found: in a thread of its own, the loop's
            # session would otherwise stay open until the wrapper is collected.
            close_opened_since(found_open)
            logger.info(
                "Worker stopped worker_id=%s",
                self.worker_id,
                extra={"action": "worker_stopped", "worker_id": self.worker_id},
            )

    def _next_due(self, looked_at: datetime) -> datetime | None:
        """Return when work becomes due after `looked_at`, to end an idle wait then; or None."""
        if self._free_slots() <= 0:
            # Nothing more is claimed before a run ends, and an ending run sets _wake.
            return None
        return next_work_after(looked_at, self.registry)

    def _pause(self, seconds: float, listener: Listener | None) -> None:
        """Wait `seconds` after a failed round, less if stopped or the listener is back."""
        deadline = clock.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(remaining)
            self._wake.clear()
            # Passes failing with the database wake the loop too; only a listener that has
            # reconnected shows the database is back.
            if listener is not None and listener.listening:
                return

    def _in_flight_count(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def stop(self) -> None:
        """Stop claiming; `run()` returns once in-flight runs finish."""
        self._stopping.set()
        self._wake.set()

    def _heartbeat(self) -> None:
        interval = app_settings.LEASE_SECONDS / 3
        backoff = Backoff("Heartbeat", log=logger)
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
            except DatabaseError as exc:
                # Beats keep their interval; the backoff only keeps an outage to one log line.
                backoff.failed(exc)
                connection.close()
            else:
                backoff.recovered()
            finally:
                close_old_connections()
