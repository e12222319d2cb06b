"""Worker processes: leases, heartbeats, SIGKILL recovery, shared queues and cron ticks."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.models import CronSchedule, FunctionRun, StepRun
from inngest_django.worker import Worker
from tests.helpers import (
    committed_steps,
    leased_run,
    orders_per_step,
    send_steps,
    status_of,
    step_starts,
)
from tests.testapp.inngest_functions import CRON_ENV, EVERY_MINUTE, HOLD_AFTER_ENV
from tests.testapp.models import Call, Order

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECORD_STEPS = "testapp-record-steps"
EVERY_MINUTE_ID = "testapp-every-minute"
LEASE_SECONDS = 2.0
# Workers that get killed hold short leases, so their runs resume within seconds.
SHORT_LEASE = {"INNGEST_DJANGO_TEST_LEASE_SECONDS": str(LEASE_SECONDS)}
# Each step commits as it returns: checkpointing would hold s0 open until the next write.
NO_CHECKPOINT = {"INNGEST_DJANGO_TEST_CHECKPOINT": "0"}


def record_steps_run() -> FunctionRun | None:
    """Return the record-steps run, or None until an event has started one."""
    return FunctionRun.objects.filter(function_id=RECORD_STEPS).first()


def call_pids(run_id: str) -> dict[str, list[int]]:
    pids: dict[str, list[int]] = {}
    for name, pid in Call.objects.filter(run_id=run_id).values_list("name", "pid"):
        pids.setdefault(name, []).append(pid)
    return pids


def test_killed_worker_run_resumes_in_another_worker_without_rerunning_committed_steps(workers):
    send_steps(steps=3, pause_s=1.0)
    first = workers.start(**SHORT_LEASE)
    run = workers.wait_for(record_steps_run, what="the run to be queued")
    # Kill inside step s1: s0 has committed, s1's transaction is open.
    workers.wait_for(
        lambda: ("s1", first.pid) in step_starts(workers, run.pk), what="step s1 to start"
    )
    workers.kill(first)
    assert committed_steps(run.pk) == ["s0"]
    assert orders_per_step(run.pk) == {"s0": 1}

    second = workers.start(**SHORT_LEASE)
    workers.wait_for(
        lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete", timeout=30
    )

    # s0 ran once; s1 ran twice but committed once, in the second worker; s2 ran once.
    assert step_starts(workers, run.pk) == [
        ("s0", first.pid),
        ("s1", first.pid),
        ("s1", second.pid),
        ("s2", second.pid),
    ]
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1, "s2": 1}
    assert call_pids(run.pk) == {"s0": [first.pid], "s1": [second.pid], "s2": [second.pid]}
    assert committed_steps(run.pk) == ["s0", "s1", "s2"]
    run.refresh_from_db()
    assert run.output == {"steps": 3}
    assert (run.locked_by, run.lease_token, run.locked_until) == ("", "", None)


def test_heartbeat_keeps_a_live_worker_run_and_a_committed_step_survives_its_kill(workers):
    send_steps(steps=2)
    # The first worker blocks after s0 commits, between steps, until it is killed.
    first = workers.start(**SHORT_LEASE, **NO_CHECKPOINT, **{HOLD_AFTER_ENV: "s0"})
    run = workers.wait_for(record_steps_run, what="the run to be queued")
    workers.wait_for(
        lambda: any(e["phase"] == "held" for e in workers.journal()), what="s0 to commit"
    )
    second = workers.start(**SHORT_LEASE)
    workers.wait_for_log(1, "Worker started")
    # Nothing should happen here, so there is nothing to poll for: wait out two leases.
    time.sleep(2 * LEASE_SECONDS)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert f":{first.pid}:" in run.locked_by, "the heartbeat should have kept the lease"
    assert step_starts(workers, run.pk) == [("s0", first.pid)]

    workers.kill(first)
    workers.wait_for(
        lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete", timeout=30
    )
    assert step_starts(workers, run.pk) == [("s0", first.pid), ("s1", second.pid)]
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1}
    assert call_pids(run.pk) == {"s0": [first.pid], "s1": [second.pid]}
    assert committed_steps(run.pk) == ["s0", "s1"]


def test_heartbeat_keeps_a_step_longer_than_the_lease_from_running_twice(workers):
    send_steps(steps=2, pause_s=LEASE_SECONDS + 0.5)
    first = workers.start(**SHORT_LEASE)
    run = workers.wait_for(record_steps_run, what="the run to be queued")
    workers.wait_for(lambda: step_starts(workers, run.pk), what="step s0 to start")
    second = workers.start(**SHORT_LEASE)
    workers.wait_for(
        lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete", timeout=30
    )
    starts = step_starts(workers, run.pk)
    assert [step for step, _ in starts] == ["s0", "s1"]
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1}
    # On SQLite the heartbeat waits behind the step's write lock; the step renews the lease
    # itself as it commits, so the run stays with its worker there too.
    assert {pid for _, pid in starts} == {first.pid}, workers.logs()
    assert second.poll() is None


def test_a_heartbeat_computed_before_a_wait_never_pulls_the_lease_in():
    now = timezone.now()
    run = leased_run("test-lease", token="token", until=now + timedelta(seconds=30))
    assert FunctionRun.objects.extend_leases(["token"], now + timedelta(seconds=10)) == 0
    assert FunctionRun.objects.extend_leases(["token"], now + timedelta(seconds=60)) == 1
    run.refresh_from_db()
    assert run.locked_until == run.available_at == now + timedelta(seconds=60)


@pytest.mark.postgres
def test_stalled_worker_that_lost_its_lease_commits_nothing_when_it_wakes(workers):
    # PostgreSQL only: on SQLite a worker frozen inside a step holds the write lock, and every
    # other writer waits for it.
    send_steps(steps=2, pause_s=1.0)
    first = workers.start(**SHORT_LEASE)
    run = workers.wait_for(record_steps_run, what="the run to be queued")
    workers.wait_for(lambda: step_starts(workers, run.pk), what="step s0 to start")
    first.send_signal(signal.SIGSTOP)  # heartbeat included
    try:
        second = workers.start(**SHORT_LEASE)
        # The second worker takes the run once the lease expires; its s0 insert then waits on
        # the frozen transaction's row with the same unique key.
        workers.wait_for(
            lambda: ("s0", second.pid) in step_starts(workers, run.pk),
            what="the second worker to take the run over",
        )
    finally:
        first.send_signal(signal.SIGCONT)
    workers.wait_for(
        lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete", timeout=30
    )
    # The first worker's s0 failed its lease check at commit and rolled back.
    assert step_starts(workers, run.pk) == [
        ("s0", first.pid),
        ("s0", second.pid),
        ("s1", second.pid),
    ]
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1}
    assert call_pids(run.pk) == {"s0": [second.pid], "s1": [second.pid]}
    assert first.poll() is None


def test_two_workers_share_200_runs_and_every_step_runs_exactly_once(workers):
    first = workers.start()
    second = workers.start("--threads", "2")
    workers.wait_for_log(0, "Worker started")
    workers.wait_for_log(1, "Worker started")
    inngest.send([{"name": "testapp/steps", "data": {"steps": 3}} for _ in range(200)])

    runs = FunctionRun.objects.filter(function_id=RECORD_STEPS)
    workers.wait_for(
        lambda: runs.filter(status=RunStatus.COMPLETED).count() == 200,
        what="200 runs to complete",
        timeout=60,
    )
    run_ids = set(runs.values_list("pk", flat=True))
    assert len(run_ids) == 200
    expected = {(run_id, f"s{index}") for run_id in run_ids for index in range(3)}

    assert Counter(StepRun.objects.values_list("run_id", "step_key")) == dict.fromkeys(expected, 1)
    assert Counter(Order.objects.values_list("reference", "step_key")) == dict.fromkeys(expected, 1)
    assert Counter(Call.objects.values_list("run_id", "name")) == dict.fromkeys(expected, 1)
    # Counting calls that rolled back too: no step body ran twice, so no run was ever executed
    # by two workers at once, and no run moved from one worker to the other.
    starts = [(e["run"], e["step"], e["pid"]) for e in workers.journal() if e["phase"] == "start"]
    assert Counter((run, step) for run, step, _ in starts) == dict.fromkeys(expected, 1)
    pids_per_run = {run: {pid for r, _, pid in starts if r == run} for run in run_ids}
    assert all(len(pids) == 1 for pids in pids_per_run.values())
    assert {pid for _, _, pid in starts} == {first.pid, second.pid}


def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def clear_of_minute_boundary(seconds: float) -> None:
    """Wait past the next minute if it is under `seconds` away, so no real tick lands in a test."""
    now = timezone.now()
    until_next_minute = (minute_floor(now) + timedelta(minutes=1) - now).total_seconds()
    if until_next_minute < seconds:
        time.sleep(until_next_minute + 0.1)


def every_minute_schedule(next_tick_at: datetime) -> CronSchedule:
    return CronSchedule.objects.create(
        key=f"{EVERY_MINUTE_ID}|{EVERY_MINUTE}",
        function_id=EVERY_MINUTE_ID,
        cron=EVERY_MINUTE,
        next_tick_at=next_tick_at,
    )


def start_cron_workers(workers) -> None:
    for _ in range(2):
        workers.start(**{CRON_ENV: "1"})
    for index in range(2):
        workers.wait_for_log(index, "Worker started")


def test_two_workers_racing_for_one_cron_tick_start_one_run(workers):
    # Room for two worker processes to start on a loaded CI machine before the tick is due.
    clear_of_minute_boundary(14)
    tick = timezone.now() + timedelta(seconds=9)
    every_minute_schedule(tick)
    start_cron_workers(workers)
    assert timezone.now() < tick, "both workers should be up before the tick is due"

    tick_runs = FunctionRun.objects.filter(function_id=EVERY_MINUTE_ID)
    workers.wait_for(tick_runs.exists, what="the tick's run", timeout=15)
    # Both workers look at the tick within a poll interval; give the loser time to misfire.
    time.sleep(1)
    assert tick_runs.count() == 1
    schedule = CronSchedule.objects.get()
    assert schedule.last_tick_at == tick
    assert schedule.next_tick_at == minute_floor(timezone.now()) + timedelta(minutes=1)
    run = tick_runs.get()
    workers.wait_for(lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the tick's run")
    run.refresh_from_db()
    assert run.output == {"cron": EVERY_MINUTE}


def test_ticks_missed_while_no_worker_ran_start_one_run(workers):
    clear_of_minute_boundary(5)
    missed = minute_floor(timezone.now()) - timedelta(minutes=5)
    every_minute_schedule(missed)
    start_cron_workers(workers)

    tick_runs = FunctionRun.objects.filter(function_id=EVERY_MINUTE_ID)
    workers.wait_for(tick_runs.exists, what="the overdue tick's run", timeout=15)
    time.sleep(1)
    assert tick_runs.count() == 1
    schedule = CronSchedule.objects.get()
    assert schedule.last_tick_at == missed
    assert schedule.next_tick_at == minute_floor(timezone.now()) + timedelta(minutes=1)


def test_until_idle_sees_work_left_by_a_run_finishing_during_its_last_round(inngest_client):
    release = threading.Event()

    @inngest_client.create_function(
        fn_id="blocking", trigger=inngest.TriggerEvent(event="test/block")
    )
    def blocking(ctx):
        return release.wait(10)

    @inngest_client.create_function(
        fn_id="after-blocking",
        trigger=inngest.TriggerEvent(
            event="inngest/function.finished",
            expression="event.data.function_id == 'test-blocking'",
        ),
    )
    def after_blocking(ctx):
        return "seen"

    worker = Worker(threads=1, until_idle=True, registry=inngest_client.registry)
    fire_due = worker.scheduler.fire_due

    def fire_due_letting_the_run_finish() -> int:
        # Finish the in-flight run mid-round, after this round looked for new events.
        if worker._in_flight_count() and not release.is_set():
            release.set()
            deadline = time.monotonic() + 10
            while worker._in_flight_count() and time.monotonic() < deadline:
                time.sleep(0.01)
        return fire_due()

    worker.scheduler.fire_due = fire_due_letting_the_run_finish  # type: ignore[method-assign]
    inngest.send({"name": "test/block"})
    worker.run()

    assert release.is_set()
    assert dict(FunctionRun.objects.values_list("function_id", "status")) == {
        "test-blocking": RunStatus.COMPLETED,
        "test-after-blocking": RunStatus.COMPLETED,
    }
