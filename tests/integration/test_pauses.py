"""Paused functions: triggers start no runs, claims pass their runs over, resuming continues."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.events import dispatch_pending
from inngest_django.idle import next_due_at
from inngest_django.models import Event, FunctionPause, FunctionRun, is_paused, paused_function_ids
from inngest_django.scheduler import CronScheduler
from inngest_django.testing import drain
from inngest_django.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

WRITE_ORDERS = "testapp-write-orders"


def send_orders() -> str:
    """Send one event that testapp's write-orders function triggers on; return its row id."""
    return inngest.send({"name": "testapp/orders", "data": {"steps": 1}})[0]


def test_pause_and_resume_report_whether_they_changed_anything():
    assert inngest.pause_function(WRITE_ORDERS, paused_by="alice") is True
    assert inngest.pause_function(WRITE_ORDERS) is False
    assert is_paused(WRITE_ORDERS) and is_paused(["x", WRITE_ORDERS]) and not is_paused([])
    assert paused_function_ids() == {WRITE_ORDERS}
    assert FunctionPause.objects.get().paused_by == "alice"
    assert inngest.resume_function(WRITE_ORDERS) is True
    assert inngest.resume_function(WRITE_ORDERS) is False
    assert not is_paused(WRITE_ORDERS)
    with pytest.raises(inngest.FunctionNotFoundError):
        inngest.pause_function("no-such-function")


def test_a_paused_functions_queued_run_waits_and_events_start_nothing_until_resumed():
    queued_event = send_orders()
    dispatch_pending()
    run = FunctionRun.objects.get(event_id=queued_event)
    inngest.pause_function(WRITE_ORDERS)
    paused_event = send_orders()

    worker = Worker(threads=0, worker_id="w")
    assert worker.run_once() >= 1  # the event is dispatched ...
    assert Event.objects.get(pk=paused_event).dispatched_at is not None
    assert not FunctionRun.objects.filter(event_id=paused_event).exists()  # ... to nothing
    run.refresh_from_db()
    assert (run.status, run.locked_by) == (RunStatus.QUEUED, "")
    # Not "due now": an idle worker sleeps instead of spinning on a run it may not claim.
    assert next_due_at(run.available_at) is None
    drain(timeout=0.5)
    assert FunctionRun.objects.get(pk=run.pk).status == RunStatus.QUEUED

    assert inngest.resume_function(WRITE_ORDERS)
    drain()
    assert FunctionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED
    # Inngest does not replay the events a paused function missed.
    assert not FunctionRun.objects.filter(event_id=paused_event).exists()


def test_the_concurrency_aware_claim_passes_paused_runs_over_too(inngest_client):
    @inngest_client.create_function(
        fn_id="limited-pause",
        trigger=inngest.TriggerEvent(event="test/limited"),
        concurrency=[inngest.Concurrency(limit=1)],
    )
    def limited(ctx):
        return "done"

    inngest.send({"name": "test/limited"})
    dispatch_pending()
    inngest.pause_function("test-limited-pause")
    drain(timeout=0.5)
    run = FunctionRun.objects.get(function_id="test-limited-pause")
    assert run.status == RunStatus.QUEUED
    inngest.resume_function("test-limited-pause")
    drain()
    assert FunctionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED


def test_cron_ticks_of_a_paused_function_pass_by_and_resume_at_the_next_tick(
    inngest_client, advance_clock
):
    @inngest_client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="* * * * *"))
    def nightly(ctx):
        return "ran"

    scheduler = CronScheduler(inngest_client.registry)
    assert scheduler.fire_due() == 0  # first sight: waits for the next tick
    inngest.pause_function("test-nightly")
    advance_clock(61)
    assert scheduler.fire_due() == 0
    assert not FunctionRun.objects.filter(function_id="test-nightly").exists()
    inngest.resume_function("test-nightly")
    advance_clock(61)
    assert scheduler.fire_due() == 1


def test_the_command_pauses_resumes_lists_and_invokes():
    out = StringIO()
    call_command("inngest_function", "pause", WRITE_ORDERS, stdout=out)
    assert is_paused(WRITE_ORDERS)
    call_command("inngest_function", "paused", stdout=out)
    assert WRITE_ORDERS in out.getvalue()
    assert FunctionPause.objects.get().paused_by.startswith("command")
    call_command("inngest_function", "resume", WRITE_ORDERS, stdout=out)
    assert not is_paused(WRITE_ORDERS)
    assert "Paused" in out.getvalue() and "Resumed" in out.getvalue()
    with pytest.raises(CommandError, match="No registered function"):
        call_command("inngest_function", "pause", "nope")
    out = StringIO()
    call_command("inngest_function", "invoke", WRITE_ORDERS, "--data", '{"steps": 2}', stdout=out)
    run = FunctionRun.objects.get(pk=out.getvalue().strip())
    assert (run.function_id, run.event.data) == (WRITE_ORDERS, {"steps": 2})
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("inngest_function", "invoke", WRITE_ORDERS, "--data", "{")


@pytest.mark.slow
def test_a_real_worker_claims_no_run_of_a_paused_function_until_it_is_resumed(workers):
    send_orders()
    dispatch_pending()
    run = FunctionRun.objects.get(function_id=WRITE_ORDERS)
    inngest.pause_function(WRITE_ORDERS)
    workers.start()
    workers.wait_for_log(0, "Worker started", timeout=60)
    during = send_orders()
    workers.wait_for(
        lambda: Event.objects.get(pk=during).dispatched_at, what="the event dispatched", timeout=60
    )
    time.sleep(1.5)  # several worker rounds
    run.refresh_from_db()
    assert (run.status, run.locked_by) == (RunStatus.QUEUED, ""), workers.logs()
    assert FunctionRun.objects.filter(function_id=WRITE_ORDERS).count() == 1

    inngest.resume_function(WRITE_ORDERS)
    workers.wait_for(
        lambda: FunctionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED,
        what="the run to complete after resume",
        timeout=60,
    )


def test_a_paused_functions_run_asked_to_stop_is_cancelled_without_running():
    send_orders()
    dispatch_pending()
    run = FunctionRun.objects.get(function_id=WRITE_ORDERS)
    inngest.pause_function(WRITE_ORDERS)
    assert inngest.cancel_run(run.pk)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert not run.steps.exists()
