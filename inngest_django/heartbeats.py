"""Heartbeats: each worker keeps its WorkerHeartbeat row fresh from a thread of its own."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import metadata
from typing import TYPE_CHECKING

from django.db import DatabaseError, connection

from . import clock
from .conf import app_settings
from .models import WorkerHeartbeat
from .notify import Backoff

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger(__name__)

# How often a worker deletes the rows of workers gone for WORKER_HISTORY_SECONDS.
PRUNE_EVERY_SECONDS = 3600.0


def package_version() -> str:
    """Return the installed inngest-django's version, or "" when run from a checkout."""
    try:
        return metadata.version("inngest-django")
    except metadata.PackageNotFoundError:
        return ""


def prune_history(now: datetime) -> int:
    """Delete the rows of workers not heard from for WORKER_HISTORY_SECONDS; return how many."""
    cutoff = now - timedelta(seconds=app_settings.WORKER_HISTORY_SECONDS)
    deleted, _ = WorkerHeartbeat.objects.filter(last_heartbeat__lt=cutoff).delete()
    return deleted


class HeartbeatRecorder:
    """Upserts the worker's row at start, updates it once an interval, marks it stopped at exit.

    Args:
        worker_id: The row's key, the worker's id.
        threads: The worker's threads, as shown on the workers page.
        executor: "worker" or "django_q".
        functions: Functions the worker has registered.
        runs_in_hand: Returns the runs the worker holds now; read once a beat.
    """

    def __init__(
        self,
        *,
        worker_id: str,
        threads: int,
        executor: str,
        functions: int,
        runs_in_hand: Callable[[], int],
    ) -> None:
        self.worker_id = worker_id
        self.threads = threads
        self.executor = executor
        self.functions = functions
        self.runs_in_hand = runs_in_hand
        self.interval = app_settings.WORKER_HEARTBEAT_SECONDS
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune: datetime | None = None

    def start(self) -> None:
        """Start beating in a daemon thread; the first beat writes the row at once."""
        self._thread = threading.Thread(target=self._loop, name="inngest-worker-beat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and mark the row stopped (the thread does, before it ends)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        started_at = clock.now()
        written = False
        backoff = Backoff("Worker heartbeat", log=logger)
        try:
            while True:
                try:
                    if not written:
                        self._upsert(started_at)
                        written = True
                    else:
                        written = self._beat()
                    self._maybe_prune()
                except DatabaseError as exc:
                    # Beats keep their interval; the backoff only keeps an outage to one log line.
                    backoff.failed(exc)
                    connection.close()
                else:
                    backoff.recovered()
                if self._stop.wait(self.interval):
                    break
            if written:
                self._mark_stopped()
        except DatabaseError:
            logger.warning("Worker row not marked stopped worker_id=%s", self.worker_id)
        finally:
            # This thread's own connection, opened by its first query.
            connection.close()

    def _upsert(self, started_at: datetime) -> None:
        now = clock.now()
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "threads": self.threads,
                "executor": self.executor,
                "version": package_version(),
                "functions": self.functions,
                "started_at": started_at,
                "last_heartbeat": now,
                "heartbeat_seconds": self.interval,
                "runs_in_hand": self.runs_in_hand(),
                "stopped_at": None,
            },
        )

    def _beat(self) -> bool:
        """Update the row; False if it is gone (pruned as stale), so the next beat writes it."""
        updated = WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(
            last_heartbeat=clock.now(), runs_in_hand=self.runs_in_hand()
        )
        return bool(updated)

    def _mark_stopped(self) -> None:
        now = clock.now()
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(
            last_heartbeat=now, runs_in_hand=0, stopped_at=now
        )

    def _maybe_prune(self) -> None:
        now = clock.now()
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + timedelta(seconds=PRUNE_EVERY_SECONDS)
        deleted = prune_history(now)
        if deleted:
            logger.info(
                "Pruned %d worker rows older than WORKER_HISTORY_SECONDS",
                deleted,
                extra={"action": "workers_pruned"},
            )


def start_heartbeats(worker: Worker) -> HeartbeatRecorder | None:
    """Start beating for `worker`; None for one that exits once idle (a batch job, no row)."""
    if worker.until_idle:
        return None
    recorder = HeartbeatRecorder(
        worker_id=worker.worker_id,
        threads=worker.threads,
        executor=worker.executor,
        functions=len(worker.registry),
        runs_in_hand=worker._in_flight_count,
    )
    recorder.start()
    return recorder
