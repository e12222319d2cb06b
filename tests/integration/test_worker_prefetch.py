"""Run throughput paths: runs claimed ahead, finish events nobody hears, finalize without defers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import inngest_django as inngest
from inngest_django.connections import close_for_ended_threads
from inngest_django.enums import RunStatus
from inngest_django.models import Event, FunctionRun, WaitKey
from inngest_django.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = "inngest/function.finished"


@pytest.fixture
def inngest_client(inngest_client: inngest.Inngest) -> inngest.Inngest:
    """A client whose registry holds only what the test registers (testapp has a limit)."""
    inngest_client.registry.restore({})
    return inngest_client


def one_step(client: inngest.Inngest, fn_id: str = "one-step", **options) -> None:
    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event="test/one"), **options)
    def handler(ctx):
        return ctx.step.run("only", lambda: 1)


def queue_one_step_runs(client: inngest.Inngest, count: int) -> None:
    """Register the one-step function and queue `count` of its runs, none claimed."""
    one_step(client)
    inngest.send([{"name": "test/one"}] * count)
    dispatch_only(client)


def statuses() -> list[str]:
    return sorted(FunctionRun.objects.values_list("status", flat=True))


def dispatch_only(client: inngest.Inngest) -> None:
    """Turn sent events into queued runs without claiming any."""
    inngest.events.dispatch_pending(registry=client.registry)


def test_one_claim_takes_a_run_per_thread_plus_the_prefetch(inngest_client, settings):
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 3}
    queue_one_step_runs(inngest_client, 6)

    worker = Worker(threads=0, registry=inngest_client.registry)
    assert worker._claim_and_execute() == 4
    assert statuses().count(RunStatus.COMPLETED) == 4


def test_prefetch_zero_claims_for_free_threads_only(inngest_client, settings):
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 0}
    queue_one_step_runs(inngest_client, 3)

    assert Worker(threads=0, registry=inngest_client.registry)._claim_and_execute() == 1


def test_short_passes_let_one_claim_take_more_runs_ahead(inngest_client, settings):
    # Ten seconds' worth of one-step passes is far more than PREFETCH_RUNS, however slow CI is.
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 3, "PREFETCH_SECONDS": 10}
    queue_one_step_runs(inngest_client, 40)

    worker = Worker(threads=0, registry=inngest_client.registry)
    # No pass timed yet: the claim is a thread plus PREFETCH_RUNS.
    assert worker._claim_and_execute() == 4
    assert worker._claim_and_execute() == 36
    assert statuses() == [RunStatus.COMPLETED] * 40


def test_long_passes_keep_the_claim_at_the_prefetch(inngest_client, settings):
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 1, "PREFETCH_SECONDS": 0.05}

    @inngest_client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="test/slow"))
    def slow(ctx):
        return ctx.step.run("wait", lambda: threading.Event().wait(0.2))

    inngest.send([{"name": "test/slow"}] * 5)
    dispatch_only(inngest_client)

    worker = Worker(threads=0, registry=inngest_client.registry)
    assert worker._claim_and_execute() == 2
    # Passes of 0.2 s: none fits in 0.05 s, so a run claimed ahead never waits behind many.
    assert worker._claim_and_execute() == 2


def test_prefetch_seconds_zero_keeps_the_claim_at_the_prefetch(inngest_client, settings):
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 3, "PREFETCH_SECONDS": 0}
    queue_one_step_runs(inngest_client, 10)

    worker = Worker(threads=0, registry=inngest_client.registry)
    assert worker._claim_and_execute() == 4
    assert worker._claim_and_execute() == 4


def test_no_prefetch_while_a_function_has_a_concurrency_limit(inngest_client, settings):
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 3}
    one_step(inngest_client, concurrency=[inngest.Concurrency(limit=5)])
    inngest.send([{"name": "test/one"}] * 3)
    dispatch_only(inngest_client)

    # Claimed ahead, a limited run would hold its key's slot before a thread could start it.
    assert Worker(threads=0, registry=inngest_client.registry)._claim_and_execute() == 1


def test_runs_claimed_ahead_are_handed_back_when_the_worker_stops(inngest_client, settings):
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 3}
    started, release = threading.Event(), threading.Event()

    @inngest_client.create_function(
        fn_id="blocking", trigger=inngest.TriggerEvent(event="test/block")
    )
    def blocking(ctx):
        started.set()
        return release.wait(10)

    inngest.send([{"name": "test/block"}] * 4)
    dispatch_only(inngest_client)
    worker = Worker(threads=1, registry=inngest_client.registry)
    loop = threading.Thread(target=worker.run)
    loop.start()
    try:
        assert started.wait(10)
        # One run executes; three wait behind it in the pool under this worker's lease.
        assert worker._in_flight_count() == 4
        worker.stop()
    finally:
        release.set()
        loop.join(10)
    assert not loop.is_alive()

    assert statuses() == [RunStatus.COMPLETED] + [RunStatus.QUEUED] * 3
    handed_back = FunctionRun.objects.filter(status=RunStatus.QUEUED)
    assert set(handed_back.values_list("lease_token", "locked_by", "started_at")) == {
        ("", "", None)
    }
    # Due at once for the next worker, not after a lease.
    assert all(run.available_at <= timezone.now() for run in handed_back)
    Worker(threads=0, until_idle=True, registry=inngest_client.registry).run()
    assert statuses() == [RunStatus.COMPLETED] * 4


class CountingEvent(threading.Event):
    """A threading.Event that counts its set() calls."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


def test_passes_wake_the_loop_only_once_no_claimed_run_waits_for_a_thread(inngest_client, settings):
    # Each wake costs the loop a round of looks (outbox, events, claim) that can claim nothing
    # while runs claimed ahead still queue for the thread.
    settings.INNGEST_DJANGO = {"PREFETCH_RUNS": 5, "PREFETCH_SECONDS": 0}
    queue_one_step_runs(inngest_client, 6)
    worker = Worker(threads=1, registry=inngest_client.registry)
    worker._wake = CountingEvent()
    worker._pool = ThreadPoolExecutor(1)
    try:
        assert worker._claim_and_execute() == 6
    finally:
        worker._pool.shutdown(wait=True)
        close_for_ended_threads(worker._pool_connections)

    assert statuses() == [RunStatus.COMPLETED] * 6
    # The second-last pass frees the thread's queue, the last frees the thread.
    assert worker._wake.sets == 2


def test_handing_back_keeps_the_start_time_of_an_earlier_pass(inngest_client):
    one_step(inngest_client)
    inngest.send({"name": "test/one"})
    dispatch_only(inngest_client)
    first_start = timezone.now() - timedelta(minutes=5)
    FunctionRun.objects.update(started_at=first_start)
    now = timezone.now()
    until = now + timedelta(minutes=1)
    (run_id,) = FunctionRun.objects.claim(
        worker_id="w", lease_token="t", limit=1, now=now, lease_until=until
    )

    assert FunctionRun.release_claim(run_id, "t", claimed_at=now, now=timezone.now())
    assert FunctionRun.objects.get().started_at == first_start


def test_a_finish_event_nobody_listens_for_is_stored_already_dispatched(inngest_client, drain):
    one_step(inngest_client)
    inngest.send({"name": "test/one"})
    drain(registry=inngest_client.registry)

    finished = Event.objects.get(name=FINISHED)
    assert finished.dispatched_at is not None
    assert finished.data["function_id"] == "test-one-step"


def test_a_finish_event_a_function_listens_for_is_dispatched_to_it(inngest_client, drain):
    one_step(inngest_client)

    @inngest_client.create_function(fn_id="after", trigger=inngest.TriggerEvent(event="inngest/*"))
    def after(ctx):
        return ctx.event.data["function_id"]

    inngest.send({"name": "test/one"})
    drain(registry=inngest_client.registry)

    run = FunctionRun.objects.get(function_id="test-after", output="test-one-step")
    assert run.status == RunStatus.COMPLETED


def test_a_finish_event_a_wait_may_want_is_left_for_dispatch(inngest_client, drain):
    one_step(inngest_client)

    @inngest_client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="test/wait"))
    def waiter(ctx):
        found = ctx.step.wait_for_event("done", event=FINISHED, timeout="1m")
        return found.data["function_id"] if found else None

    inngest.send({"name": "test/wait"})
    drain(registry=inngest_client.registry)
    assert WaitKey.objects.filter(event_name=FINISHED).exists()

    inngest.send({"name": "test/one"})
    drain(registry=inngest_client.registry)

    waiter_run = FunctionRun.objects.get(function_id="test-waiter")
    assert (waiter_run.status, waiter_run.output) == (RunStatus.COMPLETED, "test-one-step")


def test_finalize_of_a_run_that_deferred_nothing_does_not_look_for_defers(inngest_client):
    one_step(inngest_client)
    inngest.send({"name": "test/one"})
    dispatch_only(inngest_client)

    with CaptureQueriesContext(connection) as queries:
        Worker(threads=0, registry=inngest_client.registry)._claim_and_execute()

    assert FunctionRun.objects.get().status == RunStatus.COMPLETED
    assert not [q for q in queries if "inngest_django_deferintent" in q["sql"]]


def test_a_one_step_run_costs_at_most_twelve_statements(inngest_client):
    queue_one_step_runs(inngest_client, 4)
    worker = Worker(threads=0, registry=inngest_client.registry)

    with CaptureQueriesContext(connection) as queries:
        assert worker.run_once() == 4

    # Claim, step and finalize for four runs, and one round of look-ups: the figure the
    # benchmark's profile shows (bench/run_profile.py), kept from creeping back up.
    assert len(queries) / 4 <= 12, [q["sql"][:80] for q in queries]
