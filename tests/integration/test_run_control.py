"""Rerunning a run from the start and retrying a failed run from its failed step."""

from __future__ import annotations

import pytest

import inngest_django as inngest
from inngest_django.models import FunctionRun, RunEvent, StepRun, Wait
from inngest_django.testing import isolated_registry
from tests.helpers import the_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def flaky(inngest_client):
    """A two-step function whose second step fails until `healed` is set; calls are counted."""
    calls: list[str] = []
    state = {"healed": False}

    @inngest_client.create_function(
        fn_id="charge",
        trigger=inngest.TriggerEvent(event="shop/order.placed"),
        retries=0,
        cancel=[inngest.Cancel(event="shop/order.voided", if_exp="event.data.id == async.data.id")],
    )
    def charge(ctx):
        reserved = ctx.step.run("reserve", lambda: calls.append("reserve") or "reserved")

        def capture() -> str:
            calls.append("capture")
            if not state["healed"]:
                raise RuntimeError("card declined")
            return "captured"

        return [reserved, ctx.step.run("capture", capture)]

    return calls, state


def test_retry_runs_the_failed_step_again_and_keeps_completed_ones(inngest_client, drain, flaky):
    calls, state = flaky
    inngest_client.send(inngest.Event(name="shop/order.placed", data={"id": 7}))
    drain()
    failed = the_run("test-charge")
    assert failed.status == "FAILED"
    assert calls == ["reserve", "capture"]

    state["healed"] = True
    assert inngest.retry_run(failed.pk) is True
    queued = the_run("test-charge")
    assert (queued.pk, queued.status, queued.finished_at) == (failed.pk, "QUEUED", None)
    assert list(StepRun.objects.filter(run=failed).values_list("step_key", flat=True)) == [
        "reserve"
    ]
    drain()
    done = the_run("test-charge")
    assert (done.status, done.output) == ("COMPLETED", ["reserved", "captured"])
    assert calls == ["reserve", "capture", "capture"]  # "reserve" was memoized


def test_retry_refuses_runs_that_did_not_fail(inngest_client, drain, flaky):
    _, state = flaky
    state["healed"] = True
    inngest_client.send(inngest.Event(name="shop/order.placed", data={"id": 1}))
    drain()
    assert inngest.retry_run(the_run("test-charge").pk) is False  # completed
    assert inngest.retry_run("01NOSUCHRUN0000000000000000") is False
    assert the_run("test-charge").status == "COMPLETED"


def test_a_retried_run_listens_to_its_cancel_rules_again(inngest_client, drain, flaky):
    inngest_client.send(inngest.Event(name="shop/order.placed", data={"id": 3}))
    drain()
    failed = the_run("test-charge")
    assert not Wait.objects.pending().filter(run=failed).exists()
    inngest.retry_run(failed.pk)
    assert Wait.objects.pending().filter(run=failed, kind="CANCEL").count() == 1


def test_rerun_starts_a_new_run_from_the_first_step_with_the_same_event(
    inngest_client, drain, flaky
):
    calls, state = flaky
    state["healed"] = True
    inngest_client.send(inngest.Event(name="shop/order.placed", data={"id": 9}))
    drain()
    original = the_run("test-charge")
    assert calls == ["reserve", "capture"]

    rerun_id = inngest.rerun_run(original.pk)
    rerun = FunctionRun.objects.get(pk=rerun_id)
    assert (rerun.status, rerun.rerun_of_id, rerun.event_id) == (
        "QUEUED",
        original.pk,
        original.event_id,
    )
    assert list(original.reruns.all()) == [rerun]
    assert Wait.objects.pending().filter(run=rerun, kind="CANCEL").count() == 1
    drain()
    rerun.refresh_from_db()
    assert (rerun.status, rerun.output) == ("COMPLETED", ["reserved", "captured"])
    assert calls == ["reserve", "capture", "reserve", "capture"]
    original.refresh_from_db()
    assert original.status == "COMPLETED"  # untouched


def test_rerun_is_not_skipped_by_the_event_idempotency_it_shares(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="once",
        trigger=inngest.TriggerEvent(event="shop/once"),
        idempotency="event.data.id",
    )
    def once(ctx):
        return ctx.event.data["id"]

    inngest_client.send(inngest.Event(name="shop/once", data={"id": "a"}))
    drain()
    (original,) = FunctionRun.objects.filter(function_id="test-once")
    rerun = FunctionRun.objects.get(pk=inngest.rerun_run(original.pk))
    drain()
    rerun.refresh_from_db()
    assert (rerun.status, rerun.output) == ("COMPLETED", "a")


def test_rerun_of_a_batched_run_gets_the_same_events(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="batched",
        trigger=inngest.TriggerEvent(event="shop/item"),
        batch_events=inngest.Batch(max_size=3, timeout="1s"),
    )
    def batched(ctx):
        return [event.data["n"] for event in ctx.events]

    inngest_client.send([inngest.Event(name="shop/item", data={"n": n}) for n in range(3)])
    drain()
    (original,) = FunctionRun.objects.filter(function_id="test-batched")
    rerun = FunctionRun.objects.get(pk=inngest.rerun_run(original.pk))
    assert RunEvent.objects.filter(run=rerun).count() == 3
    drain()
    rerun.refresh_from_db()
    assert (rerun.status, rerun.output) == ("COMPLETED", [0, 1, 2])


def test_rerun_of_an_unknown_run_or_function(inngest_client, drain, flaky):
    assert inngest.rerun_run("01NOSUCHRUN0000000000000000") is None
    flaky[1]["healed"] = True
    inngest_client.send(inngest.Event(name="shop/order.placed", data={"id": 4}))
    drain()
    run = the_run("test-charge")
    with isolated_registry() as registry:
        registry.restore({})
        with pytest.raises(inngest.FunctionNotFoundError):
            inngest.rerun_run(run.pk)
    assert not FunctionRun.objects.filter(rerun_of=run).exists()


def test_a_retried_run_that_fails_again_calls_on_failure_again(inngest_client, drain):
    failures = []

    @inngest_client.create_function(
        fn_id="always-fails",
        trigger=inngest.TriggerEvent(event="shop/doomed"),
        retries=0,
        on_failure=lambda ctx: failures.append(ctx.event.data["run_id"]),
    )
    def always_fails(ctx):
        ctx.step.run("boom", lambda: 1 / 0)

    inngest_client.send(inngest.Event(name="shop/doomed", data={}))
    drain()
    (run,) = FunctionRun.objects.filter(function_id="test-always-fails")
    assert failures == [run.pk]
    assert inngest.retry_run(run.pk)
    drain()
    run.refresh_from_db()
    assert (run.status, run.manual_retries) == ("FAILED", 1)
    assert failures == [run.pk, run.pk]
