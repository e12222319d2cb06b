"""Database errors in a step: a failing statement fails the step, a dying connection does not."""

from __future__ import annotations

import pytest
from django.db import connection

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.models import FunctionRun, StepRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.postgres
def test_a_connection_dying_mid_step_spends_no_retry(inngest_client, drain):
    """A step whose connection is killed ends the pass without recording a failed attempt."""
    calls = []

    @inngest_client.create_function(
        fn_id="severed", trigger=inngest.TriggerEvent(event="t/severed"), retries=0
    )
    def severed(ctx):
        def work() -> str:
            calls.append("work")
            if len(calls) == 1:
                # As a server restart or a network cut would, from inside the step.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            return "done"

        return ctx.step.run("work", work)

    inngest.send({"name": "t/severed", "data": {}})
    drain()
    connection.close()
    (run,) = FunctionRun.objects.filter(function_id="test-severed")
    # With retries=0 a counted failure would have failed the run; instead it keeps its lease.
    assert (run.status, run.attempt) == (RunStatus.RUNNING, 0)
    assert not StepRun.objects.filter(run=run).exists()

    FunctionRun.objects.filter(pk=run.pk).update(available_at=run.created_at)  # lease ends
    drain()
    run.refresh_from_db()
    assert (run.status, run.output, calls) == (RunStatus.COMPLETED, "done", ["work", "work"])


def test_a_failing_statement_in_a_step_is_the_steps_failure(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="bad-sql", trigger=inngest.TriggerEvent(event="t/bad"), retries=0
    )
    def bad_sql(ctx):
        def work() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")

        ctx.step.run("work", work)

    inngest.send({"name": "t/bad", "data": {}})
    drain()
    (run,) = FunctionRun.objects.filter(function_id="test-bad-sql")
    assert run.status == RunStatus.FAILED
    assert StepRun.objects.get(run=run).status == "FAILED"
