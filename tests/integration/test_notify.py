"""LISTEN/NOTIFY wake-ups: the triggers, one notification per statement, prompt workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.ids import new_id
from inngest_django.models import Event, FunctionRun
from inngest_django.notify import CHANNEL, Backoff, Listener, connection_params

RECORD_STEPS = "testapp-record-steps"
TRIGGERS = {
    "inngest_django_event_notify",
    "inngest_django_outbox_notify",
    "inngest_django_run_insert_notify",
    "inngest_django_run_update_notify",
}
# Long enough that a wake-up by polling could not pass for one by notification.
POLL_SECONDS = 5.0
SLOW_POLL = {"INNGEST_DJANGO_TEST_POLL_SECONDS": str(POLL_SECONDS)}


class Notifications:
    """A LISTEN on a connection of the test's own, counting what arrives."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(**connection_params(), autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")

    def received(self, wait: float = 0.5) -> list[str]:
        """Return the payloads delivered within `wait` seconds."""
        return [notify.payload for notify in self.conn.notifies(timeout=wait)]


@pytest.fixture
def notifications() -> Iterator[Notifications]:
    listening = Notifications()
    try:
        yield listening
    finally:
        listening.conn.close()


def step_start(workers, run_id: str) -> float | None:
    """Return when the run's first step started (the journal's wall clock), or None."""
    starts = [e["t"] for e in workers.journal() if e["run"] == run_id and e["phase"] == "start"]
    return min(starts, default=None)


def start_idle_worker(workers) -> None:
    workers.start(**SLOW_POLL)
    workers.wait_for_log(0, "Worker started")
    if connection.vendor == "postgresql":
        workers.wait_for_log(0, "Listening for wake-ups")


def sleeping_run(available_at_s: float, status: str = RunStatus.SLEEPING) -> FunctionRun:
    """Store a run of record-steps that sleeps (or waits) `available_at_s` seconds from now."""
    event = Event.objects.create(
        id=new_id(),
        name="testapp/steps",
        data={"steps": 1},
        ts=0,
        dispatched_at=timezone.now(),
    )
    return FunctionRun.objects.create(
        id=new_id(),
        function_id=RECORD_STEPS,
        event=event,
        status=status,
        available_at=timezone.now() + timedelta(seconds=available_at_s),
    )


# -- the triggers ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_notify_triggers_exist_only_on_postgresql():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'inngest_django_%%'")
            assert {row[0] for row in cursor.fetchall()} == TRIGGERS
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            assert cursor.fetchall() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_5000_event_send_sends_one_notification(notifications):
    with transaction.atomic():
        inngest.send([{"name": "test/many", "data": {"n": n}} for n in range(5000)])
    assert Event.objects.undispatched().count() == 5000
    assert notifications.received(wait=1.0) == [Event._meta.db_table]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_send_notifies_no_one_and_a_committed_one_does(notifications):
    with pytest.raises(RuntimeError), transaction.atomic():
        inngest.send({"name": "test/rolled-back"})
        raise RuntimeError("roll back")
    assert notifications.received() == []
    inngest.send({"name": "test/committed"})
    assert notifications.received() == [Event._meta.db_table]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claims_step_commits_and_heartbeats_notify_no_one_but_wakes_and_cancels_do(
    notifications,
):
    run = sleeping_run(3600, RunStatus.WAITING)
    table = FunctionRun._meta.db_table
    # A run waiting up to an hour gives no worker anything to do now.
    assert notifications.received() == []

    FunctionRun.wake(run.pk, now=timezone.now())
    assert notifications.received() == [table]

    now = timezone.now()
    lease_until = now + timedelta(seconds=30)
    claimed = FunctionRun.objects.claim(
        worker_id="w", lease_token="t", limit=1, now=now, lease_until=lease_until
    )
    assert claimed == [run.pk]
    assert FunctionRun.touch(run.pk, "t", lease_until + timedelta(seconds=1))
    assert FunctionRun.objects.extend_leases(["t"], lease_until + timedelta(seconds=2)) == 1
    assert notifications.received() == []

    assert FunctionRun.mark_sleeping(run.pk, "t", until=timezone.now() + timedelta(hours=1))
    assert notifications.received() == []
    assert FunctionRun.request_cancel(run.pk, now=timezone.now(), reason="test")
    assert notifications.received() == [table]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_listener_tells_which_tables_it_heard_about_once():
    wake = threading.Event()
    listener = Listener(wake)
    listener.start()
    try:
        deadline = time.monotonic() + 10
        while not listener.listening:
            assert time.monotonic() < deadline, "the listener never listened"
            time.sleep(0.01)
        wake.wait(1)  # the wake-up a new LISTEN gives, for what nobody heard before it
        wake.clear()
        inngest.send({"name": "test/heard"})
        assert wake.wait(5)
        assert listener.take_heard() == {Event._meta.db_table}
        assert listener.take_heard() == set()
    finally:
        listener.stop()


# -- workers -----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_starts_a_sent_event_far_sooner_than_its_poll_interval(workers):
    start_idle_worker(workers)
    latencies = []
    for sample in range(5):
        # Long enough for the worker to be in its longest wait again.
        time.sleep(0.5)
        sent_at = time.time()
        inngest.send({"name": "testapp/steps", "data": {"steps": 1, "sample": sample}})
        run = workers.wait_for(
            lambda sample=sample: FunctionRun.objects.filter(
                function_id=RECORD_STEPS, event__data__sample=sample
            ).first(),
            what=f"sample {sample}'s run",
        )
        started = workers.wait_for(lambda run=run: step_start(workers, run.pk), what="its step")
        latencies.append(started - sent_at)
        workers.wait_for(
            lambda run=run: FunctionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED,
            what=f"sample {sample}'s run to complete",
        )
    assert max(latencies) < POLL_SECONDS / 10, (latencies, workers.logs())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_resumes_a_sleep_at_its_end_not_at_its_next_poll(workers):
    # Stored before the worker starts, so the worker knows of it on SQLite too, where nothing
    # tells it of work stored later; it ends after the worker's first waits have grown long.
    run = sleeping_run(4.0)
    due = run.available_at.timestamp()
    start_idle_worker(workers)
    assert time.time() < due, "the worker should be idle before the sleep ends"
    started = workers.wait_for(
        lambda: step_start(workers, run.pk), what="the run to resume", timeout=2 * POLL_SECONDS
    )
    assert due <= started < due + POLL_SECONDS / 10, workers.logs()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_send_wakes_no_worker_and_starts_no_run(workers, notifications):
    start_idle_worker(workers)
    with pytest.raises(RuntimeError), transaction.atomic():
        inngest.send({"name": "testapp/steps", "data": {"steps": 1}})
        raise RuntimeError("roll back")
    assert notifications.received(wait=1.0) == []
    assert not Event.objects.exists()
    assert not FunctionRun.objects.exists()
    # The same send committed reaches the same worker at once.
    sent_at = time.time()
    inngest.send({"name": "testapp/steps", "data": {"steps": 1}})
    run = workers.wait_for(FunctionRun.objects.first, what="the committed send's run")
    started = workers.wait_for(lambda: step_start(workers, run.pk), what="its step")
    assert started - sent_at < POLL_SECONDS / 10, workers.logs()


# -- reconnecting ------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_with_jitter_and_logs_an_outage_once(caplog):
    backoff = Backoff("Test", first_seconds=0.1, max_seconds=1.0)
    error = psycopg.OperationalError("connection refused")
    with caplog.at_level(logging.DEBUG, logger="inngest_django.notify"):
        delays = [backoff.failed(error) for _ in range(8)]
        backoff.recovered()
        backoff.recovered()
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    levels = [(r.levelname, r.action) for r in caplog.records if r.levelno >= logging.INFO]
    assert levels == [("WARNING", "database_unavailable"), ("INFO", "database_recovered")]
    assert not backoff.failing
    assert backoff.failed(error) <= 0.1
