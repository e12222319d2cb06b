"""The django_q executor: hand claimed runs to a django-q2 cluster, and the task that runs them."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType

from django.db import DatabaseError, connections, transaction

from .. import clock
from ..conf import app_settings
from ..connections import refresh_connections
from ..engine import execute_run
from ..ids import new_token
from ..models import FunctionRun
from .base import ExecutionBackend

logger = logging.getLogger(__name__)

TASK = "inngest_django.backends.django_q.execute"


class DjangoQBackend(ExecutionBackend):
    """Enqueue one django-q2 task per claimed run, never more waiting than DJANGO_Q_MAX_QUEUED."""

    name = "django_q"

    def __init__(self) -> None:
        # Lease tokens of runs handed out by this worker, with their lease ends. A run counts
        # as queued while it still holds the token: a task that starts swaps in its own.
        self._handed: dict[str, datetime] = {}

    def capacity(self, now: datetime) -> int:
        """Return how many more runs to hand out: the limit less those no task started yet."""
        limit = app_settings.DJANGO_Q_MAX_QUEUED or 2 * _cluster_workers()
        # A lease that ran out frees its place: the run is claimable, and handed out again.
        self._handed = {token: until for token, until in self._handed.items() if until > now}
        if not self._handed:
            return limit
        queued = Counter(
            FunctionRun.objects.filter(lease_token__in=list(self._handed)).values_list(
                "lease_token", flat=True
            )
        )
        self._handed = {token: self._handed[token] for token in queued}
        return max(limit - sum(queued.values()), 0)

    def dispatch(self, run_ids: Sequence[str], *, lease_token: str, lease_until: datetime) -> None:
        """Enqueue `execute(run_id, lease_token)` per run; a failed enqueue waits out the lease."""
        from django_q.tasks import async_task

        self._handed[lease_token] = lease_until
        for run_id in run_ids:
            options = {"task_name": f"inngest run {run_id}", **app_settings.DJANGO_Q_OPTIONS}
            try:
                async_task(TASK, run_id, lease_token, q_options=options)
            except Exception:
                # Broker down: the lease expires and a later round hands the run out again.
                logger.exception(
                    "Could not enqueue run_id=%s; it is handed out again after its lease",
                    run_id,
                    extra={"run_id": run_id, "action": "run_enqueue_failed"},
                )
                continue
            logger.debug(
                "Run handed to django-q run_id=%s",
                run_id,
                extra={"run_id": run_id, "action": "run_enqueued"},
            )


def _cluster_workers() -> int:
    from django_q.conf import Conf

    return int(Conf.WORKERS)


def execute(run_id: str, lease_token: str) -> None:
    """Execute one pass of a run handed out under `lease_token`; stale or repeated tasks do nothing.

    The django-q2 task behind EXECUTOR="django_q". It never raises for a problem of the run:
    the engine records those, and anything else is logged, leaving the lease to expire.
    """
    _close_old_connections()
    token = new_token()
    locked_by = f"django_q:{socket.gethostname()}:{os.getpid()}"
    try:
        if not _take_over(run_id, lease_token, token, locked_by):
            logger.info(
                "Task skipped: the run is no longer handed out under its token run_id=%s",
                run_id,
                extra={"run_id": run_id, "action": "task_skipped"},
            )
            return
        with _Heartbeat(token):
            execute_run(run_id, lease_token=token)
    except Exception:
        logger.exception("Run pass crashed in django-q run_id=%s", run_id, extra={"run_id": run_id})
    finally:
        _close_old_connections()


def _take_over(run_id: str, handed_token: str, token: str, locked_by: str) -> bool:
    """Swap the handed-out lease for this task's own; False if another task or worker has it."""
    # A compare-and-set on the token: of two deliveries of one task, or a task that waited
    # past its lease while the run was handed out again, exactly one finds the row.
    with transaction.atomic():
        lease_until = clock.now() + timedelta(seconds=app_settings.LEASE_SECONDS)
        return FunctionRun.take_over(
            run_id, handed_token, lease_token=token, locked_by=locked_by, lease_until=lease_until
        )


def _close_old_connections() -> None:
    # A cluster worker runs task after task: its healthy connection is kept between them.
    # refresh_connections() leaves a connection inside an atomic block (a sync task in a test
    # transaction) alone.
    refresh_connections()


class _Heartbeat:
    """Extend one lease every LEASE_SECONDS / 3 from a thread, while the pass runs."""

    def __init__(self, lease_token: str) -> None:
        self.lease_token = lease_token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="inngest-q-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        interval = app_settings.LEASE_SECONDS / 3
        try:
            while not self._stop.wait(interval):
                try:
                    with transaction.atomic():
                        # Timed inside the transaction, as the worker's heartbeat is.
                        lease_until = clock.now() + timedelta(seconds=app_settings.LEASE_SECONDS)
                        FunctionRun.objects.extend_leases([self.lease_token], lease_until)
                except DatabaseError:
                    logger.exception("Heartbeat failed; retrying at the next beat")
        finally:
            # This thread's own connections, which nothing else would close.
            connections.close_all()
