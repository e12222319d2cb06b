"""Bad input ends its own run (or is skipped with a logged reason); the worker serves on."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest
from django.db import connection

import inngest_django as inngest
from inngest_django import clock
from inngest_django.conf import app_settings
from inngest_django.enums import FINISHED_STATUSES, DeferStatus, RunStatus, StepStatus
from inngest_django.events import dispatch_pending
from inngest_django.exceptions import InvalidEventError
from inngest_django.models import (
    DeferIntent,
    Event,
    FunctionRun,
    OutboxMessage,
    StepRun,
    Wait,
)
from inngest_django.testing import drain
from tests.testapp.bad_input_functions import DEPLOY_ENV

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BAD_INPUT = "bad-input"


def send(name: str, **data: Any) -> str:
    """Send one event and return its row id."""
    return inngest.send({"name": name, "data": data})[0]


def finished_run(workers, event_id: str, *, function_id: str | None = None) -> FunctionRun:
    """Wait for the run that `event_id` started to reach a final status, and return it."""
    runs = FunctionRun.objects.filter(event_id=event_id, status__in=FINISHED_STATUSES)
    if function_id is not None:
        runs = runs.filter(function_id=function_id)
    return workers.wait_for(runs.first, what=f"the run of event {event_id} to finish")


def assert_serves(workers, worker: subprocess.Popen) -> None:
    """Send a good event and check that this same worker process completes its run."""
    run = finished_run(workers, send("bad/probe", n=1))
    assert worker.poll() is None, workers.logs()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == {"pid": worker.pid, "n": 1}


def fails(workers, worker: subprocess.Popen, case: str) -> dict[str, Any]:
    """Run the bad-input case `case`, check it failed and the worker serves on; return the error."""
    run = finished_run(workers, send("bad/input", case=case))
    assert run.status == RunStatus.FAILED, (case, run.output)
    assert_serves(workers, worker)
    return run.error


@pytest.mark.parametrize("where", ["step", "run"])
def test_output_that_is_not_json_fails_its_run_without_retries(workers, where):
    worker = workers.start()
    for what in ("object", "set", "nan", "bytes"):
        error = fails(workers, worker, f"{where}-{what}")
        assert error["name"] == "NonRetriableError", error
        assert "is not JSON-serializable" in error["message"], error
    assert not StepRun.objects.filter(status=StepStatus.COMPLETED, step_key="s").exists()


def test_step_and_run_outputs_over_the_limit_fail_their_run(workers):
    worker = workers.start()
    limit = app_settings.MAX_STEP_OUTPUT_BYTES
    for where in ("step", "run"):
        error = fails(workers, worker, f"{where}-huge")
        assert error["name"] == "LimitExceededError", error
        assert f"over the limit of {limit} bytes (MAX_STEP_OUTPUT_BYTES)" in error["message"]
    # Neither output was stored anywhere, finish events included.
    runs = FunctionRun.objects.filter(function_id=BAD_INPUT)
    assert list(runs.values_list("output", flat=True)) == [None, None]
    assert not StepRun.objects.filter(run__function_id=BAD_INPUT, output__isnull=False).exists()


def test_an_event_over_max_event_bytes_is_refused_to_callers_and_fails_a_sending_step(workers):
    worker = workers.start()
    blob = "x" * (app_settings.MAX_EVENT_BYTES + 1)
    with pytest.raises(InvalidEventError, match=r"over the limit of \d+ bytes \(MAX_EVENT_BYTES\)"):
        send("bad/huge", blob=blob)
    error = fails(workers, worker, "event-huge")
    assert error["name"] == "NonRetriableError"
    assert "(MAX_EVENT_BYTES)" in error["message"]
    assert not Event.objects.filter(name="bad/huge").exists()


def test_a_huge_defer_payload_is_skipped_and_the_parent_completes(workers):
    worker = workers.start()
    run = finished_run(workers, send("bad/input", case="defer-huge"), function_id=BAD_INPUT)
    assert (run.status, run.output) == (RunStatus.COMPLETED, "parent completed")
    big = DeferIntent.objects.get(run=run, defer_id="big")
    assert big.status == DeferStatus.REJECTED
    assert "(MAX_DEFER_PAYLOAD_BYTES)" in big.reason
    assert big.payload is None
    # Data that is a huge string fails the schema; the reason and the log do not echo it.
    text = DeferIntent.objects.get(run=run, defer_id="text")
    assert text.status == DeferStatus.REJECTED
    assert text.reason.startswith("schema validation failed:")
    assert len(text.reason) < 1000
    ticket = workers.wait_for(
        FunctionRun.objects.filter(function_id="bad-ticket", status=RunStatus.COMPLETED).first,
        what="the small defer's run",
    )
    assert ticket.output == {"n": 2}
    assert "Defer skipped: payload is" in workers.log(0)
    assert "x" * 1000 not in workers.log(0)
    assert_serves(workers, worker)


def test_recursion_in_a_handler_a_step_or_an_output_fails_its_run(workers):
    worker = workers.start()
    for case in ("run-recurse", "step-recurse"):
        error = fails(workers, worker, case)
        assert error["name"] == "RecursionError", error
        assert "maximum recursion depth exceeded" in error["message"]
    for case in ("step-deep", "run-deep"):
        error = fails(workers, worker, case)
        assert error["name"] == "NonRetriableError", error
        assert "is not JSON-serializable (maximum recursion depth exceeded" in error["message"]


@pytest.mark.parametrize("where", ["run", "step"])
def test_base_exceptions_from_user_code_fail_the_run_not_the_worker(workers, where):
    worker = workers.start()
    raised = {
        "system-exit": ("SystemExit", "handler called sys.exit"),
        "keyboard-interrupt": ("KeyboardInterrupt", "handler raised KeyboardInterrupt"),
        "generator-exit": ("GeneratorExit", "handler raised GeneratorExit"),
        "boom": ("Boom", "handler raised Boom"),
    }
    for case, (name, message) in raised.items():
        error = fails(workers, worker, f"{where}-{case}")
        assert (error["name"], error["message"]) == (name, message)
    # A real SIGINT (Ctrl-C) still stops the worker gracefully.
    worker.send_signal(signal.SIGINT)
    assert workers.wait_for_exit(worker) == 0, workers.logs()
    assert "Worker stopped" in workers.log(0)


def test_a_pydantic_model_that_the_event_does_not_match_fails_the_run(workers):
    worker = workers.start()
    run = finished_run(workers, send("bad/input", case="schema", ticket={"n": "many"}))
    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "ValidationError"
    assert "Ticket" in run.error["message"] and "n" in run.error["message"]
    assert_serves(workers, worker)


def test_runs_of_a_removed_function_fail_clearly_and_its_events_start_nothing(workers):
    # The first deploy (this process) leaves one run sleeping, one waiting and one queued.
    sleeping = send("bad/removable", mode="sleep")
    waiting = send("bad/removable", mode="wait")
    drain(timeout=0)
    queued = send("bad/removable", mode="none")
    dispatch_pending()
    statuses = dict(FunctionRun.objects.values_list("event_id", "status"))
    assert statuses == {
        sleeping: RunStatus.SLEEPING,
        waiting: RunStatus.WAITING,
        queued: RunStatus.QUEUED,
    }
    worker = workers.start(**{DEPLOY_ENV: "2"})
    send("bad/removable.reply")
    later = send("bad/removable", mode="none")
    for event_id in (queued, sleeping, waiting):
        run = finished_run(workers, event_id)
        assert run.status == RunStatus.FAILED
        assert run.error["name"] == "FunctionNotFoundError"
        assert "No registered function has the id 'bad-removable'" in run.error["message"]
    assert_serves(workers, worker)
    assert Event.objects.get(pk=later).dispatched_at is not None
    assert not FunctionRun.objects.filter(event_id=later).exists()
    assert not Wait.objects.pending().exists()
    assert "Run failed: function not registered" in workers.log(0)


def test_a_renamed_step_runs_anew_and_the_old_memo_is_not_used(workers):
    event_id = send("bad/renamed", nap="1s")
    drain(timeout=0)
    assert FunctionRun.objects.get(event_id=event_id).status == RunStatus.SLEEPING
    worker = workers.start(**{DEPLOY_ENV: "2"})
    run = finished_run(workers, event_id)
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"loaded": "loaded by b"})
    steps = dict(StepRun.objects.filter(run=run).values_list("step_key", "output"))
    assert steps == {"load-a": "loaded by a", "nap": None, "load-b": "loaded by b"}
    # The new step ended the replay: the handler's logger speaks again, though load-a never ran.
    assert "Renamed step ran: loaded by b" in workers.log(0)
    assert_serves(workers, worker)


def test_events_whose_data_is_not_an_object_are_skipped_with_a_logged_reason(workers):
    ids = {kind: send("bad/probe", n=2) for kind in ("list", "string", "null")}
    table = connection.ops.quote_name(Event._meta.db_table)
    raw = {"list": "[1, 2]", "string": '"text"', "null": "null"}
    with connection.cursor() as cursor:
        for kind, value in raw.items():
            cursor.execute(f"UPDATE {table} SET data = %s WHERE id = %s", [value, ids[kind]])
    worker = workers.start()
    assert_serves(workers, worker)
    for kind in ("list", "string"):
        assert Event.objects.get(pk=ids[kind]).dispatched_at is not None
        assert not FunctionRun.objects.filter(event_id=ids[kind]).exists()
        workers.wait_for_log(
            0, f"Event skipped: its data is not a JSON object event_id={ids[kind]}"
        )
    # JSON null reads as an empty object, as the Event schema has it.
    run = finished_run(workers, ids["null"])
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"pid": worker.pid, "n": None})


def test_a_run_whose_event_row_was_corrupted_fails_clearly(workers):
    probe = send("bad/probe", n=3)
    dispatch_pending()
    Event.objects.filter(pk=probe).update(data=["not", "an", "object"])
    worker = workers.start()
    run = finished_run(workers, probe)
    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "NonRetriableError"
    assert "data is a list, not a JSON object" in run.error["message"]
    assert_serves(workers, worker)


def test_a_memo_that_no_longer_validates_into_output_type_fails_the_run(workers):
    event_id = send("bad/input", case="memo-type")
    drain(timeout=0)
    StepRun.objects.filter(run__event_id=event_id, step_key="typed").update(output={"n": "many"})
    worker = workers.start()
    run = finished_run(workers, event_id)
    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "NonRetriableError"
    assert "step 'typed': its stored output does not validate as Ticket" in run.error["message"]
    assert_serves(workers, worker)


def test_runs_with_an_unknown_function_or_status_do_not_stop_the_worker(workers):
    unknown_function = send("bad/probe", n=4)
    unknown_status = send("bad/probe", n=5)
    dispatch_pending()
    FunctionRun.objects.filter(event_id=unknown_function).update(function_id="bad-no-such")
    FunctionRun.objects.filter(event_id=unknown_status).update(status="BOGUS")
    worker = workers.start()
    run = finished_run(workers, unknown_function)
    assert (run.status, run.error["name"]) == (RunStatus.FAILED, "FunctionNotFoundError")
    assert_serves(workers, worker)
    # An unknown status is never claimed: the row is left as it is for a person to look at.
    assert FunctionRun.objects.get(event_id=unknown_status).status == "BOGUS"


def _parent_run() -> FunctionRun:
    event_id = send("bad/probe", n=6)
    dispatch_pending()
    run = FunctionRun.objects.get(event_id=event_id)
    FunctionRun.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    return run


def _scheduled_intent(parent: FunctionRun, defer_id: str, payload: Any) -> DeferIntent:
    intent = DeferIntent.objects.create(
        run=parent,
        defer_id=defer_id,
        function_id="bad-ticket",
        payload={"n": 1},
        status=DeferStatus.SCHEDULED,
    )
    table = connection.ops.quote_name(DeferIntent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET payload = %s WHERE id = %s", [payload, intent.pk])
    OutboxMessage.objects.create(intent=intent, created_at=clock.now())
    return intent


def test_defer_intents_whose_payload_no_longer_validates_fail_or_are_skipped(workers):
    parent = _parent_run()
    invalid = _scheduled_intent(parent, "invalid", '{"n": "many"}')
    as_list = _scheduled_intent(parent, "list", "[1, 2]")
    as_text = _scheduled_intent(parent, "text", '"text"')
    experiment = _scheduled_intent(parent, "experiment", '{"n": 1}')
    DeferIntent.objects.filter(pk=experiment.pk).update(experiment={"variant": 7})
    worker = workers.start()
    run = workers.wait_for(
        FunctionRun.objects.filter(defer_intent=invalid, status__in=FINISHED_STATUSES).first,
        what="the invalid defer's run to finish",
    )
    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "NonRetriableError"
    assert "defer handler 'bad-ticket' schema validation failed" in run.error["message"]
    run = workers.wait_for(
        FunctionRun.objects.filter(defer_intent=experiment, status__in=FINISHED_STATUSES).first,
        what="the run of the defer with a corrupt experiment to finish",
    )
    assert (run.status, run.error["name"]) == (RunStatus.FAILED, "ValidationError")
    assert "ExperimentRef" in run.error["message"]
    for intent in (as_list, as_text):
        workers.wait_for_log(
            0, f"Defer skipped: its payload is not a JSON object intent_id={intent.pk}"
        )
        assert not FunctionRun.objects.filter(defer_intent=intent).exists()
    assert not OutboxMessage.objects.filter(relayed_at__isnull=True).exists()
    assert_serves(workers, worker)


def test_an_outbox_row_whose_intent_is_missing_is_skipped_with_a_logged_reason(workers):
    table = connection.ops.quote_name(OutboxMessage._meta.db_table)
    # Only a database without its foreign keys can hold such a row; switch them off to write one.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")
        try:
            cursor.execute(
                f"INSERT INTO {table} (intent_id, created_at) VALUES (%s, %s)",
                [987654, clock.now().isoformat()],
            )
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")
            else:
                cursor.execute("PRAGMA foreign_keys = ON")
    worker = workers.start()
    workers.wait_for_log(0, "Outbox row skipped: its defer intent is missing intent_id=987654")
    relayed = OutboxMessage.objects.filter(intent_id=987654, relayed_at__isnull=False)
    workers.wait_for(relayed.exists, what="the outbox row to be marked relayed")
    assert_serves(workers, worker)


def test_a_wait_with_a_broken_expression_is_skipped_with_a_logged_reason(workers):
    event_id = send("bad/wait")
    drain(timeout=0)
    run = FunctionRun.objects.get(event_id=event_id)
    assert run.status == RunStatus.WAITING
    Wait.objects.filter(run=run).update(expression="async.data.ok ==")
    worker = workers.start()
    send("bad/reply", ok=True)
    workers.wait_for_log(0, f"Wait skipped: its if expression is invalid run_id={run.pk}")
    assert_serves(workers, worker)
    assert FunctionRun.objects.get(pk=run.pk).status == RunStatus.WAITING
    assert Wait.objects.get(run=run).resolved_at is None


def test_under_drain_a_handler_system_exit_fails_the_run_and_drain_goes_on(inngest_client):
    @inngest_client.create_function(
        fn_id="exits", trigger=inngest.TriggerEvent(event="bad/exit"), retries=0
    )
    def exits(ctx: inngest.Context) -> None:
        raise SystemExit(3)

    event_id = send("bad/exit")
    probe = send("bad/probe", n=7)
    drain()
    run = FunctionRun.objects.get(event_id=event_id)
    assert (run.status, run.error["name"], run.error["message"]) == ("FAILED", "SystemExit", "3")
    assert FunctionRun.objects.get(event_id=probe).status == RunStatus.COMPLETED


def test_under_drain_a_keyboard_interrupt_stops_the_caller_as_ctrl_c_would(inngest_client):
    @inngest_client.create_function(
        fn_id="interrupted", trigger=inngest.TriggerEvent(event="bad/ctrl-c")
    )
    def interrupted(ctx: inngest.Context) -> None:
        raise KeyboardInterrupt

    event_id = send("bad/ctrl-c")
    # drain() runs handlers in this (main) thread, where Ctrl-C arrives as KeyboardInterrupt.
    with pytest.raises(KeyboardInterrupt):
        drain()
    # Nothing is recorded: the run resumes after its lease, as after a killed worker.
    run = FunctionRun.objects.get(event_id=event_id)
    assert (run.status, run.error, run.attempt) == (RunStatus.RUNNING, None, 0)
