"""Worker processes running async handlers and parallel steps: many runs, SIGKILL, overlap."""

from __future__ import annotations

import pytest
from django.db import connection

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.models import FunctionRun, StepRun
from tests.helpers import orders_per_step, runs_of, status_of, step_starts
from tests.testapp.models import Call

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHORT_LEASE = {"INNGEST_DJANGO_TEST_LEASE_SECONDS": "2"}


def completed(function_id: str, count: int) -> bool:
    done = FunctionRun.objects.filter(function_id=function_id, status=RunStatus.COMPLETED)
    return done.count() == count


def spans(workers, run_id: str) -> dict[str, tuple[float, float]]:
    """Return each step's (start, end) times from the journal, for its last attempt."""
    starts: dict[str, float] = {}
    result: dict[str, tuple[float, float]] = {}
    for entry in workers.journal():
        if entry["run"] != run_id:
            continue
        if entry["phase"] == "start":
            starts[entry["step"]] = entry["t"]
        elif entry["phase"] == "end":
            result[entry["step"]] = (starts[entry["step"]], entry["t"])
    return result


def test_async_handler_runs_async_and_sync_steps_in_a_worker(workers):
    inngest.send({"name": "testapp/async-steps", "data": {"steps": 3, "pause_s": 0.05}})
    workers.start("--threads", "2")
    workers.wait_for(lambda: completed("testapp-async-steps", 1), what="the run", timeout=60)
    (run,) = runs_of("testapp-async-steps")
    assert run.output == {"fetched": [0, 10, 20]}
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1, "s2": 1}
    steps = StepRun.objects.filter(run_id=run.pk).order_by("started_at")
    assert [s.step_key for s in steps] == ["a0", "s0", "a1", "s1", "a2", "s2"]
    # The async step's row spans its await: started before it, finished after.
    a0 = steps[0]
    assert (a0.finished_at - a0.started_at).total_seconds() >= 0.04


def test_killed_worker_async_run_writes_each_step_once(workers):
    inngest.send({"name": "testapp/async-steps", "data": {"steps": 4, "pause_s": 0.8}})
    first = workers.start("--threads", "2", **SHORT_LEASE)
    run = workers.wait_for(
        lambda: FunctionRun.objects.filter(function_id="testapp-async-steps").first(),
        what="the run",
    )
    # Killed inside the sync step s1: s0 has committed, s1's transaction is open.
    workers.wait_for(
        lambda: ("s1", first.pid) in step_starts(workers, run.pk), what="s1 to start", timeout=60
    )
    workers.kill(first)
    assert orders_per_step(run.pk) == {"s0": 1}

    workers.start("--threads", "2", **SHORT_LEASE)
    workers.wait_for(
        lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to finish", timeout=90
    )
    assert orders_per_step(run.pk) == {"s0": 1, "s1": 1, "s2": 1, "s3": 1}
    calls = Call.objects.filter(run_id=run.pk).values_list("name", flat=True)
    assert sorted(calls) == ["s0", "s1", "s2", "s3"]
    # s1 started twice (once in the killed worker), each committed step once.
    starts = [step for step, _ in step_starts(workers, run.pk)]
    assert starts.count("s0") == 1
    assert starts.count("s1") == 2


def test_one_worker_holds_a_hundred_async_runs_at_once(workers):
    count, pause = 100, 0.5
    inngest.send(
        [{"name": "testapp/async-sleeper", "data": {"pause_s": pause}} for _ in range(count)]
    )
    workers.start("--threads", "1")
    workers.wait_for(
        lambda: completed("testapp-async-sleeper", count), what="all runs", timeout=120
    )
    waits = [e for e in workers.journal() if e["step"] == "wait"]
    starts = [e["t"] for e in waits if e["phase"] == "start"]
    ends = [e["t"] for e in waits if e["phase"] == "end"]
    assert len(starts) == len(ends) == count
    # In turn, the waits alone would take count * pause = 50 s.
    assert max(ends) - min(starts) < count * pause / 4
    # And they overlap: many waits had started before the first one ended.
    assert sum(start < min(ends) for start in starts) >= 10
    assert len({e["pid"] for e in waits}) == 1


def test_parallel_sync_steps_overlap_and_return_in_order(workers):
    inngest.send({"name": "testapp/parallel", "data": {"count": 4, "pause_s": 0.6}})
    workers.start("--threads", "1")
    workers.wait_for(lambda: completed("testapp-parallel-steps", 1), what="the run", timeout=60)
    (run,) = runs_of("testapp-parallel-steps")
    assert run.output == {"results": [0, 1, 2, 3], "total": 6}
    assert orders_per_step(run.pk) == {"p0": 1, "p1": 1, "p2": 1, "p3": 1}
    times = spans(workers, run.pk)
    if connection.vendor == "sqlite":
        # One writer: each step's transaction holds SQLite's write lock, so they take turns.
        assert sorted(times) == ["p0", "p1", "p2", "p3"]
        return
    # Every step started before any ended: they ran side by side.
    assert max(start for start, _ in times.values()) < min(end for _, end in times.values())


def test_async_parallel_steps_overlap_on_the_loop(workers):
    inngest.send({"name": "testapp/async-parallel", "data": {"count": 5, "pause_s": 0.6}})
    workers.start("--threads", "1")
    workers.wait_for(lambda: completed("testapp-async-parallel", 1), what="the run", timeout=60)
    (run,) = runs_of("testapp-async-parallel")
    assert run.output == {"results": [0, 1, 2, 3, 4, 5]}
    times = spans(workers, run.pk)
    awaited = [times[f"p{i}"] for i in range(5)]
    assert max(start for start, _ in awaited) < min(end for _, end in awaited)
    # The sync one ran on the thread pool meanwhile, beside the awaits.
    sync_start, _ = times["p5"]
    assert sync_start < min(end for _, end in awaited)


def test_failed_parallel_step_retries_alone(workers):
    inngest.send({"name": "testapp/parallel", "data": {"count": 3, "pause_s": 0.2, "flaky": 1}})
    workers.start("--threads", "1")
    workers.wait_for(lambda: completed("testapp-parallel-steps", 1), what="the run", timeout=60)
    (run,) = runs_of("testapp-parallel-steps")
    assert run.output == {"results": [0, 1, 2], "total": 3}
    starts = [step for step, _ in step_starts(workers, run.pk)]
    assert sorted(starts) == ["p0", "p1", "p1", "p2"]
    # p2 ran beside p1's failed attempt, not after its retry.
    order = [(e["step"], e["phase"]) for e in workers.journal() if e["run"] == run.pk]
    retry_start = [i for i, entry in enumerate(order) if entry == ("p1", "start")][1]
    assert order.index(("p2", "end")) < retry_start
    # The failed attempt's write rolled back with it; every step committed once.
    assert orders_per_step(run.pk) == {"p0": 1, "p1": 1, "p2": 1}
    p1 = StepRun.objects.get(run_id=run.pk, step_key="p1")
    assert p1.attempts == 2


def test_async_runs_beside_sync_runs_in_one_worker(workers):
    inngest.send({"name": "testapp/async-sleeper", "data": {"pause_s": 0.2}})
    inngest.send({"name": "testapp/parallel", "data": {"count": 2, "pause_s": 0.05}})
    workers.start("--threads", "1")
    workers.wait_for(
        lambda: completed("testapp-async-sleeper", 1) and completed("testapp-parallel-steps", 1),
        what="both runs",
        timeout=60,
    )
