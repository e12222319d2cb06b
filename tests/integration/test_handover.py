"""A worker that found the queue drained leases the runs its dispatch stores and starts them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import inngest_django as inngest
from inngest_django import clock
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.handover import Handover
from inngest_django.models import FunctionRun
from inngest_django.worker import Worker
from tests.helpers import runs_of, send_steps, status_of
from tests.testapp.models import Call

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_STEPS = "testapp-record-steps"
# The claims' UPDATE (plain and concurrency-aware): runs become RUNNING no other way.
CLAIM = re.compile(r"UPDATE \"inngest_django_functionrun\" SET \"?status\"? = 'RUNNING'")


def idle_worker(**kwargs) -> Worker:
    """Return a worker whose last look found no due run."""
    worker = Worker(threads=0, worker_id="handover", **kwargs)
    assert worker.run_once() == 0
    return worker


def statements_of(run_once) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run_once()
    return [query["sql"] for query in captured.captured_queries]


def test_an_idle_worker_starts_the_run_its_dispatch_stores_without_claiming_it():
    worker = idle_worker()
    send_steps(steps=1)
    statements = statements_of(worker.run_once)
    (run,) = runs_of(RECORD_STEPS)
    assert run.status == RunStatus.COMPLETED
    # Not before its step: a claim after it (PostgreSQL claims without a look) finds nothing.
    step = next(i for i, sql in enumerate(statements) if "INSERT INTO" in sql and "steprun" in sql)
    assert not [sql for sql in statements[:step] if CLAIM.search(sql)]
    # Nor read back: the dispatch's own objects are executed.
    assert not [sql for sql in statements if 'INNER JOIN "inngest_django_event"' in sql]


def test_the_runs_are_stored_leased_and_one_left_unexecuted_is_taken_over_after_its_lease(
    settings, advance_clock
):
    send_steps(3, steps=1)
    handover = Handover(room=2, worker_id="gone", lease_token="gone-token")
    dispatch_pending(handover=handover)
    assert len(handover.runs) == 2
    leased = FunctionRun.objects.filter(lease_token="gone-token")
    assert {run.pk for run in leased} == {run.pk for run in handover.runs}
    lease = timedelta(seconds=settings.INNGEST_DJANGO.get("LEASE_SECONDS", 60))
    for run in leased:
        assert (run.status, run.locked_by) == (RunStatus.RUNNING, "gone")
        assert run.locked_until == run.available_at == handover.leased_at + lease
        assert run.started_at == handover.leased_at
    # The dispatching worker died before executing them: another takes the queued run now...
    other = Worker(threads=0, worker_id="other")
    while other.run_once():
        pass
    assert sorted(status_of(run.pk) for run in runs_of(RECORD_STEPS)) == [
        RunStatus.COMPLETED,
        RunStatus.RUNNING,
        RunStatus.RUNNING,
    ]
    # ...and the leased ones once their lease is over, as any claimed run.
    advance_clock(lease.total_seconds() + 1)
    while other.run_once():
        pass
    assert {status_of(run.pk) for run in runs_of(RECORD_STEPS)} == {RunStatus.COMPLETED}
    steps = Call.objects.filter(name="s0").values_list("run_id", flat=True)
    assert sorted(steps) == sorted(run.pk for run in runs_of(RECORD_STEPS))


def test_new_runs_wait_behind_due_runs_a_claim_left_in_the_queue(settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "PREFETCH_RUNS": 0}
    send_steps(3, steps=1)
    worker = Worker(threads=0, worker_id="busy")
    # Dispatches the three, then claims one as it has room for one: the queue is not drained.
    worker.run_once()
    send_steps(steps=1)
    worker.run_once()
    worker.run_once()
    newest = FunctionRun.objects.order_by("-event_id").first()
    assert newest is not None and newest.status == RunStatus.QUEUED
    older = FunctionRun.objects.exclude(pk=newest.pk)
    assert [run.status for run in older] == [RunStatus.COMPLETED] * 3


def test_functions_with_flow_control_take_the_queues_way(inngest_client):
    @inngest_client.create_function(
        fn_id="limited-handover",
        trigger=inngest.TriggerEvent(event="t/limited"),
        concurrency=[inngest.Concurrency(limit=1)],
    )
    def limited(ctx):
        return ctx.step.run("work", lambda: "done")

    worker = idle_worker()
    inngest.send({"name": "t/limited", "data": {}})
    statements = statements_of(worker.run_once)
    assert [sql for sql in statements if CLAIM.search(sql)]
    assert [run.status for run in runs_of("test-limited-handover")] == [RunStatus.COMPLETED]


def test_a_cancel_event_in_the_same_batch_stops_a_handed_over_run_before_its_step(
    inngest_client,
):
    ran = []

    @inngest_client.create_function(
        fn_id="stoppable",
        trigger=inngest.TriggerEvent(event="t/start"),
        cancel=[inngest.Cancel(event="t/stop")],
    )
    def stoppable(ctx):
        return ctx.step.run("work", lambda: ran.append(ctx.run_id))

    worker = idle_worker()
    inngest.send([{"name": "t/start", "data": {}}, {"name": "t/stop", "data": {}}])
    worker.run_once()
    (run,) = runs_of("test-stoppable")
    assert run.status == RunStatus.CANCELLED
    assert run.cancel_reason.startswith("cancel rule: event t/stop")
    assert ran == []
    assert clock.now() >= run.finished_at
