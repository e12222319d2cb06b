"""wait_for_event, invoke, send_event and parallel: waits hold no worker and resolve by index."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import inngest_django as inngest
from inngest_django.enums import WaitKind
from inngest_django.models import Event, StepRun, Wait
from tests.helpers import runs_of, the_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def onboarding(inngest_client):
    @inngest_client.create_function(
        fn_id="onboard", trigger=inngest.TriggerEvent(event="app/signup")
    )
    def onboard(ctx):
        activated = ctx.step.wait_for_event(
            "wait-activation", event="app/activated", timeout="1h", match="data.user_id"
        )
        return None if activated is None else activated.data

    return onboard


def test_wait_resolves_with_the_matching_event_only(inngest_client, drain, onboarding):
    inngest_client.send(
        [
            inngest.Event(name="app/signup", data={"user_id": 1}),
            inngest.Event(name="app/signup", data={"user_id": 2}),
        ]
    )
    drain()
    assert {run.status for run in runs_of("test-onboard")} == {"WAITING"}
    inngest_client.send(inngest.Event(name="app/activated", data={"user_id": 2, "plan": "pro"}))
    drain()
    outcome = {
        run.event.data["user_id"]: (run.status, run.output) for run in runs_of("test-onboard")
    }
    assert outcome == {1: ("WAITING", None), 2: ("COMPLETED", {"user_id": 2, "plan": "pro"})}
    wait = Wait.objects.get(run__event__data__user_id=2, kind=WaitKind.EVENT)
    assert wait.outcome == "EVENT" and wait.event.name == "app/activated"


def test_events_sent_before_the_wait_do_not_count(inngest_client, drain, onboarding):
    inngest_client.send(inngest.Event(name="app/activated", data={"user_id": 1}))
    drain()
    inngest_client.send(inngest.Event(name="app/signup", data={"user_id": 1}))
    drain()
    assert the_run("test-onboard").status == "WAITING"


def test_timeout_returns_none(inngest_client, drain):
    @inngest_client.create_function(fn_id="short", trigger=inngest.TriggerEvent(event="t/short"))
    def short(ctx):
        got = ctx.step.wait_for_event("w", event="t/never", timeout=50)
        return {"got": got}

    inngest_client.send(inngest.Event(name="t/short"))
    drain()
    run = the_run("test-short")
    assert (run.status, run.output) == ("COMPLETED", {"got": None})
    assert Wait.objects.get(run=run).outcome == "TIMEOUT"


def test_if_exp_sees_the_trigger_as_event_and_the_candidate_as_async(inngest_client, drain):
    @inngest_client.create_function(fn_id="bid", trigger=inngest.TriggerEvent(event="t/auction"))
    def bid(ctx):
        won = ctx.step.wait_for_event(
            "bid",
            event="t/bid",
            timeout="1h",
            if_exp="async.data.amount > event.data.reserve && async.data.lot == event.data.lot",
        )
        return won.data["amount"]

    inngest_client.send(inngest.Event(name="t/auction", data={"reserve": 100, "lot": "a"}))
    drain()
    inngest_client.send(
        [
            inngest.Event(name="t/bid", data={"amount": 90, "lot": "a"}),
            inngest.Event(name="t/bid", data={"amount": 150, "lot": "b"}),
            inngest.Event(name="t/bid", data={"amount": 120, "lot": "a"}),
            inngest.Event(name="t/bid", data={"amount": 130, "lot": "a"}),
        ]
    )
    drain()
    assert the_run("test-bid").output == 120


def test_one_event_resumes_several_waiting_runs_and_still_triggers(
    inngest_client, drain, onboarding
):
    @inngest_client.create_function(
        fn_id="audit", trigger=inngest.TriggerEvent(event="app/activated")
    )
    def audit(ctx):
        return "audited"

    inngest_client.send([inngest.Event(name="app/signup", data={"user_id": 7}) for _ in range(3)])
    drain()
    inngest_client.send(inngest.Event(name="app/activated", data={"user_id": 7}))
    drain()
    assert [run.status for run in runs_of("test-onboard")] == ["COMPLETED"] * 3
    assert the_run("test-audit").output == "audited"


def test_waiting_holds_no_worker_and_the_step_row_shows_the_wait(inngest_client, drain, onboarding):
    inngest_client.send(inngest.Event(name="app/signup", data={"user_id": 3}))
    drain()
    run = the_run("test-onboard")
    assert run.locked_by == "" and run.status == "WAITING"
    step = StepRun.objects.get(run=run)
    assert (step.op, step.status) == ("WAIT_FOR_EVENT", "WAITING")
    assert step.wake_at == run.available_at


def test_one_event_finds_its_wait_among_10000_without_reading_the_others(
    inngest_client, drain, onboarding
):
    inngest_client.send(inngest.Event(name="app/signup", data={"user_id": "target"}))
    drain()
    target = the_run("test-onboard")
    template = Wait.objects.get(run=target)
    others = [
        Wait(
            run_id=target.pk,
            kind=WaitKind.EVENT,
            step_key=f"other-{i}",
            event_name="app/activated",
            match_key="data.user_id",
            match_value=f'"user-{i}"',
            after_event_id=template.after_event_id,
            expires_at=template.expires_at,
        )
        for i in range(10_000)
    ]
    Wait.objects.bulk_create(others, batch_size=1000)
    inngest_client.send(inngest.Event(name="app/activated", data={"user_id": "target"}))
    from inngest_django.events import dispatch_pending

    with CaptureQueriesContext(connection) as queries:
        dispatch_pending()
    wait_reads = [q["sql"] for q in queries.captured_queries if "inngest_django_wait" in q["sql"]]
    # One lookup of the keys in use, one indexed lookup per key, one resolve.
    assert len(wait_reads) <= 4, wait_reads
    drain()
    target.refresh_from_db()
    assert target.status == "COMPLETED"
    assert Wait.objects.pending().count() == 10_000


def test_invoke_returns_the_child_output_and_links_both_runs(inngest_client, drain):
    @inngest_client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="t/unused"))
    def child(ctx):
        return {"doubled": ctx.step.run("double", lambda: ctx.event.data["n"] * 2)}

    @inngest_client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="t/call"))
    def caller(ctx):
        return ctx.step.invoke("call-child", function=child, data={"n": 21})

    inngest_client.send(inngest.Event(name="t/call"))
    drain()
    parent, kid = the_run("test-caller"), the_run("test-child")
    assert (parent.status, parent.output) == ("COMPLETED", {"doubled": 42})
    assert kid.parent_run_id == parent.pk and kid.event.name == "inngest/function.invoked"
    assert Wait.objects.get(run=parent).child_run_id == kid.pk
    assert StepRun.objects.get(run=parent).op == "INVOKE"


def test_invoke_child_failure_and_timeout_raise_non_retriable_errors(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="breaks", trigger=inngest.TriggerEvent(event="t/unused"), retries=1
    )
    def breaks(ctx):
        raise ValueError("child broke")

    @inngest_client.create_function(
        fn_id="slowpoke", trigger=inngest.TriggerEvent(event="t/unused2")
    )
    def slowpoke(ctx):
        ctx.step.sleep("nap", "1h")

    seen = []

    @inngest_client.create_function(
        fn_id="invoker", trigger=inngest.TriggerEvent(event="t/invoke"), retries=3
    )
    def invoker(ctx):
        for step_id, target, timeout in (
            ("broken", breaks, None),
            ("slow", slowpoke, 100),
            ("missing", "test-no-such-function", None),
        ):
            try:
                ctx.step.invoke(step_id, function=target, timeout=timeout)
            except inngest.NonRetriableError as exc:
                seen.append((step_id, str(exc)))
        return "handled"

    inngest_client.send(inngest.Event(name="t/invoke"))
    drain()
    run = the_run("test-invoker")
    assert run.status == "COMPLETED", run.error
    errors = dict(seen)
    assert "failed: child broke" in errors["broken"]
    assert "timed out" in errors["slow"]
    assert "no registered function" in errors["missing"]
    assert the_run("test-breaks").status == "FAILED"
    assert the_run("test-slowpoke").status == "SLEEPING"  # a timed-out child goes on


def test_send_event_is_not_repeated_when_a_later_step_retries(inngest_client, drain):
    attempts = []

    @inngest_client.create_function(fn_id="notify", trigger=inngest.TriggerEvent(event="t/notify"))
    def notify(ctx):
        ids = ctx.step.send_event("fan-out", [inngest.Event(name="t/fanned", data={"i": 1})])

        def flaky():
            attempts.append(1)
            if len(attempts) < 2:
                raise RuntimeError("again")
            return ids

        return ctx.step.run("after", flaky)

    inngest_client.send(inngest.Event(name="t/notify"))
    drain()
    run = the_run("test-notify")
    assert run.status == "COMPLETED" and len(attempts) == 2
    sent = list(Event.objects.filter(name="t/fanned").values_list("id", flat=True))
    assert run.output == sent and len(sent) == 1
    assert StepRun.objects.get(run=run, step_key="fan-out").op == "SEND_EVENT"


def test_send_event_with_a_reserved_name_fails_the_step_without_retries(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="bad-send", trigger=inngest.TriggerEvent(event="t/bad-send")
    )
    def bad_send(ctx):
        ctx.step.send_event("oops", inngest.Event(name="inngest/fake"))

    inngest_client.send(inngest.Event(name="t/bad-send"))
    drain()
    run = the_run("test-bad-send")
    assert run.status == "FAILED" and "reserved" in run.error["message"]
    assert StepRun.objects.get(run=run).attempts == 1


def test_parallel_returns_results_in_order_and_runs_each_step_once(inngest_client, drain):
    calls = []

    @inngest_client.create_function(fn_id="fan", trigger=inngest.TriggerEvent(event="t/fan"))
    def fan(ctx):
        def part(name):
            return lambda: ctx.step.run(name, lambda: calls.append(name) or name.upper())

        first = ctx.group.parallel((part("a"), part("b"), part("c")))
        ctx.step.sleep("between", 10)
        return list(first)

    inngest_client.send(inngest.Event(name="t/fan"))
    drain()
    assert the_run("test-fan").output == ["A", "B", "C"]
    assert calls == ["a", "b", "c"]


def test_a_failing_parallel_step_fails_like_any_step(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="fan-fail", trigger=inngest.TriggerEvent(event="t/fan-fail"), retries=0
    )
    def fan_fail(ctx):
        return ctx.group.parallel(
            (lambda: ctx.step.run("ok", lambda: 1), lambda: ctx.step.run("bad", lambda: 1 / 0))
        )

    inngest_client.send(inngest.Event(name="t/fan-fail"))
    drain()
    run = the_run("test-fan-fail")
    assert run.status == "FAILED" and run.error["name"] == "ZeroDivisionError"
    assert dict(run.steps.values_list("step_key", "status")) == {"ok": "COMPLETED", "bad": "FAILED"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.wait_for_event("w", event="x", timeout="367d"), "366 days"),
        (lambda s: s.wait_for_event("w", event="x", timeout="soon"), "not a duration"),
        (lambda s: s.wait_for_event("w", event="x", timeout="1h", match="data..x"), "field path"),
        (lambda s: s.wait_for_event("w", event="x", timeout="1h", if_exp="a ==="), "CEL"),
        (lambda s: s.invoke("i", function="x", timeout="400d"), "366 days"),
        (lambda s: s.sleep("s", "2w3x"), "not a duration"),
        (lambda s: s.sleep("s", "400d"), "366 days"),
    ],
)
def test_bad_durations_and_arguments_fail_the_run_with_a_clear_error(
    inngest_client, drain, call, message
):
    @inngest_client.create_function(
        fn_id="bad-args", trigger=inngest.TriggerEvent(event="t/bad-args")
    )
    def bad_args(ctx):
        call(ctx.step)

    inngest_client.send(inngest.Event(name="t/bad-args"))
    drain()
    run = the_run("test-bad-args")
    assert run.status == "FAILED" and run.error["name"] == "NonRetriableError"
    assert message in run.error["message"]
