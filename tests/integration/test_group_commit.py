"""Group commit: a thread commits several runs' passes at once; a failing one rolls back alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

import inngest_django as inngest
from inngest_django import signals
from inngest_django.conf import app_settings
from inngest_django.engine.group_commit import MAX_PASSES, group_commit_seconds
from inngest_django.enums import RunStatus
from inngest_django.models import FunctionRun, StepRun, Wait
from inngest_django.worker import Worker
from tests.helpers import (
    committed_steps,
    counted_commits,
    leased_run,
    most_at_once,
    orders_per_step,
    send_steps,
    status_of,
    step_starts,
)
from tests.testapp.inngest_functions import HOLD_AFTER_ENV
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_STEPS = "testapp-record-steps"


@contextmanager
def grouped(seconds: float, *, checkpoint: bool = True) -> Iterator[None]:
    """Run the block with GROUP_COMMIT_SECONDS and CHECKPOINT set."""
    values = {"GROUP_COMMIT_SECONDS": seconds, "CHECKPOINT": checkpoint, "PREFETCH_RUNS": 40}
    with override_settings(INNGEST_DJANGO={**settings.INNGEST_DJANGO, **values}):
        yield


def mixed_functions(inngest_client) -> None:
    """Runs whose one step writes an Order, fails, or breaks a unique constraint."""

    @inngest_client.create_function(
        fn_id="ok", trigger=inngest.TriggerEvent(event="g/ok"), retries=0
    )
    def ok(ctx):
        n = ctx.event.data["n"]
        ctx.step.run("write", lambda: Order.objects.create(reference=f"ok-{n}").pk)
        return n

    @inngest_client.create_function(
        fn_id="fails", trigger=inngest.TriggerEvent(event="g/fails"), retries=0
    )
    def fails(ctx):
        def write_then_fail() -> None:
            Order.objects.create(reference="fails")
            raise ValueError("the step failed")

        ctx.step.run("write", write_then_fail)

    @inngest_client.create_function(
        fn_id="clashes", trigger=inngest.TriggerEvent(event="g/clashes"), retries=0
    )
    def clashes(ctx):
        def write_twice() -> None:
            Order.objects.create(reference="clash", step_key="x")
            Order.objects.create(reference="clash", step_key="x")

        ctx.step.run("write", write_twice)


def send_mixed(inngest_client) -> None:
    events = [inngest.Event(name="g/ok", data={"n": n}) for n in range(3)]
    events += [inngest.Event(name="g/fails"), inngest.Event(name="g/clashes")]
    events += [inngest.Event(name="g/ok", data={"n": n}) for n in range(3, 6)]
    inngest_client.send(events)


def drain_with_one_worker(inngest_client) -> None:
    worker = Worker(threads=0, worker_id="group", registry=inngest_client.registry)
    while worker.run_once():
        pass


def test_group_commit_with_failing_runs_leaves_the_others_completed(inngest_client):
    mixed_functions(inngest_client)
    send_mixed(inngest_client)
    with grouped(1.0), counted_commits() as commits:
        drain_with_one_worker(inngest_client)
    runs = {run.function_id: run for run in FunctionRun.objects.exclude(function_id="test-ok")}
    ok_runs = FunctionRun.objects.filter(function_id="test-ok")
    assert sorted(ok_runs.values_list("status", flat=True)) == [RunStatus.COMPLETED] * 6
    assert sorted(ok_runs.values_list("output", flat=True)) == list(range(6))
    assert runs["test-fails"].status == RunStatus.FAILED
    assert runs["test-fails"].error["message"] == "the step failed"
    assert runs["test-clashes"].status == RunStatus.FAILED
    assert runs["test-clashes"].error["name"] == IntegrityError.__name__
    # The failed steps' own writes rolled back with them; the others' writes committed.
    assert sorted(Order.objects.values_list("reference", flat=True)) == [
        f"ok-{n}" for n in range(6)
    ]
    assert StepRun.objects.filter(run__function_id="test-ok").count() == 6
    # Dispatch, the claim and one group for the eight passes, against a commit per pass.
    assert len(commits) <= 4


def test_runs_in_a_group_are_announced_once_the_group_commits(inngest_client, caplog):
    mixed_functions(inngest_client)
    send_mixed(inngest_client)
    announced = []

    def on_finished(sender, run, **kwargs):
        # Outside any transaction: the group that finished the run has committed.
        announced.append((run.function_id, run.status, connection.in_atomic_block))

    signals.run_finished.connect(on_finished)
    try:
        with grouped(1.0), caplog.at_level("INFO", logger="inngest_django.executor"):
            drain_with_one_worker(inngest_client)
    finally:
        signals.run_finished.disconnect(on_finished)
    assert sorted(announced) == sorted(
        [("test-ok", RunStatus.COMPLETED, False)] * 6
        + [("test-fails", RunStatus.FAILED, False), ("test-clashes", RunStatus.FAILED, False)]
    )
    outcomes = [r for r in caplog.records if r.action in ("run_completed", "run_failed")]
    assert len(outcomes) == 8


def test_a_group_opens_at_its_first_passs_first_write(inngest_client):
    in_transaction = []

    @inngest_client.create_function(
        fn_id="sees", trigger=inngest.TriggerEvent(event="g/sees"), retries=0
    )
    def sees(ctx):
        # Before the step: the first pass has written nothing, so no transaction holds it
        # (on SQLite, the one write lock); the later ones run inside the group it opened.
        in_transaction.append(connection.in_atomic_block)
        n = ctx.event.data["n"]
        ctx.step.run("write", lambda: Order.objects.create(reference=f"sees-{n}").pk)

    inngest_client.send([inngest.Event(name="g/sees", data={"n": n}) for n in range(3)])
    with grouped(1.0), counted_commits() as commits:
        drain_with_one_worker(inngest_client)
    assert in_transaction == [False, True, True]
    assert Order.objects.count() == 3
    statuses = FunctionRun.objects.filter(function_id="test-sees").values_list("status", flat=True)
    assert list(statuses) == [RunStatus.COMPLETED] * 3
    # Dispatch, the claim and one group for the three passes.
    assert len(commits) <= 3


def test_a_grouped_pass_leaves_its_savepoint_for_the_groups_commit(inngest_client):
    mixed_functions(inngest_client)
    send_mixed(inngest_client)
    with grouped(1.0), CaptureQueriesContext(connection) as sql:
        drain_with_one_worker(inngest_client)
    statements = [query["sql"] for query in sql.captured_queries]
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == 6
    # A savepoint per pass (a failed one takes more: its step's, its failure's, its finish's);
    # only the two the failed steps rolled back to are released.
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) >= 8
    rolled_back = [sql for sql in statements if sql.startswith("ROLLBACK TO SAVEPOINT")]
    released = [sql for sql in statements if sql.startswith("RELEASE SAVEPOINT")]
    assert len(rolled_back) == 2
    assert [sql.split()[-1] for sql in released] == [sql.split()[-1] for sql in rolled_back]


def test_without_group_commit_each_pass_commits_alone(inngest_client):
    mixed_functions(inngest_client)
    send_mixed(inngest_client)
    with grouped(0), counted_commits() as commits:
        drain_with_one_worker(inngest_client)
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == 6
    assert len(commits) >= 8


def test_group_commit_is_on_with_checkpointing_only():
    assert app_settings.GROUP_COMMIT_SECONDS is None
    # By default a shorter window on SQLite, whose one write lock every other writer waits for.
    assert group_commit_seconds() == (0.02 if connection.vendor == "postgresql" else 0.005)
    with override_settings(INNGEST_DJANGO={**settings.INNGEST_DJANGO, "SQLITE_WRITE_QUEUE": False}):
        # Without the queue, SQLite's busy handler would leave other writers out for seconds.
        assert group_commit_seconds() == (0.02 if connection.vendor == "postgresql" else 0)
    with grouped(0.5, checkpoint=False):
        assert group_commit_seconds() == 0
    with grouped(0.5):
        assert group_commit_seconds() == 0.5
    with grouped(0):
        assert group_commit_seconds() == 0


def test_sqlite_without_the_write_queue_commits_each_pass_by_default(inngest_client):
    mixed_functions(inngest_client)
    inngest_client.send([inngest.Event(name="g/ok", data={"n": n}) for n in range(10)])
    values = {"PREFETCH_RUNS": 40, "SQLITE_WRITE_QUEUE": False}
    with (
        override_settings(INNGEST_DJANGO={**settings.INNGEST_DJANGO, **values}),
        counted_commits() as commits,
    ):
        drain_with_one_worker(inngest_client)
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == 10
    if connection.vendor == "postgresql":
        # Dispatch, then the claim and the ten passes: one group, or two if a window ran out.
        assert 2 <= len(commits) <= 3
    else:
        # Dispatch, the claim, and one commit a pass (each step checkpointed into its finish).
        assert len(commits) == 12


def test_a_lone_claimed_run_commits_without_a_group(inngest_client):
    mixed_functions(inngest_client)
    inngest_client.send(inngest.Event(name="g/ok", data={"n": 1}))
    with grouped(1.0), CaptureQueriesContext(connection) as sql:
        drain_with_one_worker(inngest_client)
    assert FunctionRun.objects.get().status == RunStatus.COMPLETED
    assert not [q for q in sql.captured_queries if q["sql"].startswith("SAVEPOINT")]


def test_more_passes_than_a_group_holds_commit_in_several_groups(inngest_client):
    mixed_functions(inngest_client)
    count = MAX_PASSES + 5
    inngest_client.send([inngest.Event(name="g/ok", data={"n": n}) for n in range(count)])
    with grouped(1.0), counted_commits() as commits:
        drain_with_one_worker(inngest_client)
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == count
    # Dispatch, the claim (on PostgreSQL one statement, committed on its own), and two groups.
    assert len(commits) == (3 if connection.vendor == "postgresql" else 4)


def test_group_commit_window_bounds_how_long_passes_wait_for_their_commit(inngest_client):
    mixed_functions(inngest_client)
    inngest_client.send([inngest.Event(name="g/ok", data={"n": n}) for n in range(6)])
    # A window that every pass outlasts: each pass commits the one before it.
    with grouped(0.000001), counted_commits() as commits:
        drain_with_one_worker(inngest_client)
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == 6
    assert len(commits) >= 6


def seen_by_another_connection(query) -> object:
    """Return `query()` as a second connection sees it: committed rows only."""
    seen: list[object] = []

    def look() -> None:
        try:
            seen.append(query())
        finally:
            connections.close_all()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    return seen[0]


def test_a_wait_planned_in_a_group_commits_before_its_catch_up_look(inngest_client, monkeypatch):
    # An event dispatched between the wait's write and the group's commit would miss the wait:
    # the look for such events must come after the wait is visible to every dispatch.
    mixed_functions(inngest_client)

    @inngest_client.create_function(fn_id="waits", trigger=inngest.TriggerEvent(event="g/waits"))
    def waits(ctx):
        return ctx.step.wait_for_event("reply", event="g/reply", timeout="1h") is not None

    from inngest_django.engine import durable_steps

    visible: list[object] = []
    real_catch_up = durable_steps.catch_up

    def catch_up(wait, *, now):
        visible.append(seen_by_another_connection(Wait.objects.filter(pk=wait.pk).exists))
        return real_catch_up(wait, now=now)

    monkeypatch.setattr(durable_steps, "catch_up", catch_up)
    inngest_client.send(
        [
            inngest.Event(name="g/ok", data={"n": 0}),
            inngest.Event(name="g/waits"),
            inngest.Event(name="g/ok", data={"n": 1}),
        ]
    )
    with grouped(1.0):
        drain_with_one_worker(inngest_client)
    assert visible == [True]
    assert FunctionRun.objects.get(function_id="test-waits").status == RunStatus.WAITING
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == 2


def test_a_step_starting_after_the_window_commits_the_group_first(inngest_client):
    # A step's callable may run for long: the rows the group holds are not kept locked by it.
    mixed_functions(inngest_client)
    first_done: list[object] = []

    @inngest_client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="g/slow"))
    def slow(ctx):
        ctx.step.run("pause", lambda: time.sleep(0.2))

        def look() -> None:
            query = FunctionRun.objects.filter(function_id="test-ok", status=RunStatus.COMPLETED)
            first_done.append(seen_by_another_connection(query.exists))

        ctx.step.run("look", look)

    inngest_client.send([inngest.Event(name="g/ok", data={"n": 0}), inngest.Event(name="g/slow")])
    with grouped(0.05):
        drain_with_one_worker(inngest_client)
    assert first_done == [True]
    assert FunctionRun.objects.filter(status=RunStatus.COMPLETED).count() == 2


@pytest.mark.postgres
def test_parallel_steps_in_a_grouped_pass_still_run_side_by_side(inngest_client):
    # The group commits before the round: steps on other connections would wait for its locks.
    spans: list[tuple[float, float]] = []

    @inngest_client.create_function(fn_id="fan", trigger=inngest.TriggerEvent(event="g/fan"))
    def fan(ctx):
        def part(key: str):
            def work() -> str:
                started = time.monotonic()
                Order.objects.create(reference=f"{ctx.run_id}-{key}")
                time.sleep(0.3)
                spans.append((started, time.monotonic()))
                return key

            return lambda: ctx.step.run(key, work)

        return ctx.group.parallel(tuple(part(key) for key in "abc"))

    inngest_client.send([inngest.Event(name="g/fan") for _ in range(2)])
    with grouped(1.0):
        drain_with_one_worker(inngest_client)
    assert [run.output for run in FunctionRun.objects.all()] == [["a", "b", "c"]] * 2
    assert Order.objects.count() == 6
    assert most_at_once(spans) == 3


@pytest.mark.postgres
def test_a_heartbeat_skips_a_run_row_an_open_transaction_holds_instead_of_waiting():
    # A group holds its finished runs' rows until it commits; the beat renews the others.
    now = timezone.now()
    held, free = (
        leased_run("test-beat", token="token", until=now + timedelta(seconds=5)) for _ in range(2)
    )
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                FunctionRun.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(5)
        started = time.monotonic()
        assert FunctionRun.objects.extend_leases(["token"], now + timedelta(seconds=60)) == 1
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join()
    assert FunctionRun.objects.get(pk=free.pk).locked_until == now + timedelta(seconds=60)
    assert FunctionRun.objects.get(pk=held.pk).locked_until == now + timedelta(seconds=5)


@pytest.mark.slow
def test_a_worker_killed_with_a_group_open_loses_nothing_and_repeats_nothing_committed(workers):
    # Three one-step runs finish inside the group; the fourth holds it open after its last step.
    send_steps(3, steps=1)
    send_steps(1, steps=3)
    env = {
        "INNGEST_DJANGO_TEST_LEASE_SECONDS": "2",
        "INNGEST_DJANGO_TEST_CHECKPOINT": "1",
        "INNGEST_DJANGO_TEST_GROUP_COMMIT_SECONDS": "1",
        HOLD_AFTER_ENV: "s2",
    }
    first = workers.start(**env)
    workers.wait_for(
        lambda: any(e["phase"] == "held" for e in workers.journal()), what="the held run"
    )
    runs = list(FunctionRun.objects.filter(function_id=RECORD_STEPS).order_by("pk"))
    assert len(runs) == 4
    # Nothing of the group committed: not the finished runs, not their steps' writes.
    for run in runs:
        assert status_of(run.pk) == RunStatus.RUNNING
        assert committed_steps(run.pk) == []
        assert orders_per_step(run.pk) == {}
    assert {run.pk for run in runs} == {e["run"] for e in workers.journal()}
    workers.kill(first)

    second = workers.start(**{**env, HOLD_AFTER_ENV: ""})
    workers.wait_for(
        lambda: all(status_of(run.pk) == RunStatus.COMPLETED for run in runs),
        what="every run to complete",
        timeout=30,
    )
    for run in runs[:3]:
        assert step_starts(workers, run.pk) == [("s0", first.pid), ("s0", second.pid)]
        assert orders_per_step(run.pk) == {"s0": 1}
    assert orders_per_step(runs[3].pk) == {"s0": 1, "s1": 1, "s2": 1}
    assert Order.objects.count() == 6
