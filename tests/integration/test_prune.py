"""Retention: `prune`, `manage.py inngest_prune` and the worker's prune, with real workers."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

import inngest_django as inngest
from inngest_django.enums import (
    FINISHED_STATUSES,
    DeferStatus,
    RunStatus,
    StepOp,
    StepStatus,
    WaitKind,
    WaitOutcome,
)
from inngest_django.ids import new_id
from inngest_django.models import (
    CronSchedule,
    DeferIntent,
    Event,
    EventKey,
    FlowState,
    FunctionRun,
    IdempotencyKey,
    OutboxMessage,
    RunEvent,
    StepRun,
    Wait,
)
from inngest_django.pruner import SCHEDULE_KEY, Pruner
from inngest_django.retention import iter_prune, prune
from tests.conftest import ROOT
from tests.testapp.models import Order

THIRTY_DAYS = timedelta(days=30)
RECORD_STEPS = "testapp-record-steps"


def ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def make_event(name: str = "test/thing.happened", *, days: float, dispatched: bool = True) -> Event:
    at = ago(days)
    event = Event.objects.create(
        id=new_id(),
        name=name,
        ts=int(at.timestamp() * 1000),
        dispatched_at=at if dispatched else None,
    )
    Event.objects.filter(pk=event.pk).update(received_at=at)  # auto_now_add ignores a given value
    return event


def make_run(
    event: Event, status: RunStatus, *, days: float, steps: int = 0, **fields: object
) -> FunctionRun:
    """Store a run created `days` ago, finished then if `status` is final, with step memos."""
    at = ago(days)
    finished = status in (
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.SKIPPED,
    )
    run = FunctionRun.objects.create(
        id=new_id(),
        function_id="test-fn",
        event=event,
        status=status,
        available_at=at,
        started_at=at,
        finished_at=at if finished else None,
        **fields,
    )
    FunctionRun.objects.filter(pk=run.pk).update(created_at=at)
    for index in range(steps):
        StepRun.objects.create(
            run=run, step_key=f"s{index}", op=StepOp.RUN, status=StepStatus.COMPLETED, output=index
        )
    return run


def make_defer(run: FunctionRun, defer_id: str, *, relayed: bool) -> DeferIntent:
    intent = DeferIntent.objects.create(
        run=run, defer_id=defer_id, function_id="test-deferred", status=DeferStatus.SCHEDULED
    )
    OutboxMessage.objects.create(
        intent=intent, created_at=run.finished_at, relayed_at=run.finished_at if relayed else None
    )
    return intent


def ids(model: type) -> set:
    return set(model.objects.values_list("pk", flat=True))


class Scene:
    """Old and recent rows covering every rule of what a prune deletes and keeps."""

    def __init__(self) -> None:
        # Go: old finished runs of each final status, with their rows.
        self.e_done = make_event(days=40)
        self.batch_events = [make_event(days=40), make_event(days=40)]
        self.done = make_run(self.e_done, RunStatus.COMPLETED, days=40, steps=2)
        for position, event in enumerate(self.batch_events):
            RunEvent.objects.create(run=self.done, event=event, position=position)
        Wait.objects.create(
            run=self.done,
            kind=WaitKind.EVENT,
            step_key="s9",
            event_name="test/never",
            resolved_at=ago(40),
            outcome=WaitOutcome.TIMEOUT,
        )
        make_defer(self.done, "relayed", relayed=True)
        self.e_failed = make_event(days=40)
        self.failed = make_run(self.e_failed, RunStatus.FAILED, days=35, steps=1)
        self.e_cancelled = make_event(days=40)
        self.cancelled = make_run(self.e_cancelled, RunStatus.CANCELLED, days=31)
        self.e_skipped = make_event(days=40)
        self.skipped = make_run(self.e_skipped, RunStatus.SKIPPED, days=40)
        self.e_orphan = make_event(days=40)
        # A parent whose deferred child finished recently: the parent goes, the child stays.
        self.e_parent = make_event(days=40)
        self.parent = make_run(self.e_parent, RunStatus.COMPLETED, days=40)
        intent = make_defer(self.parent, "child", relayed=True)
        self.e_child = make_event(days=1)
        self.child = make_run(
            self.e_child,
            RunStatus.COMPLETED,
            days=1,
            steps=1,
            parent_run=self.parent,
            defer_intent=intent,
        )
        self.going_runs = {
            self.done.pk,
            self.failed.pk,
            self.cancelled.pk,
            self.skipped.pk,
            self.parent.pk,
        }
        self.going_events = {
            self.e_done.pk,
            *(event.pk for event in self.batch_events),
            self.e_failed.pk,
            self.e_cancelled.pk,
            self.e_skipped.pk,
            self.e_orphan.pk,
            self.e_parent.pk,
        }

        # Stay: recent runs, unfinished runs and what they need.
        self.e_recent = make_event(days=2)
        self.recent = make_run(self.e_recent, RunStatus.COMPLETED, days=2, steps=2)
        # An old event a recent run still uses (a rerun of a pruned run, for example).
        self.e_shared = make_event(days=40)
        self.old_on_shared = make_run(self.e_shared, RunStatus.COMPLETED, days=40)
        self.recent_on_shared = make_run(self.e_shared, RunStatus.COMPLETED, days=1)
        self.going_runs.add(self.old_on_shared.pk)
        self.e_running = make_event(days=40)
        self.running = make_run(self.e_running, RunStatus.RUNNING, days=40, steps=3)
        self.e_waiting = make_event(days=40)
        self.e_matched = make_event(days=40)
        self.waiting = make_run(self.e_waiting, RunStatus.WAITING, days=40, steps=1)
        Wait.objects.create(
            run=self.waiting,
            kind=WaitKind.EVENT,
            step_key="wait",
            event_name="test/answer",
            resolved_at=ago(39),
            outcome=WaitOutcome.EVENT,
            event=self.e_matched,
        )
        # An old finished parent whose deferred child has not finished.
        self.e_busy_parent = make_event(days=40)
        self.busy_parent = make_run(self.e_busy_parent, RunStatus.COMPLETED, days=40, steps=1)
        busy_intent = make_defer(self.busy_parent, "child", relayed=True)
        self.e_busy_child = make_event(days=40)
        self.busy_child = make_run(
            self.e_busy_child,
            RunStatus.QUEUED,
            days=40,
            parent_run=self.busy_parent,
            defer_intent=busy_intent,
        )
        # An old finished parent whose defer is still in the outbox.
        self.e_outbox_parent = make_event(days=40)
        self.outbox_parent = make_run(self.e_outbox_parent, RunStatus.COMPLETED, days=40)
        make_defer(self.outbox_parent, "pending", relayed=False)
        # An old finished run an unfinished rerun repeats, on the same event.
        self.e_rerun = make_event(days=40)
        self.original = make_run(self.e_rerun, RunStatus.FAILED, days=40, steps=1)
        self.rerun = make_run(self.e_rerun, RunStatus.QUEUED, days=0, rerun_of=self.original)
        # An old finished run that an unfinished caller invoked.
        self.e_invoked = make_event(days=40)
        self.invoked = make_run(self.e_invoked, RunStatus.COMPLETED, days=40)
        self.e_caller = make_event(days=40)
        self.caller = make_run(self.e_caller, RunStatus.SLEEPING, days=40)
        Wait.objects.create(
            run=self.caller,
            kind=WaitKind.INVOKE,
            step_key="invoke",
            child_run=self.invoked,
            resolved_at=ago(40),
            outcome=WaitOutcome.FINISHED,
        )
        # Old but never dispatched: work not done yet.
        self.e_undispatched = make_event(days=40, dispatched=False)
        self.e_recent_orphan = make_event(days=1)

        # Bookkeeping rows.
        now = timezone.now()
        self.expired_key = IdempotencyKey.objects.create(
            function_id="test-fn", key="event:a", expires_at=now - timedelta(seconds=1)
        )
        self.live_key = IdempotencyKey.objects.create(
            function_id="test-fn", key="event:b", expires_at=now + timedelta(hours=1)
        )
        self.idle_state = FlowState.objects.create(
            function_id="test-fn", kind="throttle", key="k1", tat=ago(31)
        )
        self.busy_state = FlowState.objects.create(
            function_id="test-fn", kind="throttle", key="k2", tat=now + timedelta(minutes=5)
        )
        EventKey.objects.create(name="ci", prefix="abc", digest="0" * 64, created_at=ago(400))
        CronSchedule.objects.create(
            key="test-nightly|0 0 * * *",
            function_id="test-nightly",
            cron="0 0 * * *",
            next_tick_at=ago(40),
        )

        self.runs_before = ids(FunctionRun)
        self.events_before = ids(Event)
        self.steps_before = StepRun.objects.count()

    def going_steps(self) -> int:
        return StepRun.objects.filter(run__in=self.going_runs).count()


@pytest.fixture
def scene(db) -> Scene:
    return Scene()


def assert_pruned(scene: Scene) -> None:
    assert ids(FunctionRun) == scene.runs_before - scene.going_runs
    assert ids(Event) == scene.events_before - scene.going_events
    assert not StepRun.objects.filter(run__in=scene.going_runs).exists()
    kept_steps = {run.pk: run.steps.count() for run in FunctionRun.objects.all()}
    assert kept_steps == {
        scene.child.pk: 1,
        scene.recent.pk: 2,
        scene.recent_on_shared.pk: 0,
        scene.running.pk: 3,
        scene.waiting.pk: 1,
        scene.busy_parent.pk: 1,
        scene.busy_child.pk: 0,
        scene.outbox_parent.pk: 0,
        scene.original.pk: 1,
        scene.rerun.pk: 0,
        scene.invoked.pk: 0,
        scene.caller.pk: 0,
    }
    assert set(Wait.objects.values_list("run_id", flat=True)) == {
        scene.waiting.pk,
        scene.caller.pk,
    }
    assert Wait.objects.get(run=scene.waiting).event_id == scene.e_matched.pk
    assert Wait.objects.get(run=scene.caller).child_run_id == scene.invoked.pk
    assert not RunEvent.objects.exists()
    assert set(DeferIntent.objects.values_list("run_id", "defer_id")) == {
        (scene.busy_parent.pk, "child"),
        (scene.outbox_parent.pk, "pending"),
    }
    assert OutboxMessage.objects.count() == 2
    assert OutboxMessage.objects.filter(relayed_at__isnull=True).count() == 1
    # The child of a pruned parent stays, its links to the parent cleared.
    child = FunctionRun.objects.get(pk=scene.child.pk)
    assert (child.parent_run_id, child.defer_intent_id) == (None, None)
    busy_child = FunctionRun.objects.get(pk=scene.busy_child.pk)
    assert busy_child.parent_run_id == scene.busy_parent.pk
    assert busy_child.defer_intent is not None
    assert FunctionRun.objects.get(pk=scene.rerun.pk).rerun_of_id == scene.original.pk
    assert ids(IdempotencyKey) == {scene.live_key.pk}
    assert ids(FlowState) == {scene.busy_state.pk}
    assert EventKey.objects.count() == 1
    assert CronSchedule.objects.filter(function_id="test-nightly").exists()


EXPECTED_COUNTS = {
    "FunctionRun": 6,
    "StepRun": 3,
    "Wait": 1,
    "DeferIntent": 2,
    "OutboxMessage": 2,
    "RunEvent": 2,
    "Event": 8,
    "FlowState": 1,
    "IdempotencyKey": 1,
}


def test_prune_deletes_old_finished_runs_and_keeps_what_unfinished_runs_need(scene):
    report = prune(THIRTY_DAYS, batch_size=500)
    assert report.counts == EXPECTED_COUNTS
    assert not report.dry_run
    assert_pruned(scene)


def test_dry_run_counts_the_same_rows_and_deletes_nothing(scene):
    report = prune(THIRTY_DAYS, batch_size=500, dry_run=True)
    assert report.dry_run
    assert report.counts == EXPECTED_COUNTS
    assert ids(FunctionRun) == scene.runs_before
    assert ids(Event) == scene.events_before
    assert StepRun.objects.count() == scene.steps_before
    assert IdempotencyKey.objects.count() == 2
    assert FlowState.objects.count() == 2


def test_a_second_prune_finds_nothing(scene):
    prune(THIRTY_DAYS, batch_size=500)
    assert prune(THIRTY_DAYS, batch_size=500).total == 0


def test_a_longer_period_keeps_runs_younger_than_it(scene):
    report = prune(timedelta(days=36), batch_size=500)
    # Only runs that finished 40 days ago go; the FAILED (35) and CANCELLED (31) stay.
    assert report.counts["FunctionRun"] == 4
    assert {scene.failed.pk, scene.cancelled.pk} <= ids(FunctionRun)
    assert {scene.e_failed.pk, scene.e_cancelled.pk} <= ids(Event)


@pytest.mark.django_db
def test_batches_delete_at_most_batch_size_rows_each():
    for _ in range(7):
        make_run(make_event(days=40), RunStatus.COMPLETED, days=40, steps=2)
    batches = list(iter_prune(THIRTY_DAYS, batch_size=2))
    assert [batch.get("FunctionRun") for batch in batches if "FunctionRun" in batch] == [
        2,
        2,
        2,
        1,
    ]
    assert [batch["StepRun"] for batch in batches if "FunctionRun" in batch] == [4, 4, 4, 2]
    assert [batch["Event"] for batch in batches if "Event" in batch] == [2, 2, 2, 1]
    assert not FunctionRun.objects.exists()
    assert not Event.objects.exists()
    assert not StepRun.objects.exists()


@pytest.mark.parametrize(
    ("older_than", "batch_size"), [(timedelta(0), 10), (THIRTY_DAYS, 0)], ids=["zero", "batch"]
)
def test_prune_rejects_a_zero_period_or_batch(older_than, batch_size):
    with pytest.raises(ValueError):
        prune(older_than, batch_size=batch_size)


# -- the command ---------------------------------------------------------------------------------


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("inngest_prune", *args, stdout=out)
    return out.getvalue()


def count_lines(output: str) -> dict[str, int]:
    rows = [line.split() for line in output.splitlines() if line.startswith("  ")]
    return {name: int(count) for name, count in rows}


def test_command_prints_counts_per_model(scene):
    output = run_command("--older-than", "30d", "--batch-size", "2")
    assert output.startswith("Deleted, older than 30 days, 0:00:00 (before ")
    assert count_lines(output) == EXPECTED_COUNTS
    assert output.rstrip().endswith(f"{sum(EXPECTED_COUNTS.values())} rows deleted.")
    assert_pruned(scene)


def test_command_dry_run_deletes_nothing(scene):
    output = run_command("--older-than", "30d", "--dry-run")
    assert output.startswith("Dry run: nothing deleted.")
    assert count_lines(output) == EXPECTED_COUNTS
    assert "rows would be deleted." in output
    assert ids(FunctionRun) == scene.runs_before
    assert ids(Event) == scene.events_before


def test_command_reads_the_period_from_the_setting(scene, settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "PRUNE_OLDER_THAN": "30d"}
    assert count_lines(run_command()) == EXPECTED_COUNTS


def test_command_flag_overrides_the_setting(scene, settings):
    settings.INNGEST_DJANGO = {**settings.INNGEST_DJANGO, "PRUNE_OLDER_THAN": "1d"}
    assert count_lines(run_command("--older-than", "36d"))["FunctionRun"] == 4


def test_command_needs_a_period_without_the_setting(db):
    with pytest.raises(CommandError, match=r"--older-than is required unless .*PRUNE_OLDER_THAN"):
        run_command()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30x", r"argument --older-than: duration '30x' is not a duration; use units"),
        ("soon", r"argument --older-than: duration 'soon' is not a duration"),
        ("0s", r"argument --older-than: duration must be longer than 0, got '0s'"),
        ("", r"argument --older-than: duration is an empty string"),
    ],
)
def test_command_rejects_a_bad_period(db, value, message):
    with pytest.raises(CommandError, match=message):
        run_command("--older-than", value)
    assert not CronSchedule.objects.exists()


@pytest.mark.parametrize("size", ["0", "-5", "many"])
def test_command_rejects_a_bad_batch_size(db, size):
    with pytest.raises(CommandError, match=r"argument --batch-size: must be"):
        run_command("--older-than", "30d", "--batch-size", size)


# -- the worker's prune --------------------------------------------------------------------------


def prune_enabled(settings, older_than: str = "30d", interval: float = 3600) -> None:
    settings.INNGEST_DJANGO = {
        **settings.INNGEST_DJANGO,
        "PRUNE_OLDER_THAN": older_than,
        "PRUNE_INTERVAL_SECONDS": interval,
        "PRUNE_BATCH_SIZE": 2,
    }


def drive(pruner: Pruner, now: datetime) -> int:
    """Call maybe_prune until it reports no more work; return how many rounds did some."""
    rounds = 0
    while pruner.maybe_prune(now):
        rounds += 1
    return rounds


def test_pruner_does_nothing_without_the_setting(scene):
    assert Pruner().maybe_prune(timezone.now()) == 0
    assert ids(FunctionRun) == scene.runs_before
    assert not CronSchedule.objects.filter(key=SCHEDULE_KEY).exists()


def test_pruner_deletes_one_batch_a_round_and_one_pruner_per_interval(scene, settings):
    prune_enabled(settings)
    now = timezone.now()
    first, second = Pruner(), Pruner()
    assert first.maybe_prune(now) > 0
    # The first pruner holds this interval: the second does nothing until it ends.
    assert second.maybe_prune(now) == 0
    assert drive(first, now) >= 5  # 6 runs, 9 events, ... two at a time
    assert_pruned(scene)
    assert second.maybe_prune(now + timedelta(seconds=3599)) == 0
    old = make_run(make_event(days=40), RunStatus.COMPLETED, days=40)
    assert first.maybe_prune(now + timedelta(seconds=10)) == 0
    # Next interval: whichever pruner looks first takes it, the other waits again.
    later = now + timedelta(seconds=3601)
    assert second.maybe_prune(later) > 0
    assert first.maybe_prune(later) == 0
    drive(second, later)
    assert not FunctionRun.objects.filter(pk=old.pk).exists()
    schedule = CronSchedule.objects.get(key=SCHEDULE_KEY)
    assert schedule.next_tick_at == later + timedelta(seconds=3600)


def test_a_long_prune_keeps_the_schedule_ahead_so_no_second_worker_starts_one(scene, settings):
    prune_enabled(settings, interval=3600)
    now = timezone.now()
    first, second = Pruner(), Pruner()
    assert first.maybe_prune(now) > 0
    # Past half the interval and still pruning: the first pruner moves the tick on.
    assert first.maybe_prune(now + timedelta(seconds=2000)) > 0
    tick = CronSchedule.objects.get(key=SCHEDULE_KEY).next_tick_at
    assert tick == now + timedelta(seconds=2000 + 3600)
    assert second.maybe_prune(now + timedelta(seconds=3601)) == 0
    drive(first, now + timedelta(seconds=3602))
    assert_pruned(scene)


def test_a_pruner_whose_schedule_was_taken_over_stops(scene, settings, caplog):
    prune_enabled(settings, interval=3600)
    now = timezone.now()
    first = Pruner()
    assert first.maybe_prune(now) > 0
    # As if the first worker had stalled past its tick and another had taken the schedule.
    taken = now + timedelta(seconds=1000 + 3600)
    CronSchedule.objects.filter(key=SCHEDULE_KEY).update(next_tick_at=taken)
    with caplog.at_level("WARNING", logger="inngest_django.retention"):
        assert first.maybe_prune(now + timedelta(seconds=2000)) == 0
    assert "another worker took the schedule over" in caplog.text
    assert first.maybe_prune(now + timedelta(seconds=2001)) == 0
    assert FunctionRun.objects.count() == len(scene.runs_before) - 2


def test_a_shorter_interval_setting_makes_the_prune_due_at_once(db, settings):
    prune_enabled(settings, interval=3600)
    now = timezone.now()
    Pruner().maybe_prune(now)
    prune_enabled(settings, interval=60)
    old = make_run(make_event(days=40), RunStatus.COMPLETED, days=40)
    drive(Pruner(), now + timedelta(seconds=1))
    assert not FunctionRun.objects.filter(pk=old.pk).exists()


def test_a_pruner_whose_clock_was_read_earlier_does_not_start_a_second_prune(db, settings):
    # The second worker read `now` a moment before the first (a lock wait, clock skew) but
    # looks at the schedule after the first took it: the tick is a hair over one interval off.
    prune_enabled(settings, interval=3600)
    now = timezone.now()
    make_run(make_event(days=40), RunStatus.COMPLETED, days=40)
    assert Pruner().maybe_prune(now) > 0
    assert Pruner().maybe_prune(now - timedelta(milliseconds=10)) == 0
    assert Pruner().maybe_prune(now - timedelta(seconds=60)) == 0


@pytest.mark.django_db(transaction=True)
def test_racing_pruners_take_each_interval_once(settings):
    prune_enabled(settings, interval=3600)
    now = timezone.now()
    barrier = threading.Barrier(4)
    won: list[bool] = []

    def take() -> None:
        try:
            barrier.wait()
            won.append(Pruner().maybe_prune(now) > 0)
        finally:
            connections.close_all()

    make_run(make_event(days=40), RunStatus.COMPLETED, days=40)
    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False, False, False, True]


def test_a_failing_prune_is_logged_and_does_not_raise(scene, settings, caplog, monkeypatch):
    prune_enabled(settings)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("inngest_django.retention._delete_runs", broken)
    pruner = Pruner()
    with caplog.at_level("ERROR", logger="inngest_django.retention"):
        assert pruner.maybe_prune(timezone.now()) == 0
    assert "Prune failed; the next interval tries again" in caplog.text
    assert "disk on fire" in caplog.text
    assert ids(FunctionRun) == scene.runs_before


# -- with real worker processes ------------------------------------------------------------------

PRUNE_ENV = {"INNGEST_DJANGO_TEST_PRUNE_OLDER_THAN": "30d"}


def make_old_history(count: int, *, steps: int = 3) -> list[str]:
    """Store `count` runs of RECORD_STEPS that completed 40 days ago; return their ids."""
    at = ago(40)
    events = Event.objects.bulk_create(
        Event(id=new_id(), name="testapp/steps", ts=0, dispatched_at=at) for _ in range(count)
    )
    runs = FunctionRun.objects.bulk_create(
        FunctionRun(
            id=new_id(),
            function_id=RECORD_STEPS,
            event=event,
            status=RunStatus.COMPLETED,
            available_at=at,
            finished_at=at,
        )
        for event in events
    )
    StepRun.objects.bulk_create(
        StepRun(run=run, step_key=f"s{index}", op=StepOp.RUN, status=StepStatus.COMPLETED)
        for run in runs
        for index in range(steps)
    )
    Event.objects.filter(pk__in=[event.pk for event in events]).update(received_at=at)
    run_ids = [run.pk for run in runs]
    FunctionRun.objects.filter(pk__in=run_ids).update(created_at=at)
    return run_ids


def prune_in_subprocess(workers, *args: str) -> str:
    """Run `manage.py inngest_prune` in its own process against the test database."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "inngest_prune", *args],
        cwd=ROOT,
        env=workers.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{workers.logs()}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_prune_under_load_loses_nothing_the_workers_need(workers):
    old_runs = make_old_history(150)
    old_events = set(FunctionRun.objects.filter(pk__in=old_runs).values_list("event_id", flat=True))
    # Old rows the workers still need: a waiting run, and a finished parent whose defer waits
    # in the outbox for the relay.
    waiting = make_run(make_event(days=40), RunStatus.WAITING, days=40, steps=1)
    FunctionRun.objects.filter(pk=waiting.pk).update(available_at=ago(-1))
    Wait.objects.create(
        run=waiting, kind=WaitKind.EVENT, step_key="answer", event_name="test/answer"
    )
    parent = make_run(make_event(days=40), RunStatus.COMPLETED, days=40)
    intent = DeferIntent.objects.create(
        run=parent,
        defer_id="late",
        function_id="testapp-cleanup",
        payload={"n": 7},
        status=DeferStatus.SCHEDULED,
    )
    OutboxMessage.objects.create(intent=intent, created_at=ago(40))
    # Expired dedupe keys of the new events' ids: prune deletes them as dispatch takes them.
    IdempotencyKey.objects.bulk_create(
        IdempotencyKey(function_id=RECORD_STEPS, key=f"event:new-{n}", expires_at=ago(40))
        for n in range(40)
    )
    inngest.send(
        [
            {"name": "testapp/steps", "id": f"new-{n}", "data": {"steps": 3, "pause_s": 0.02}}
            for n in range(40)
        ]
        + [{"name": "testapp/defer", "data": {"pause_s": 0.02}} for _ in range(10)]
    )
    workers.start("--threads", "2")
    workers.start("--threads", "2")

    def busy() -> bool:
        unfinished = FunctionRun.objects.exclude(status__in=FINISHED_STATUSES)
        return (
            Event.objects.undispatched().exists()
            or OutboxMessage.objects.filter(relayed_at__isnull=True).exists()
            or unfinished.exclude(pk=waiting.pk).exists()
        )

    prunes_under_load = 0
    for _ in range(60):
        if not busy():
            break
        prunes_under_load += 1
        prune_in_subprocess(workers, "--older-than", "30d", "--batch-size", "5")
    else:
        pytest.fail(f"the workers did not finish\n{workers.logs()}")
    prune_in_subprocess(workers, "--older-than", "30d", "--batch-size", "5")
    assert prunes_under_load >= 1

    # Every new run completed with its steps and their writes; no event started two runs.
    new_runs = FunctionRun.objects.filter(function_id=RECORD_STEPS).exclude(pk__in=old_runs)
    assert sorted(new_runs.values_list("status", flat=True)) == [RunStatus.COMPLETED] * 40
    for run in new_runs:
        assert sorted(run.steps.values_list("step_key", flat=True)) == ["s0", "s1", "s2"]
        assert Order.objects.filter(reference=run.pk).count() == 3
    assert set(IdempotencyKey.objects.values_list("key", flat=True)) == {
        f"event:new-{n}" for n in range(40)
    }
    assert not IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).exists()
    parents = FunctionRun.objects.filter(function_id="testapp-defer-cleanup")
    assert sorted(parents.values_list("status", flat=True)) == [RunStatus.COMPLETED] * 10
    for run in parents:
        assert run.steps.count() == 3
    cleanups = FunctionRun.objects.filter(function_id="testapp-cleanup")
    assert sorted(cleanups.values_list("status", flat=True)) == [RunStatus.COMPLETED] * 11
    # The old parent's defer was relayed and ran before (or while) the parent was pruned.
    assert Order.objects.filter(reference=parent.pk, step_key="cleanup-7").exists()

    # The old history is gone; the old waiting run keeps its rows.
    assert not FunctionRun.objects.filter(pk__in=old_runs).exists()
    assert not StepRun.objects.filter(run__in=old_runs).exists()
    assert not Event.objects.filter(pk__in=old_events).exists()
    assert not FunctionRun.objects.filter(pk=parent.pk).exists()
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.WAITING
    assert waiting.steps.count() == 1
    assert Wait.objects.filter(run=waiting, resolved_at__isnull=True).exists()
    assert Event.objects.filter(pk=waiting.event_id).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_the_setting_prunes_every_interval(workers):
    first = make_old_history(5)
    workers.start(**PRUNE_ENV, INNGEST_DJANGO_TEST_PRUNE_INTERVAL_SECONDS="0.5")
    workers.wait_for(lambda: not Event.objects.exists(), what="the first prune")
    assert not FunctionRun.objects.filter(pk__in=first).exists()
    make_old_history(5)
    # Events go after the runs that used them, in later batches.
    workers.wait_for(lambda: not Event.objects.exists(), what="a later prune")
    assert not FunctionRun.objects.exists()
    assert not StepRun.objects.exists()
    # Still serving runs between prunes.
    inngest.send({"name": "testapp/steps", "data": {"steps": 2}})
    workers.wait_for(
        lambda: FunctionRun.objects.filter(status=RunStatus.COMPLETED).exists(), what="a run"
    )
    log = workers.log(0)
    assert log.count("Prune finished") >= 2
    assert "FunctionRun=5 StepRun=15" in log


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_prune_once_per_interval(workers):
    old = make_old_history(6)
    for _ in range(2):
        workers.start("--verbosity", "2", **PRUNE_ENV)

    def looked(index: int) -> bool:
        log = workers.log(index)
        return "Prune finished" in log or "Prune not due here" in log

    workers.wait_for(lambda: looked(0) and looked(1), what="both workers to look at the prune")
    assert not FunctionRun.objects.filter(pk__in=old).exists()
    logs = [workers.log(0), workers.log(1)]
    assert sum(log.count("Prune started") for log in logs) == 1
    schedule = CronSchedule.objects.get(key=SCHEDULE_KEY)
    assert schedule.next_tick_at - schedule.last_tick_at == timedelta(hours=1)
    # Rows that grow old within the interval wait for the next one, whoever runs the work.
    later = make_old_history(3)
    inngest.send([{"name": "testapp/steps", "data": {"steps": 1}} for _ in range(6)])
    workers.wait_for(
        lambda: (
            FunctionRun.objects.filter(status=RunStatus.COMPLETED).exclude(pk__in=later).count()
            == 6
        ),
        what="the new runs",
    )
    assert FunctionRun.objects.filter(pk__in=later).count() == 3
    assert sum(workers.log(i).count("Prune started") for i in range(2)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_key_pruned_while_dispatch_takes_it_over_is_taken_anyway():
    # The prune's own steps: lock the expired key, then delete it, while dispatch has just
    # failed to insert it and waits to take over the expired row.
    now = timezone.now()
    key = IdempotencyKey.objects.create(function_id="test-fn", key="event:x", expires_at=ago(40))
    locked, acquired = threading.Event(), []

    def dispatch() -> None:
        try:
            locked.wait(10)
            acquired.append(
                IdempotencyKey.acquire(
                    "test-fn", "event:x", now=now, expires_at=now + timedelta(days=1)
                )
            )
        finally:
            connections.close_all()

    thread = threading.Thread(target=dispatch)
    thread.start()
    with transaction.atomic():
        IdempotencyKey.objects.select_for_update().get(pk=key.pk)
        locked.set()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with connection.cursor() as cursor:
            for _ in range(1000):
                # Activity is read once per transaction unless the snapshot is cleared.
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(waiting)
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.01)
            else:
                pytest.fail("dispatch never waited for the locked key")
        IdempotencyKey.objects.filter(pk=key.pk).delete()
    thread.join(10)
    assert acquired == [True]
    assert IdempotencyKey.objects.get(key="event:x").expires_at == now + timedelta(days=1)
