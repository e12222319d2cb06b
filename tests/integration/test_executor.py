"""Executor behaviour: memoized steps, retries and backoff, errors, on_failure, sleeps, limits."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from pydantic import BaseModel

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun, StepRun
from inngest_django.retries import BACKOFF_SECONDS
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

SCALE = 0.001  # tests/settings.py RETRY_BACKOFF_SCALE


def only_run(function_id: str) -> FunctionRun:
    return FunctionRun.objects.get(function_id=function_id)


def test_three_step_function_completes_each_step_once(inngest_client, drain):
    calls: list[str] = []

    @inngest_client.create_function(fn_id="three", trigger=inngest.TriggerEvent(event="t/three"))
    def three(ctx):
        a = ctx.step.run("a", lambda: calls.append("a") or 1)
        b = ctx.step.run("b", lambda: calls.append("b") or a + 1)
        c = ctx.step.run("c", lambda: calls.append("c") or b + 1)
        return {"sum": a + b + c}

    inngest_client.send(inngest.Event(name="t/three"))
    drain()
    run = only_run("test-three")
    assert run.status == "COMPLETED", run.error
    assert run.output == {"sum": 6}
    assert calls == ["a", "b", "c"]
    steps = list(run.steps.values_list("step_key", "status", "output", "attempts"))
    assert steps == [
        ("a", "COMPLETED", 1, 1),
        ("b", "COMPLETED", 2, 1),
        ("c", "COMPLETED", 3, 1),
    ]
    assert run.started_at is not None and run.finished_at >= run.started_at


def test_repeated_step_ids_get_index_suffixes(inngest_client, drain):
    @inngest_client.create_function(fn_id="repeat", trigger=inngest.TriggerEvent(event="t/repeat"))
    def repeat(ctx):
        return [ctx.step.run("same", lambda i=i: i) for i in range(3)]

    inngest_client.send(inngest.Event(name="t/repeat"))
    drain()
    run = only_run("test-repeat")
    assert run.output == [0, 1, 2]
    assert list(run.steps.values_list("step_key", flat=True)) == ["same", "same:1", "same:2"]


def test_step_failing_twice_then_succeeding_retries_with_backoff(inngest_client, drain):
    attempts: list[float] = []
    first_step_calls: list[int] = []

    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError(f"boom {len(attempts)}")
        return "ok"

    @inngest_client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="t/flaky"))
    def flaky_fn(ctx):
        ctx.step.run("first", lambda: first_step_calls.append(1))
        return ctx.step.run("flaky", flaky)

    inngest_client.send(inngest.Event(name="t/flaky"))
    drain()
    run = only_run("test-flaky")
    assert run.status == "COMPLETED", run.error
    assert run.output == "ok"
    assert len(attempts) == 3
    assert first_step_calls == [1]
    step = run.steps.get(step_key="flaky")
    assert (step.status, step.attempts) == ("COMPLETED", 3)
    # Backoff after attempt 0 is 15 s and after attempt 1 is 30 s, scaled for tests.
    assert attempts[1] - attempts[0] >= BACKOFF_SECONDS[0] * SCALE
    assert attempts[2] - attempts[1] >= BACKOFF_SECONDS[1] * SCALE


def test_ctx_attempt_counts_failed_attempts_of_the_current_step(inngest_client, drain):
    seen: list[tuple[str, int]] = []

    def fail_once(name):
        seen.append((name, len([s for s in seen if s[0] == name])))
        if len([s for s in seen if s[0] == name]) == 1:
            raise RuntimeError("once")

    @inngest_client.create_function(
        fn_id="attempts", trigger=inngest.TriggerEvent(event="t/attempts")
    )
    def attempts_fn(ctx):
        observed = []
        observed.append(ctx.step.run("one", lambda: fail_once("one") or ctx.attempt))
        observed.append(ctx.step.run("two", lambda: fail_once("two") or ctx.attempt))
        return observed

    inngest_client.send(inngest.Event(name="t/attempts"))
    drain()
    assert only_run("test-attempts").output == [1, 1]


def test_step_always_failing_raises_step_error_into_handler(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="catches", trigger=inngest.TriggerEvent(event="t/catches"), retries=2
    )
    def catches(ctx):
        try:
            ctx.step.run("bad", lambda: 1 / 0)
        except inngest.StepError as exc:
            return {"caught": exc.name, "message": exc.message}
        return "not reached"

    inngest_client.send(inngest.Event(name="t/catches"))
    drain()
    run = only_run("test-catches")
    assert run.status == "COMPLETED", run.error
    assert run.output == {"caught": "ZeroDivisionError", "message": "division by zero"}
    step = run.steps.get(step_key="bad")
    assert (step.status, step.attempts) == ("FAILED", 3)
    assert step.error["name"] == "ZeroDivisionError"


def test_uncaught_step_failure_fails_run_and_runs_on_failure(inngest_client, drain):
    failures = []

    def on_failure(ctx):
        failures.append(ctx.event)

    @inngest_client.create_function(
        fn_id="doomed",
        trigger=inngest.TriggerEvent(event="t/doomed"),
        retries=1,
        on_failure=on_failure,
    )
    def doomed(ctx):
        ctx.step.run("charge", lambda: (_ for _ in ()).throw(ValueError("card declined")))

    inngest_client.send(inngest.Event(name="t/doomed", data={"order": 7}))
    drain()
    run = only_run("test-doomed")
    assert run.status == "FAILED"
    assert run.error["name"] == "ValueError"
    assert run.error["message"] == "card declined"
    assert "Traceback" in run.error["stack"]
    assert run.steps.get().attempts == 2
    assert len(failures) == 1
    event = failures[0]
    assert event.name == "inngest/function.failed"
    assert event.id == run.pk
    assert event.data["function_id"] == "test-doomed"
    assert event.data["run_id"] == run.pk
    assert event.data["error"]["message"] == "card declined"
    assert event.data["event"]["data"] == {"order": 7}
    failure_run = only_run("test-doomed-failure")
    assert failure_run.status == "COMPLETED"
    # The failure handler's own finish emits no further function events about itself.
    assert not Event.objects.filter(data__run_id=failure_run.pk).exists()


def test_non_retriable_error_fails_after_one_attempt(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="nonretry", trigger=inngest.TriggerEvent(event="t/nonretry")
    )
    def nonretry(ctx):
        ctx.step.run("once", lambda: (_ for _ in ()).throw(inngest.NonRetriableError("gone")))

    inngest_client.send(inngest.Event(name="t/nonretry"))
    drain()
    run = only_run("test-nonretry")
    assert run.status == "FAILED"
    assert (run.error["name"], run.error["message"]) == ("NonRetriableError", "gone")
    assert run.steps.get().attempts == 1


def test_non_retriable_error_outside_steps_fails_at_once(inngest_client, drain):
    calls = []

    @inngest_client.create_function(fn_id="nr-top", trigger=inngest.TriggerEvent(event="t/nr-top"))
    def nr_top(ctx):
        calls.append(1)
        raise inngest.NonRetriableError("bad input")

    inngest_client.send(inngest.Event(name="t/nr-top"))
    drain()
    assert only_run("test-nr-top").status == "FAILED"
    assert calls == [1]


def test_error_outside_steps_is_retried_then_fails(inngest_client, drain):
    calls = []

    @inngest_client.create_function(
        fn_id="top-error", trigger=inngest.TriggerEvent(event="t/top-error"), retries=2
    )
    def top_error(ctx):
        calls.append(ctx.attempt)
        raise KeyError("missing")

    inngest_client.send(inngest.Event(name="t/top-error"))
    drain()
    run = only_run("test-top-error")
    assert run.status == "FAILED"
    assert calls == [0, 1, 2]
    assert run.error["name"] == "KeyError"


def test_retry_after_error_sets_next_attempt_time(inngest_client, drain):
    @inngest_client.create_function(fn_id="later", trigger=inngest.TriggerEvent(event="t/later"))
    def later(ctx):
        ctx.step.run(
            "call-api",
            lambda: (_ for _ in ()).throw(inngest.RetryAfterError("429", timedelta(minutes=5))),
        )

    inngest_client.send(inngest.Event(name="t/later"))
    before = timezone.now()
    drain(timeout=0.5)
    run = only_run("test-later")
    assert run.status == "QUEUED"
    assert run.attempt == 1
    assert run.error["name"] == "RetryAfterError"
    assert before + timedelta(minutes=5) <= run.available_at
    assert run.available_at <= timezone.now() + timedelta(minutes=5)
    assert run.steps.get().status == "ERRORED"


def test_retry_after_is_clamped_to_at_least_one_second(inngest_client, drain):
    @inngest_client.create_function(fn_id="soon", trigger=inngest.TriggerEvent(event="t/soon"))
    def soon(ctx):
        ctx.step.run("x", lambda: (_ for _ in ()).throw(inngest.RetryAfterError("now", 0)))

    inngest_client.send(inngest.Event(name="t/soon"))
    before = timezone.now()
    drain(timeout=0.2)
    assert only_run("test-soon").available_at >= before + timedelta(seconds=1)


def test_nested_step_is_a_non_retriable_error(inngest_client, drain):
    @inngest_client.create_function(fn_id="nested", trigger=inngest.TriggerEvent(event="t/nested"))
    def nested(ctx):
        ctx.step.run("outer", lambda: ctx.step.run("inner", lambda: 1))

    inngest_client.send(inngest.Event(name="t/nested"))
    drain()
    run = only_run("test-nested")
    assert run.status == "FAILED"
    assert run.error["name"] == "NonRetriableError"
    assert "Nested steps are not supported" in run.error["message"]
    assert run.steps.get(step_key="outer").attempts == 1


def test_step_that_writes_then_raises_leaves_no_row(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="rollback", trigger=inngest.TriggerEvent(event="t/rollback"), retries=1
    )
    def rollback(ctx):
        def write_then_fail():
            Order.objects.create(reference=ctx.run_id, step_key="w")
            raise RuntimeError("after the write")

        ctx.step.run("write", write_then_fail)

    inngest_client.send(inngest.Event(name="t/rollback"))
    drain()
    assert only_run("test-rollback").status == "FAILED"
    assert Order.objects.count() == 0


def test_step_that_writes_and_succeeds_leaves_one_row(inngest_client, drain):
    fail_once = _fail_first_time()

    @inngest_client.create_function(fn_id="commit", trigger=inngest.TriggerEvent(event="t/commit"))
    def commit(ctx):
        ctx.step.run("write", lambda: Order.objects.create(reference=ctx.run_id).pk)
        ctx.step.run("fail-once", fail_once)
        return "done"

    inngest_client.send(inngest.Event(name="t/commit"))
    drain()
    run = only_run("test-commit")
    assert run.status == "COMPLETED"
    assert Order.objects.filter(reference=run.pk).count() == 1


def _fail_first_time():
    state = {"calls": 0}

    def step():
        state["calls"] += 1
        if state["calls"] == 1:
            raise RuntimeError("first time")
        return state["calls"]

    return step


class Money(BaseModel):
    amount: int
    currency: str


def test_output_type_round_trips_pydantic_models(inngest_client, drain):
    seen = []

    @inngest_client.create_function(
        fn_id="typed", trigger=inngest.TriggerEvent(event="t/typed"), output_type=Money
    )
    def typed(ctx):
        money = ctx.step.run("price", lambda: Money(amount=5, currency="EUR"), output_type=Money)
        seen.append(money)
        ctx.step.sleep("pause", timedelta(milliseconds=1))
        return money

    inngest_client.send(inngest.Event(name="t/typed"))
    drain()
    run = only_run("test-typed")
    assert run.output == {"amount": 5, "currency": "EUR"}
    assert seen == [Money(amount=5, currency="EUR")] * 2


def test_unserializable_step_output_fails_clearly(inngest_client, drain):
    @inngest_client.create_function(fn_id="unser", trigger=inngest.TriggerEvent(event="t/unser"))
    def unser(ctx):
        ctx.step.run("obj", lambda: object())

    inngest_client.send(inngest.Event(name="t/unser"))
    drain()
    run = only_run("test-unser")
    assert run.status == "FAILED"
    assert "not JSON-serializable" in run.error["message"]


def test_sleep_resumes_no_earlier_than_its_duration(inngest_client, drain):
    times = []

    @inngest_client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="t/nap"))
    def nap(ctx):
        start = ctx.step.run("before", lambda: timezone.now().isoformat())
        ctx.step.sleep("nap", "2s")
        times.append(timezone.now())
        return start

    inngest_client.send(inngest.Event(name="t/nap"))
    drain(timeout=0.2)
    run = only_run("test-nap")
    assert run.status == "SLEEPING"
    sleep_step = run.steps.get(step_key="nap")
    assert sleep_step.status == "SLEEPING"
    assert run.available_at == sleep_step.wake_at
    drain(timeout=5)
    run.refresh_from_db()
    assert run.status == "COMPLETED"
    started = timezone.datetime.fromisoformat(run.output)
    assert times[-1] - started >= timedelta(seconds=2)
    assert run.steps.get(step_key="nap").status == "COMPLETED"


def test_sleep_until_resumes_no_earlier_than_the_time(inngest_client, drain):
    until = timezone.now() + timedelta(seconds=2)

    @inngest_client.create_function(fn_id="alarm", trigger=inngest.TriggerEvent(event="t/alarm"))
    def alarm(ctx):
        ctx.step.sleep_until("wake", ctx.event.data["until"])
        return ctx.step.run("after", lambda: timezone.now().isoformat())

    inngest_client.send(inngest.Event(name="t/alarm", data={"until": until.isoformat()}))
    drain(timeout=5)
    run = only_run("test-alarm")
    assert run.status == "COMPLETED"
    assert timezone.datetime.fromisoformat(run.output) >= until


def test_sleep_until_in_the_past_does_not_pause(inngest_client, drain):
    @inngest_client.create_function(fn_id="past", trigger=inngest.TriggerEvent(event="t/past"))
    def past(ctx):
        ctx.step.sleep_until("wake", timezone.now() - timedelta(days=1))
        return "awake"

    inngest_client.send(inngest.Event(name="t/past"))
    drain(timeout=0.1)
    assert only_run("test-past").output == "awake"


@pytest.mark.parametrize(
    ("duration", "message"),
    [("soon", "is not a duration"), (timedelta(days=400), "366 days"), (-5, "negative")],
)
def test_bad_sleep_durations_fail_the_run_clearly(inngest_client, drain, duration, message):
    @inngest_client.create_function(fn_id="badnap", trigger=inngest.TriggerEvent(event="t/badnap"))
    def badnap(ctx):
        ctx.step.sleep("nap", duration)

    inngest_client.send(inngest.Event(name="t/badnap"))
    drain()
    run = only_run("test-badnap")
    assert run.status == "FAILED"
    assert message in run.error["message"]


@override_settings(INNGEST_DJANGO={"MAX_STEPS_PER_RUN": 5, "RETRY_BACKOFF_SCALE": 0.001})
def test_step_limit_fails_the_run_naming_the_limit(inngest_client, drain):
    @inngest_client.create_function(fn_id="many", trigger=inngest.TriggerEvent(event="t/many"))
    def many(ctx):
        for i in range(10):
            ctx.step.run(f"s{i}", lambda: None)

    inngest_client.send(inngest.Event(name="t/many"))
    drain()
    run = only_run("test-many")
    assert run.status == "FAILED"
    assert "limit of 5 steps" in run.error["message"]
    assert "MAX_STEPS_PER_RUN" in run.error["message"]
    assert run.steps.count() == 5


def test_default_step_limit_is_one_thousand(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="thousand", trigger=inngest.TriggerEvent(event="t/thousand")
    )
    def thousand(ctx):
        for i in range(1001):
            ctx.step.run("s", lambda i=i: i)

    inngest_client.send(inngest.Event(name="t/thousand"))
    drain(timeout=60)
    run = only_run("test-thousand")
    assert run.status == "FAILED"
    assert "limit of 1000 steps" in run.error["message"]
    assert run.steps.count() == 1000


@override_settings(INNGEST_DJANGO={"MAX_STEP_OUTPUT_BYTES": 100})
def test_step_output_limit_fails_the_step_naming_the_limit(inngest_client, drain):
    @inngest_client.create_function(fn_id="big", trigger=inngest.TriggerEvent(event="t/big"))
    def big(ctx):
        ctx.step.run("blob", lambda: "x" * 200)

    inngest_client.send(inngest.Event(name="t/big"))
    drain()
    run = only_run("test-big")
    assert run.status == "FAILED"
    assert "MAX_STEP_OUTPUT_BYTES" in run.error["message"]
    assert run.steps.get().attempts == 1


def test_default_step_output_limit_is_four_mib(inngest_client, drain):
    @inngest_client.create_function(fn_id="huge", trigger=inngest.TriggerEvent(event="t/huge"))
    def huge(ctx):
        ok = ctx.step.run("fits", lambda: "x" * (4 * 1024 * 1024 - 100))
        ctx.step.run("too-big", lambda: "x" * (4 * 1024 * 1024 + 1))
        return len(ok)

    inngest_client.send(inngest.Event(name="t/huge"))
    drain()
    run = only_run("test-huge")
    assert run.status == "FAILED"
    assert "over the limit of 4194304 bytes" in run.error["message"]
    assert run.steps.get(step_key="fits").status == "COMPLETED"


def test_unknown_function_fails_the_run_naming_it(drain):
    event = Event.objects.create(id="01TESTEVENT000000000000000", name="x", ts=0)
    FunctionRun.objects.create(
        id="01TESTRUN00000000000000000",
        function_id="gone-function",
        event=event,
        available_at=timezone.now(),
    )
    drain()
    run = FunctionRun.objects.get(pk="01TESTRUN00000000000000000")
    assert run.status == "FAILED"
    assert run.error["name"] == "FunctionNotFoundError"
    assert "'gone-function'" in run.error["message"]


def test_finish_events_are_emitted_in_the_finalize_transaction(inngest_client, drain):
    @inngest_client.create_function(fn_id="done", trigger=inngest.TriggerEvent(event="t/done"))
    def done(ctx):
        return {"ok": True}

    inngest_client.send(inngest.Event(name="t/done"))
    drain()
    run = only_run("test-done")
    finished = Event.objects.get(name="inngest/function.finished")
    assert finished.data["run_id"] == run.pk
    assert finished.data["result"] == {"ok": True}
    assert finished.data["_inngest"] == {"status": "COMPLETED"}
    assert not Event.objects.filter(name="inngest/function.failed").exists()


def test_logger_is_quiet_while_replaying(inngest_client, drain, caplog):
    @inngest_client.create_function(fn_id="logs", trigger=inngest.TriggerEvent(event="t/logs"))
    def logs(ctx):
        ctx.logger.info("before sleep")
        ctx.step.sleep("nap", 1)
        ctx.logger.info("after sleep")

    inngest_client.send(inngest.Event(name="t/logs"))
    with caplog.at_level("INFO", logger="inngest_django.functions"):
        drain(timeout=2)
    messages = [r.getMessage() for r in caplog.records if r.name == "inngest_django.functions"]
    assert messages == ["before sleep", "after sleep"]


def test_send_inside_rolled_back_transaction_sends_nothing(inngest_client, drain):
    @inngest_client.create_function(fn_id="tx", trigger=inngest.TriggerEvent(event="t/tx"))
    def tx(ctx):
        return 1

    with pytest.raises(RuntimeError), transaction.atomic():
        inngest_client.send(inngest.Event(name="t/tx"))
        raise RuntimeError("roll back")
    drain()
    assert not Event.objects.exists()
    assert not FunctionRun.objects.exists()
    assert not StepRun.objects.exists()


def test_run_signals_are_sent_as_a_pass_starts_and_after_the_run_finishes(inngest_client, drain):
    from inngest_django import signals

    seen = []

    def on_started(sender, run, **kwargs):
        seen.append(("started", run.pk, run.status))

    def on_finished(sender, run, **kwargs):
        seen.append(("finished", run.pk, run.status, run.output))

    @inngest_client.create_function(
        fn_id="signals", trigger=inngest.TriggerEvent(event="t/signals")
    )
    def with_signals(ctx):
        ctx.step.sleep("nap", 1)
        return "ok"

    signals.run_started.connect(on_started)
    signals.run_finished.connect(on_finished)
    try:
        inngest_client.send(inngest.Event(name="t/signals"))
        drain(timeout=3)
    finally:
        signals.run_started.disconnect(on_started)
        signals.run_finished.disconnect(on_finished)
    run_id = only_run("test-signals").pk
    assert seen == [
        ("started", run_id, "RUNNING"),
        ("started", run_id, "RUNNING"),
        ("finished", run_id, "COMPLETED", "ok"),
    ]
