"""An idle worker on SQLite looks again as soon as another connection commits, not at its poll."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.idle import wait_for_commits
from inngest_django.models import Event, FunctionRun

RECORD_STEPS = "testapp-record-steps"
POLL_SECONDS = 5.0


@pytest.fixture
def on_sqlite() -> None:
    if connection.vendor != "sqlite":
        pytest.skip(
            "PostgreSQL wakes idle workers with LISTEN/NOTIFY (tests/integration/test_notify.py)"
        )


@pytest.mark.django_db(transaction=True)
def test_a_commit_from_another_connection_ends_the_wait(on_sqlite):
    def commit_soon() -> None:
        time.sleep(0.2)
        try:
            Event.objects.create(name="test/idle", data={}, ts=1)
        finally:
            connection.close()

    committer = threading.Thread(target=commit_soon)
    started = time.monotonic()
    committer.start()
    wait_for_commits(threading.Event(), POLL_SECONDS)
    waited = time.monotonic() - started
    committer.join()
    assert 0.2 <= waited < POLL_SECONDS / 2
    assert Event.objects.filter(name="test/idle").exists()


@pytest.mark.django_db(transaction=True)
def test_with_no_commit_the_wait_lasts_its_time_or_until_woken(on_sqlite):
    started = time.monotonic()
    wait_for_commits(threading.Event(), 0.3)
    assert time.monotonic() - started >= 0.3
    wake = threading.Event()
    threading.Timer(0.1, wake.set).start()
    started = time.monotonic()
    wait_for_commits(wake, POLL_SECONDS)
    assert time.monotonic() - started < POLL_SECONDS / 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_on_sqlite_starts_a_sent_event_far_sooner_than_its_poll(on_sqlite, workers):
    workers.start(INNGEST_DJANGO_TEST_POLL_SECONDS=str(POLL_SECONDS))
    workers.wait_for_log(0, "Worker started")
    # Idle, the worker waits 0.01 s, then twice as long each round up to POLL_SECONDS: the
    # waits add up to 5.11 s before the first 5 s one, which this send lands in.
    time.sleep(5.5)
    sent_at = time.monotonic()
    inngest.send({"name": "testapp/steps", "data": {"steps": 1}})
    workers.wait_for(
        lambda: FunctionRun.objects.filter(
            function_id=RECORD_STEPS, status=RunStatus.COMPLETED
        ).exists(),
        what="the run to complete",
    )
    # Polling alone would start it when that wait ends, about 4.6 s after the send.
    assert time.monotonic() - sent_at < 1.5, workers.logs()
