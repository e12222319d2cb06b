"""A run's finish carries its function.finished event: one statement on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inngest_django import clock
from inngest_django.engine import FinishEvents, finalize
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.functions import FINISHED_EVENT
from inngest_django.models import Event
from inngest_django.registry import default_registry
from inngest_django.worker import Worker
from tests.helpers import leased_run, runs_of, send_steps, status_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_finishing_run_stores_its_finish_event_in_the_same_statement_on_postgresql():
    send_steps(steps=1)
    dispatch_pending()
    with CaptureQueriesContext(connection) as captured:
        Worker(threads=0, worker_id="finish").run_once()
    (run,) = runs_of("testapp-record-steps")
    assert run.status == RunStatus.COMPLETED
    carrying = [q["sql"] for q in captured.captured_queries if FINISHED_EVENT in q["sql"]]
    assert len(carrying) == 1
    if connection.vendor == "postgresql":
        assert carrying[0].startswith('WITH changed AS (UPDATE "inngest_django_functionrun"')
    else:
        assert carrying[0].startswith('INSERT INTO "inngest_django_event"')
    event = Event.objects.get(name=FINISHED_EVENT)
    assert event.data["run_id"] == run.pk
    assert event.data["result"] == {"steps": 1}
    assert event.data["event"]["name"] == "testapp/steps"
    # Nobody listens for it: stored dispatched, so no worker dispatches it.
    assert event.dispatched_at is not None


def test_a_run_whose_lease_was_lost_stores_no_finish_event():
    run = leased_run("lost-lease", token="theirs", until=clock.now() + timedelta(seconds=30))
    announce = FinishEvents([], default_registry)
    assert not finalize(run, "mine", RunStatus.COMPLETED, output=1, announce=announce)
    assert status_of(run.pk) == RunStatus.RUNNING
    assert not Event.objects.filter(name=FINISHED_EVENT).exists()
    assert finalize(run, "theirs", RunStatus.COMPLETED, output=1, announce=announce)
    assert Event.objects.get(name=FINISHED_EVENT).data["result"] == 1
