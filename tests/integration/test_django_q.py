"""EXECUTOR="django_q": a real qcluster executes what a real worker hands out, each step once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

import inngest_django as inngest
from inngest_django.backends.django_q import TASK, execute
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.ids import new_token
from inngest_django.models import Event, FunctionRun, StepRun
from tests.clusters import DJANGO_Q_EXECUTOR, Clusters
from tests.helpers import committed_steps, orders_per_step, send_steps, status_of, step_starts
from tests.testapp.inngest_functions import JOURNAL_ENV
from tests.testapp.models import Order

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 2.0
SHORT_LEASE = {"INNGEST_DJANGO_TEST_LEASE_SECONDS": str(LEASE_SECONDS)}
RECORD_STEPS = "testapp-record-steps"


@pytest.fixture
def clusters(workers) -> Iterator[Clusters]:
    processes = Clusters(workers)
    try:
        yield processes
    finally:
        processes.stop_all()


def handed_out_run(*, steps: int = 2, **data: object) -> tuple[str, str]:
    """Send a record-steps event, start its run and claim it as a worker handing it out does."""
    send_steps(steps=steps, **data)
    dispatch_pending()
    token = new_token()
    with transaction.atomic():
        now = timezone.now()
        until = now + timedelta(seconds=30)
        [run_id] = FunctionRun.objects.claim(
            worker_id="test → django_q", lease_token=token, limit=1, now=now, lease_until=until
        )
    return run_id, token


def test_cluster_executes_the_runs_the_worker_hands_out(workers, clusters):
    send_steps(steps=2, pause_s=0.5)
    for _ in range(5):
        send_steps(steps=3)
    worker = workers.start(**DJANGO_Q_EXECUTOR)
    clusters.start()
    pids = clusters.wait_until_ready(0)
    runs = FunctionRun.objects.filter(function_id=RECORD_STEPS)
    clusters.wait_for(lambda: runs.count() == 6, what="the runs to start")
    slow = runs.get(event__data__pause_s=0.5)
    # While the slow run executes, the task holds it under its own lease, not the worker.
    holder = clusters.wait_for(
        lambda: (
            FunctionRun.objects.filter(pk=slow.pk, locked_by__startswith="django_q:")
            .values_list("locked_by", flat=True)
            .first()
        ),
        what="a django-q worker to take the slow run over",
    )
    assert int(holder.rsplit(":", 1)[1]) in pids
    clusters.wait_for(
        lambda: runs.filter(status=RunStatus.COMPLETED).count() == 6, what="6 runs to complete"
    )

    expected = {(run.pk, f"s{index}") for run in runs for index in range(run.output["steps"])}
    assert len(expected) == 2 + 5 * 3
    journal = [(e["run"], e["step"], e["pid"]) for e in workers.journal() if e["phase"] == "start"]
    assert Counter((run, step) for run, step, _ in journal) == dict.fromkeys(expected, 1)
    assert Counter(Order.objects.values_list("reference", "step_key")) == dict.fromkeys(expected, 1)
    # Every step ran in a django-q worker of the cluster, none in the inngest worker.
    assert {pid for _, _, pid in journal} <= pids
    assert worker.pid not in pids
    assert set(runs.values_list("locked_by", "lease_token")) == {("", "")}


def test_cluster_runs_sleeps_retries_and_defers(workers, clusters):
    inngest.send({"name": "djq/flow", "data": {}})
    workers.start(**DJANGO_Q_EXECUTOR)
    clusters.start()
    pids = clusters.wait_until_ready(0)
    run = clusters.wait_for(
        lambda: FunctionRun.objects.filter(function_id="djq-flow").first(), what="the run"
    )
    clusters.wait_for(lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete")
    deferred = clusters.wait_for(
        lambda: FunctionRun.objects.filter(function_id="djq-after").first(), what="the defer"
    )
    clusters.wait_for(
        lambda: status_of(deferred.pk) == RunStatus.COMPLETED, what="the deferred run"
    )

    run.refresh_from_db()
    assert run.output == {"flaky_attempt": 1}
    journal = step_starts(workers, run.pk)
    # Memoized: "before" ran once across three passes; "flaky" once per attempt.
    assert [step for step, _ in journal] == ["before", "flaky", "flaky", "after"]
    assert {pid for _, pid in journal} <= pids
    steps = dict(StepRun.objects.filter(run_id=run.pk).values_list("step_key", "status"))
    assert steps == {"before": "COMPLETED", "nap": "COMPLETED", "flaky": "COMPLETED"}
    nap = StepRun.objects.get(run_id=run.pk, step_key="nap")
    # The pass after the sleep started once the sleep was over, not before.
    flaky_at = min(e["t"] for e in workers.journal() if e["step"] == "flaky")
    assert flaky_at >= nap.wake_at.timestamp()
    assert orders_per_step(run.pk) == {"before": 1, "flaky": 1, "after": 1}
    assert deferred.parent_run_id == run.pk


def test_worker_hands_out_no_more_runs_than_max_queued_until_a_cluster_starts_them(
    workers, clusters
):
    from django_q.conf import Conf
    from django_q.models import OrmQ

    limit = 2 * int(Conf.WORKERS)  # the DJANGO_Q_MAX_QUEUED default
    for _ in range(limit + 3):
        send_steps(steps=1)
    workers.start("--worker-id", "w1", **DJANGO_Q_EXECUTOR)
    runs = FunctionRun.objects.filter(function_id=RECORD_STEPS)
    handed = runs.filter(status=RunStatus.RUNNING, locked_by="w1 → django_q")
    clusters.wait_for(lambda: handed.count() == limit, what=f"{limit} runs handed out")
    # Two more events dispatched, one after the other, prove a whole worker round went by
    # (dispatch, then claims) with no cluster running: it handed out nothing more.
    for name in ("djq/round-1", "djq/round-2"):
        inngest.send({"name": name, "data": {}})
        clusters.wait_for(
            lambda name=name: Event.objects.filter(name=name, dispatched_at__isnull=False).exists(),
            what=f"{name} dispatched",
        )
    assert handed.count() == limit
    assert runs.filter(status=RunStatus.QUEUED).count() == 3
    assert OrmQ.objects.count() == limit

    clusters.start()
    clusters.wait_for(
        lambda: runs.filter(status=RunStatus.COMPLETED).count() == limit + 3,
        what="every run to complete",
    )
    assert Counter(Order.objects.values_list("step_key", flat=True)) == {"s0": limit + 3}


def test_a_task_enqueued_twice_executes_the_run_once(workers, clusters):
    from django_q.models import Task
    from django_q.tasks import async_task

    run_id, token = handed_out_run(steps=2)
    async_task(TASK, run_id, token)
    async_task(TASK, run_id, token)
    clusters.start()
    pids = clusters.wait_until_ready(0)
    clusters.wait_for(
        lambda: Task.objects.filter(func=TASK, success=True).count() == 2,
        what="both deliveries to finish",
    )
    assert status_of(run_id) == RunStatus.COMPLETED
    journal = step_starts(workers, run_id)
    assert [step for step, _ in journal] == ["s0", "s1"]
    assert {pid for _, pid in journal} <= pids
    assert orders_per_step(run_id) == {"s0": 1, "s1": 1}


def test_two_deliveries_of_one_task_at_once_execute_the_run_once(workers, monkeypatch):
    monkeypatch.setenv(JOURNAL_ENV, str(workers.journal_path))
    run_id, token = handed_out_run(steps=3, pause_s=0.2)
    barrier = threading.Barrier(2)

    def deliver() -> None:
        try:
            barrier.wait()
            execute(run_id, token)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert status_of(run_id) == RunStatus.COMPLETED
    assert [step for step, _ in step_starts(workers, run_id)] == ["s0", "s1", "s2"]
    assert orders_per_step(run_id) == {"s0": 1, "s1": 1, "s2": 1}
    # Delivered again once the run finished, the task finds nothing to do.
    execute(run_id, token)
    assert [step for step, _ in step_starts(workers, run_id)] == ["s0", "s1", "s2"]


def test_a_stale_task_leaves_the_run_to_the_lease_that_replaced_it(workers, monkeypatch):
    monkeypatch.setenv(JOURNAL_ENV, str(workers.journal_path))
    run_id, stale = handed_out_run(steps=2)
    # The stale lease runs out, and a worker hands the run out again under a new token.
    now = timezone.now()
    FunctionRun.objects.filter(pk=run_id).update(locked_until=now, available_at=now)
    fresh = new_token()
    with transaction.atomic():
        now = timezone.now()
        claimed = FunctionRun.objects.claim(
            worker_id="again → django_q",
            lease_token=fresh,
            limit=1,
            now=now,
            lease_until=now + timedelta(seconds=30),
        )
    assert claimed == [run_id]

    execute(run_id, stale)
    run = FunctionRun.objects.get(pk=run_id)
    assert (run.status, run.lease_token, run.locked_by) == (
        RunStatus.RUNNING,
        fresh,
        "again → django_q",
    )
    assert step_starts(workers, run_id) == []
    assert committed_steps(run_id) == []

    execute(run_id, fresh)
    assert status_of(run_id) == RunStatus.COMPLETED
    assert committed_steps(run_id) == ["s0", "s1"]


def test_killed_cluster_run_is_handed_out_again_and_finished_by_another(workers, clusters):
    send_steps(steps=3, pause_s=1.0)
    workers.start(**DJANGO_Q_EXECUTOR, **SHORT_LEASE)
    first = clusters.start(**SHORT_LEASE)
    first_pids = clusters.wait_until_ready(0)
    run = clusters.wait_for(
        lambda: FunctionRun.objects.filter(function_id=RECORD_STEPS).first(), what="the run"
    )
    # Kill inside step s1: s0 has committed, s1's transaction is open.
    clusters.wait_for(
        lambda: "s1" in [step for step, _ in step_starts(workers, run.pk)], what="step s1 to start"
    )
    clusters.kill(first)
    assert committed_steps(run.pk) == ["s0"]

    clusters.start(**SHORT_LEASE)
    second_pids = clusters.wait_until_ready(1)
    clusters.wait_for(lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete")
    journal = step_starts(workers, run.pk)
    assert [step for step, _ in journal] == ["s0", "s1", "s1", "s2"]
    assert {pid for _, pid in journal[:2]} <= first_pids
    assert {pid for _, pid in journal[2:]} <= second_pids
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1, "s2": 1}
    assert committed_steps(run.pk) == ["s0", "s1", "s2"]


def test_task_heartbeat_keeps_a_step_longer_than_the_lease_from_running_twice(workers, clusters):
    send_steps(steps=2, pause_s=LEASE_SECONDS + 0.5)
    workers.start(**DJANGO_Q_EXECUTOR, **SHORT_LEASE)
    clusters.start(**SHORT_LEASE)
    pids = clusters.wait_until_ready(0)
    run = clusters.wait_for(
        lambda: FunctionRun.objects.filter(function_id=RECORD_STEPS).first(), what="the run"
    )
    clusters.wait_for(lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete")
    journal = step_starts(workers, run.pk)
    # Had the lease lapsed, the worker would have handed the run to the cluster's other worker.
    assert [step for step, _ in journal] == ["s0", "s1"]
    assert len({pid for _, pid in journal}) == 1
    assert {pid for _, pid in journal} <= pids
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1}
