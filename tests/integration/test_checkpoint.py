"""Checkpointing: a step commits with the pass's next durable write, and a crash loses nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

import inngest_django as inngest
from inngest_django import clock
from inngest_django.conf import app_settings
from inngest_django.engine import execute_run
from inngest_django.engine.checkpoint import checkpointing
from inngest_django.enums import RunStatus, StepStatus
from inngest_django.events import dispatch_pending
from inngest_django.ids import new_token
from inngest_django.models import FunctionRun, StepRun
from tests.helpers import (
    committed_steps,
    counted_commits,
    orders_per_step,
    send_steps,
    status_of,
    step_starts,
)
from tests.testapp.inngest_functions import HOLD_AFTER_ENV
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_STEPS = "testapp-record-steps"
LEASE_SECONDS = 2.0


@contextmanager
def checkpoint(enabled: bool | None) -> Iterator[None]:
    """Run the block with CHECKPOINT set (None: the default), whatever the database."""
    with override_settings(INNGEST_DJANGO={**settings.INNGEST_DJANGO, "CHECKPOINT": enabled}):
        yield


def claimed_run(function_id: str) -> tuple[str, str, object]:
    """Dispatch the sent event and claim its run as a worker would; return id, token, time."""
    dispatch_pending()
    token, now = new_token(), clock.now()
    with transaction.atomic():
        ids = FunctionRun.objects.claim(
            worker_id="test",
            lease_token=token,
            limit=1,
            now=now,
            lease_until=now.replace(year=2100),
        )
    assert FunctionRun.objects.get(pk=ids[0]).function_id == function_id
    return ids[0], token, now


def one_step(inngest_client) -> None:
    @inngest_client.create_function(fn_id="one-step", trigger=inngest.TriggerEvent(event="t/one"))
    def handler(ctx):
        order = ctx.step.run(
            "write", lambda: Order.objects.create(reference="one", step_key="w").pk
        )
        return {"order": order}


@pytest.mark.parametrize("enabled, commits", [(None, 1), (True, 1), (False, 2)])
def test_a_one_step_run_commits_once_after_its_claim_when_checkpointing(
    inngest_client, enabled, commits
):
    one_step(inngest_client)
    inngest_client.send(inngest.Event(name="t/one"))
    run_id, token, claimed_at = claimed_run("test-one-step")
    with checkpoint(enabled), counted_commits() as done, CaptureQueriesContext(connection) as sql:
        execute_run(
            run_id, lease_token=token, registry=inngest_client.registry, claimed_at=claimed_at
        )
    run = FunctionRun.objects.get(pk=run_id)
    assert run.status == RunStatus.COMPLETED
    assert len(done) == commits
    # The claim started the run for the first time: no step rows to read.
    assert not [q for q in sql.captured_queries if 'FROM "inngest_django_steprun"' in q["sql"]]
    assert Order.objects.filter(reference="one").count() == 1


def test_a_run_claimed_again_reads_its_memos_and_skips_the_committed_step(inngest_client, drain):
    calls = []

    @inngest_client.create_function(fn_id="two-step", trigger=inngest.TriggerEvent(event="t/two"))
    def handler(ctx):
        ctx.step.run("a", lambda: calls.append("a"))
        ctx.step.sleep("nap", "1ms")
        ctx.step.run("b", lambda: calls.append("b"))

    inngest_client.send(inngest.Event(name="t/two"))
    with checkpoint(True):
        drain(registry=inngest_client.registry)
    assert calls == ["a", "b"]
    assert StepRun.objects.filter(status=StepStatus.COMPLETED).count() == 3


def test_a_handler_failing_after_a_step_keeps_the_step_and_retries_without_it(
    inngest_client, drain
):
    calls = []

    @inngest_client.create_function(
        fn_id="fails-after", trigger=inngest.TriggerEvent(event="t/fail"), retries=1
    )
    def handler(ctx):
        ctx.step.run("write", lambda: calls.append(ctx.attempt))
        if ctx.attempt == 0:
            raise RuntimeError("after the step")
        return "done"

    inngest_client.send(inngest.Event(name="t/fail"))
    with checkpoint(True):
        drain(registry=inngest_client.registry)
    run = FunctionRun.objects.get(function_id="test-fails-after")
    assert (run.status, run.output) == (RunStatus.COMPLETED, "done")
    # The step committed with the retry mark, so the second pass replayed its memo.
    assert calls == [0]


def test_checkpointing_is_on_by_default_on_both_databases():
    assert app_settings.CHECKPOINT is None
    assert checkpointing() is True
    with checkpoint(True):
        assert checkpointing() is True
    with checkpoint(False):
        assert checkpointing() is False


@pytest.mark.slow
def test_a_worker_killed_between_a_step_and_its_finish_loses_nothing_and_repeats_nothing_committed(
    workers,
):
    send_steps(steps=1)
    env = {
        "INNGEST_DJANGO_TEST_LEASE_SECONDS": str(LEASE_SECONDS),
        "INNGEST_DJANGO_TEST_CHECKPOINT": "1",
        HOLD_AFTER_ENV: "s0",
    }
    # The first worker returns from s0 and blocks before the finish: s0's transaction is open.
    first = workers.start(**env)
    run = workers.wait_for(
        FunctionRun.objects.filter(function_id=RECORD_STEPS).first, what="the run to be queued"
    )
    workers.wait_for(
        lambda: any(e["phase"] == "held" for e in workers.journal()), what="s0 to return"
    )
    # Nothing of s0 committed yet: neither its memo nor its own writes.
    assert committed_steps(run.pk) == []
    assert orders_per_step(run.pk) == {}
    workers.kill(first)

    second = workers.start(**{**env, HOLD_AFTER_ENV: ""})
    workers.wait_for(
        lambda: status_of(run.pk) == RunStatus.COMPLETED, what="the run to complete", timeout=30
    )
    # s0 ran again because nothing of its first run committed; its writes exist once.
    assert step_starts(workers, run.pk) == [("s0", first.pid), ("s0", second.pid)]
    assert orders_per_step(run.pk) == {"s0": 1}
    assert committed_steps(run.pk) == ["s0"]
    run.refresh_from_db()
    assert run.output == {"steps": 1}


@pytest.mark.parametrize("enabled", [True, False])
def test_a_one_step_runs_memo_goes_in_with_its_finish_when_checkpointing(inngest_client, enabled):
    one_step(inngest_client)
    inngest_client.send(inngest.Event(name="t/one"))
    run_id, token, claimed_at = claimed_run("test-one-step")
    with checkpoint(enabled), CaptureQueriesContext(connection) as sql:
        execute_run(
            run_id, lease_token=token, registry=inngest_client.registry, claimed_at=claimed_at
        )
    assert status_of(run_id) == RunStatus.COMPLETED
    order = Order.objects.get(reference="one")
    assert StepRun.objects.get(run_id=run_id, step_key="write").output == order.pk
    storing = [
        q["sql"] for q in sql.captured_queries if 'INTO "inngest_django_steprun"' in q["sql"]
    ]
    assert len(storing) == 1
    merged = storing[0].startswith('WITH changed AS (UPDATE "inngest_django_functionrun"')
    # One statement for the step's memo, the run's finish and its finish event on PostgreSQL;
    # SQLite stores the memo in its own INSERT first.
    assert merged == (enabled and connection.vendor == "postgresql")


def steal_lease(run_id: str, errors: list[BaseException]) -> None:
    """Give the run another worker's lease from another connection, as an expired claim would."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Waiting for a lock would be a hold-up of the pass: fail fast instead.
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            FunctionRun.objects.filter(pk=run_id).update(lease_token="theirs")
    except BaseException as exc:  # reported to the test's thread
        errors.append(exc)
    finally:
        connection.close()


def test_a_lease_taken_after_a_held_step_rolls_the_steps_writes_back(inngest_client):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's open transaction holds its one write lock: no claim gets between")
    errors: list[BaseException] = []

    @inngest_client.create_function(fn_id="stolen", trigger=inngest.TriggerEvent(event="t/st"))
    def handler(ctx):
        ctx.step.run("write", lambda: Order.objects.create(reference="stolen", step_key="w").pk)
        # After the step, before the finish: the step's memo is held, not written, so the run's
        # row is not locked and another worker's claim goes through.
        thief = threading.Thread(target=steal_lease, args=(ctx.run_id, errors))
        thief.start()
        thief.join()
        return "done"

    inngest_client.send(inngest.Event(name="t/st"))
    run_id, token, claimed_at = claimed_run("test-stolen")
    with checkpoint(True):
        execute_run(
            run_id, lease_token=token, registry=inngest_client.registry, claimed_at=claimed_at
        )
    assert errors == []
    run = FunctionRun.objects.get(pk=run_id)
    assert (run.status, run.lease_token) == (RunStatus.RUNNING, "theirs")
    # Neither the step's write nor its memo committed: the new holder runs the step once.
    assert not Order.objects.filter(reference="stolen").exists()
    assert not StepRun.objects.filter(run_id=run_id).exists()
