"""Worker heartbeats: real worker processes write, beat, mark stopped; stale rows; pruning."""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from inngest_django.heartbeats import prune_history
from inngest_django.models import FunctionRun, WorkerHeartbeat, WorkerState
from tests.helpers import send_steps

BEAT = "0.2"


def row(worker_id: str) -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.filter(worker_id=worker_id).first()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_writes_its_row_beats_counts_runs_in_hand_and_marks_it_stopped(workers):
    # In hand for 5 s with no step: on SQLite a step's transaction holds the one write lock,
    # until the run's finish with checkpointing, and a beat written only once the run ends
    # shows the run in hand for a single beat at most (0.2 s: too short to be sure to see).
    send_steps(steps=0, linger_s=5)
    worker = workers.start(
        "--worker-id", "beat-a", "--threads", "2", INNGEST_DJANGO_TEST_HEARTBEAT_SECONDS=BEAT
    )
    first = workers.wait_for(lambda: row("beat-a"), what="the worker's row", timeout=60)
    assert (first.host, first.pid, first.threads) == (socket.gethostname(), worker.pid, 2)
    assert first.heartbeat_seconds == float(BEAT)
    assert first.stopped_at is None
    # The run is claimed and lingering after its step: the next beats count it in hand.
    busy = workers.wait_for(
        lambda: (r := row("beat-a")) and r.runs_in_hand == 1 and r, what="a run in hand", timeout=60
    )
    assert busy.last_heartbeat > first.last_heartbeat
    assert busy.state(busy.last_heartbeat, beats=3) == WorkerState.RUNNING
    worker.send_signal(signal.SIGTERM)
    assert workers.wait_for_exit(worker, timeout=60) == 0, workers.logs()
    stopped = row("beat-a")
    assert stopped.stopped_at is not None
    assert stopped.runs_in_hand == 0
    assert stopped.state(timezone.now(), beats=3) == WorkerState.STOPPED
    assert FunctionRun.objects.get().status == "COMPLETED"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_keeps_its_row_and_goes_stale(workers):
    worker = workers.start("--worker-id", "beat-k", INNGEST_DJANGO_TEST_HEARTBEAT_SECONDS=BEAT)
    workers.wait_for(lambda: row("beat-k"), what="the worker's row", timeout=60)
    workers.kill(worker)
    killed = row("beat-k")
    assert killed.stopped_at is None
    assert killed.state(killed.last_heartbeat + timedelta(seconds=0.5), beats=3) == "running"
    assert killed.state(killed.last_heartbeat + timedelta(seconds=0.7), beats=3) == "stale"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_exits_once_idle_writes_no_row(workers):
    worker = workers.start("--until-idle", INNGEST_DJANGO_TEST_HEARTBEAT_SECONDS=BEAT)
    assert workers.wait_for_exit(worker, timeout=60) == 0, workers.logs()
    assert not WorkerHeartbeat.objects.exists()


def make_row(worker_id: str, last_heartbeat, **fields) -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(
        worker_id=worker_id,
        host="h",
        pid=os.getpid(),
        threads=1,
        started_at=last_heartbeat,
        last_heartbeat=last_heartbeat,
        heartbeat_seconds=10,
        **fields,
    )


@pytest.mark.django_db
def test_rows_not_beaten_for_worker_history_seconds_are_pruned(settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "WORKER_HISTORY_SECONDS": 3600}
    now = timezone.now()
    make_row("old", now - timedelta(seconds=3601))
    make_row("old-stopped", now - timedelta(hours=5), stopped_at=now - timedelta(hours=5))
    make_row("recent", now - timedelta(seconds=3500))
    assert prune_history(now) == 2
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["recent"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_row_was_deleted_writes_it_again(workers):
    worker = workers.start("--worker-id", "beat-d", INNGEST_DJANGO_TEST_HEARTBEAT_SECONDS=BEAT)
    first = workers.wait_for(lambda: row("beat-d"), what="the worker's row", timeout=60)
    WorkerHeartbeat.objects.filter(pk="beat-d").delete()
    again = workers.wait_for(lambda: row("beat-d"), what="the row written again", timeout=60)
    assert again.started_at == first.started_at
    assert WorkerHeartbeat.objects.count() == 1
    worker.send_signal(signal.SIGTERM)
    assert workers.wait_for_exit(worker, timeout=60) == 0, workers.logs()
