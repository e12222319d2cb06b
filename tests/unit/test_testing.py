"""testing.run_function: a handler replayed in memory, with stubs, retries and defers (no DB)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

import inngest_django as inngest
from inngest_django import experiment
from inngest_django.testing import (
    DeferCall,
    RejectedDefer,
    RunResult,
    Timeout,
    UnstubbedStepError,
    run_function,
)
from tests.testapp.models import Order

ORDER_PLACED = inngest.TriggerEvent(event="shop/order.placed")


class Flaky:
    """A step callable that fails `failures` times, then returns `value`."""

    def __init__(self, failures: int, value: object = "ok") -> None:
        self.failures = failures
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls} failed")
        return self.value


# -- steps and replays -------------------------------------------------------------------------


def test_multi_step_function_completes_with_each_step_in_order(inngest_client):
    calls = []

    @inngest_client.create_function(
        fn_id="welcome", trigger=inngest.TriggerEvent(event="user/created")
    )
    def welcome(ctx):
        calls.append("top")
        user = ctx.step.run("load-user", lambda: {"email": ctx.event.data["email"]})
        sent = ctx.step.run("send-email", lambda: f"sent to {user['email']}")
        return {"sent": sent}

    result = run_function(welcome, {"data": {"email": "ada@example.com"}})

    assert isinstance(result, RunResult)
    assert result.status == "COMPLETED"
    assert result.error is None
    assert result.output == {"sent": "sent to ada@example.com"}
    assert list(result.steps.items()) == [
        ("load-user", {"email": "ada@example.com"}),
        ("send-email", "sent to ada@example.com"),
    ]
    assert result.attempts == {"load-user": 1, "send-email": 1}
    # Steps run within one pass, as in the worker.
    assert calls == ["top"]


def test_step_output_goes_through_json_like_a_stored_memo(inngest_client):
    @inngest_client.create_function(fn_id="tuple", trigger=ORDER_PLACED)
    def returns_tuple(ctx):
        pair = ctx.step.run("pair", lambda: (1, 2))
        return {"pair": pair, "is_list": isinstance(pair, list)}

    assert run_function(returns_tuple, data={}).output == {"pair": [1, 2], "is_list": True}


def test_unserializable_step_output_fails_the_run(inngest_client):
    @inngest_client.create_function(fn_id="bad-output", trigger=ORDER_PLACED, retries=3)
    def bad_output(ctx):
        return ctx.step.run("obj", lambda: object())

    result = run_function(bad_output)
    assert result.status == "FAILED"
    assert isinstance(result.error, inngest.NonRetriableError)
    assert "not JSON-serializable" in str(result.error)
    assert result.attempts == {"obj": 1}


def test_repeated_step_ids_get_index_suffixes_and_stubs_by_full_key(inngest_client):
    @inngest_client.create_function(fn_id="loop", trigger=ORDER_PLACED)
    def loop(ctx):
        return [ctx.step.run("copy", lambda n=n: n) for n in range(3)]

    result = run_function(loop, step_stubs={"copy:1": "stubbed"})
    assert result.output == [0, "stubbed", 2]
    assert list(result.steps) == ["copy", "copy:1", "copy:2"]


def test_a_stub_by_step_id_applies_to_every_index(inngest_client):
    @inngest_client.create_function(fn_id="loop-all", trigger=ORDER_PLACED)
    def loop(ctx):
        return [ctx.step.run("copy", lambda n=n: n) for n in range(3)]

    assert run_function(loop, step_stubs={"copy": "x", "copy:2": "y"}).output == ["x", "x", "y"]


def test_step_is_retried_then_succeeds(inngest_client):
    flaky = Flaky(failures=2)
    attempts_seen = []

    @inngest_client.create_function(fn_id="flaky", trigger=ORDER_PLACED, retries=3)
    def handler(ctx):
        attempts_seen.append(ctx.attempt)
        return ctx.step.run("call-api", flaky)

    result = run_function(handler)
    assert result.status == "COMPLETED"
    assert result.output == "ok"
    assert result.attempts == {"call-api": 3}
    assert flaky.calls == 3
    # One pass per attempt, each replaying from the top with ctx.attempt counting failures.
    assert attempts_seen == [0, 1, 2]


def test_retries_exhausted_fail_the_run_with_the_step_error(inngest_client):
    flaky = Flaky(failures=10)

    @inngest_client.create_function(fn_id="down", trigger=ORDER_PLACED, retries=2)
    def handler(ctx):
        ctx.step.run("call-api", flaky)

    result = run_function(handler)
    assert result.status == "FAILED"
    assert isinstance(result.error, inngest.StepError)
    assert result.error.name == "ConnectionError"
    assert result.error.message == "attempt 3 failed"
    assert result.attempts == {"call-api": 3}
    assert isinstance(result.steps["call-api"], ConnectionError)
    with pytest.raises(inngest.StepError, match="attempt 3 failed"):
        result.raise_for_error()


def test_retries_argument_overrides_the_functions_own(inngest_client):
    flaky = Flaky(failures=10)

    @inngest_client.create_function(fn_id="down-fast", trigger=ORDER_PLACED, retries=5)
    def handler(ctx):
        ctx.step.run("call-api", flaky)

    assert run_function(handler, retries=0).attempts == {"call-api": 1}


def test_exception_stub_fails_each_attempt(inngest_client):
    @inngest_client.create_function(fn_id="stub-fail", trigger=ORDER_PLACED, retries=1)
    def handler(ctx):
        return ctx.step.run("charge", lambda: pytest.fail("stubbed steps do not run"))

    result = run_function(handler, step_stubs={"charge": ValueError("card declined")})
    assert result.status == "FAILED"
    assert result.error.name == "ValueError"
    assert result.attempts == {"charge": 2}


def test_exception_class_stub_is_a_clear_error(inngest_client):
    @inngest_client.create_function(fn_id="stub-class", trigger=ORDER_PLACED)
    def handler(ctx):
        return ctx.step.run("charge", lambda: 1)

    with pytest.raises(TypeError, match=r"stub an instance.*ValueError\('card declined'\)"):
        run_function(handler, step_stubs={"charge": ValueError})


def test_non_retriable_error_fails_the_step_at_once(inngest_client):
    def declined():
        raise inngest.NonRetriableError("card declined")

    @inngest_client.create_function(fn_id="declined", trigger=ORDER_PLACED, retries=4)
    def handler(ctx):
        ctx.step.run("charge", declined)

    result = run_function(handler)
    assert result.status == "FAILED"
    assert type(result.error) is inngest.NonRetriableError
    assert result.attempts == {"charge": 1}


def test_step_error_caught_by_the_handler_lets_the_run_complete(inngest_client):
    @inngest_client.create_function(fn_id="fallback", trigger=ORDER_PLACED, retries=1)
    def handler(ctx):
        try:
            ctx.step.run("primary", Flaky(failures=10))
        except inngest.StepError as exc:
            name = exc.name
            return ctx.step.run("fallback", lambda: f"fallback after {name}")
        return "primary"

    result = run_function(handler)
    assert result.status == "COMPLETED"
    assert result.output == "fallback after ConnectionError"
    assert result.attempts == {"primary": 2, "fallback": 1}


def test_handler_error_outside_steps_retries_the_handler(inngest_client):
    passes = []

    @inngest_client.create_function(fn_id="shaky", trigger=ORDER_PLACED, retries=2)
    def handler(ctx):
        passes.append(ctx.attempt)
        ctx.step.run("before", lambda: 1)
        if ctx.attempt < 2:
            raise RuntimeError("not yet")
        return "done"

    result = run_function(handler)
    assert result.status == "COMPLETED"
    assert passes == [0, 1, 2]
    assert result.attempts == {"before": 1}


def test_handler_error_past_retries_fails_the_run(inngest_client):
    @inngest_client.create_function(fn_id="broken", trigger=ORDER_PLACED, retries=1)
    def handler(ctx):
        raise KeyError("missing")

    result = run_function(handler)
    assert result.status == "FAILED"
    assert isinstance(result.error, KeyError)


def test_sleep_is_instant_and_replays_the_handler(inngest_client):
    passes = []

    @inngest_client.create_function(fn_id="sleepy", trigger=ORDER_PLACED)
    def handler(ctx):
        passes.append(ctx.step.replaying)
        ctx.step.run("first", lambda: 1)
        ctx.step.sleep("nap", timedelta(days=30))
        ctx.step.sleep_until("until", datetime.now(UTC) + timedelta(days=300))
        return ctx.step.run("second", lambda: 2)

    result = run_function(handler)
    assert result.status == "COMPLETED"
    assert result.output == 2
    assert list(result.steps.items()) == [
        ("first", 1),
        ("nap", None),
        ("until", None),
        ("second", 2),
    ]
    # The first pass, then one after each sleep, which replays memoized steps first.
    assert passes == [False, True, True]


# -- waits, invokes and sends ------------------------------------------------------------------


def make_approval(client):
    @client.create_function(fn_id="approval", trigger=ORDER_PLACED)
    def approval(ctx):
        approved = ctx.step.wait_for_event(
            "wait-for-approval", event="shop/order.approved", timeout="1d", match="data.order_id"
        )
        if approved is None:
            return "expired"
        return f"approved by {approved.data['by']}"

    return approval


def test_wait_for_event_stubbed_with_an_event(inngest_client):
    approval = make_approval(inngest_client)
    stub = inngest.Event(name="shop/order.approved", data={"order_id": 7, "by": "ada"})

    result = run_function(approval, data={"order_id": 7}, step_stubs={"wait-for-approval": stub})
    assert result.output == "approved by ada"
    assert result.steps["wait-for-approval"].data == {"order_id": 7, "by": "ada"}


def test_wait_for_event_stubbed_with_a_dict_gets_the_awaited_name(inngest_client):
    approval = make_approval(inngest_client)
    stubs = {"wait-for-approval": {"data": {"order_id": 7, "by": "grace"}}}

    result = run_function(approval, data={"order_id": 7}, step_stubs=stubs)
    assert result.output == "approved by grace"
    assert result.steps["wait-for-approval"].name == "shop/order.approved"


def test_wait_for_event_stubbed_with_timeout_returns_none(inngest_client):
    approval = make_approval(inngest_client)
    result = run_function(approval, data={"order_id": 7}, step_stubs={"wait-for-approval": Timeout})
    assert result.output == "expired"
    assert result.steps == {"wait-for-approval": None}


def test_wait_stub_that_the_match_would_refuse_is_an_error(inngest_client):
    approval = make_approval(inngest_client)
    stubs = {"wait-for-approval": {"data": {"order_id": 8, "by": "ada"}}}

    with pytest.raises(ValueError, match=r"matches on data\.order_id"):
        run_function(approval, data={"order_id": 7}, step_stubs=stubs)


def test_wait_stub_with_another_event_name_is_an_error(inngest_client):
    approval = make_approval(inngest_client)
    stubs = {"wait-for-approval": {"name": "shop/order.rejected", "data": {"order_id": 7}}}

    with pytest.raises(ValueError, match="would never resolve it"):
        run_function(approval, data={"order_id": 7}, step_stubs=stubs)


def test_unstubbed_wait_names_the_step_and_what_to_stub(inngest_client):
    approval = make_approval(inngest_client)

    with pytest.raises(UnstubbedStepError, match="'wait-for-approval' waits for an event") as info:
        run_function(approval, data={"order_id": 7})
    assert info.value.step_key == "wait-for-approval"
    assert "step_stubs={'wait-for-approval':" in str(info.value)


def test_unstubbed_wait_cannot_be_swallowed_by_the_handler(inngest_client):
    @inngest_client.create_function(fn_id="swallow", trigger=ORDER_PLACED)
    def handler(ctx):
        try:
            ctx.step.wait_for_event("wait", event="a/b", timeout="1h")
        except Exception:
            return "swallowed"

    with pytest.raises(UnstubbedStepError):
        run_function(handler)


def make_checkout(client):
    @client.create_function(fn_id="charge", trigger=inngest.TriggerEvent(event="shop/charge"))
    def charge(ctx):
        return {"charged": True}

    @client.create_function(fn_id="checkout", trigger=ORDER_PLACED)
    def checkout(ctx):
        try:
            receipt = ctx.step.invoke("charge-card", function=charge, data={"amount": 5})
        except inngest.NonRetriableError as exc:
            return f"failed: {exc}"
        return receipt

    return checkout


def test_invoke_stubbed_returns_the_stub(inngest_client):
    result = run_function(make_checkout(inngest_client), step_stubs={"charge-card": {"id": "rc_1"}})
    assert result.output == {"id": "rc_1"}
    assert result.steps == {"charge-card": {"id": "rc_1"}}


def test_invoke_stubbed_with_timeout_or_an_error_fails_non_retriably(inngest_client):
    checkout = make_checkout(inngest_client)

    timed_out = run_function(checkout, step_stubs={"charge-card": Timeout})
    assert timed_out.output == "failed: invoke 'charge-card' timed out; the invoked run goes on"

    failed = run_function(checkout, step_stubs={"charge-card": RuntimeError("card declined")})
    assert failed.output == "failed: invoked function test-charge failed: card declined"
    assert isinstance(failed.steps["charge-card"], inngest.NonRetriableError)


def test_unstubbed_invoke_names_the_step_and_the_function(inngest_client):
    with pytest.raises(UnstubbedStepError) as info:
        run_function(make_checkout(inngest_client))
    message = str(info.value)
    assert "step 'charge-card' invokes 'test-charge'" in message
    assert "step_stubs={'charge-card': <what test-charge returns>}" in message


def test_invoke_of_a_deferred_or_unknown_function_fails_as_in_the_worker(inngest_client):
    @inngest_client.create_defer(id="cleanup")
    def cleanup(ctx):
        return None

    @inngest_client.create_function(fn_id="invoker", trigger=ORDER_PLACED)
    def invoker(ctx):
        ctx.step.invoke("call", function=ctx.event.data["target"])

    stubs = {"call": "never returned"}
    deferred = run_function(invoker, data={"target": "test-cleanup"}, step_stubs=stubs)
    assert deferred.status == "FAILED"
    assert "is a deferred function, started only by ctx.defer" in str(deferred.error)
    unknown = run_function(invoker, data={"target": "test-nowhere"}, step_stubs=stubs)
    assert "no registered function has the id 'test-nowhere'" in str(unknown.error)


def test_send_event_records_events_and_returns_ids(inngest_client):
    @inngest_client.create_function(fn_id="fan-out", trigger=ORDER_PLACED)
    def fan_out(ctx):
        return ctx.step.send_event(
            "notify",
            [
                {"name": "shop/email.requested", "data": {"to": "a@example.com"}},
                inngest.Event(name="shop/audit.logged", data={"what": "order"}),
            ],
        )

    result = run_function(fan_out)
    assert result.status == "COMPLETED"
    assert len(result.output) == 2 and all(isinstance(i, str) and i for i in result.output)
    assert [(e.name, e.data) for e in result.sent_events] == [
        ("shop/email.requested", {"to": "a@example.com"}),
        ("shop/audit.logged", {"what": "order"}),
    ]
    assert all(e.ts > 0 for e in result.sent_events)


def test_send_event_stubbed_sends_nothing(inngest_client):
    @inngest_client.create_function(fn_id="fan-out-stubbed", trigger=ORDER_PLACED)
    def fan_out(ctx):
        return ctx.step.send_event("notify", {"name": "a/b", "data": {}})

    result = run_function(fan_out, step_stubs={"notify": ["evt_1"]})
    assert result.output == ["evt_1"]
    assert result.sent_events == []


def test_send_event_with_a_reserved_name_fails_like_the_real_send(inngest_client):
    @inngest_client.create_function(fn_id="fan-out-bad", trigger=ORDER_PLACED)
    def fan_out(ctx):
        return ctx.step.send_event("notify", {"name": "inngest/function.failed"})

    result = run_function(fan_out)
    assert result.status == "FAILED"
    assert "is reserved" in str(result.error)
    assert result.attempts == {"notify": 1}


# -- ctx.defer ---------------------------------------------------------------------------------


class Refund(BaseModel):
    charge_id: str
    amount: int


class Release(BaseModel):
    sku: str
    quantity: int


def make_process_order(client):
    """Seed 002's process-order: register a cleanup after each step, cancel both at the end."""

    @client.create_defer(id="refund-payment", schema=Refund, retries=3)
    def refund_payment(ctx):
        refund: Refund = ctx.event.data
        return ctx.step.run(
            "issue-refund", lambda: f"refunded {refund.amount} of {refund.charge_id}"
        )

    @client.create_defer(id="release-inventory", schema=Release)
    def release_inventory(ctx):
        return ctx.step.run("release", lambda: ctx.event.data.quantity)

    @client.create_function(
        fn_id="process-order", trigger=inngest.TriggerEvent(event="order/placed"), retries=2
    )
    def process_order(ctx):
        data = ctx.event.data
        charge = ctx.step.run("charge-card", lambda: {"id": "ch_1", "amount": data["total"]})
        refund = ctx.defer(
            "refund-if-failed",
            function=refund_payment,
            data={"charge_id": charge["id"], "amount": charge["amount"]},
        )
        allocation = ctx.step.run("allocate-inventory", lambda: {"sku": data["sku"]})
        release = ctx.defer(
            "release-if-failed",
            function=release_inventory,
            data={"sku": data["sku"], "quantity": data["quantity"]},
        )
        ctx.step.run("create-shipment", lambda: f"label for {allocation['sku']}")
        refund.cancel()
        release.cancel()
        return {"status": "shipped", "charge_id": charge["id"]}

    return process_order, refund_payment


ORDER = {"total": 30, "sku": "mug", "quantity": 2}


def test_process_order_success_cancels_both_cleanups(inngest_client):
    process_order, _ = make_process_order(inngest_client)

    result = run_function(process_order, data=ORDER)
    assert result.status == "COMPLETED"
    assert result.output == {"status": "shipped", "charge_id": "ch_1"}
    assert result.defers == [
        DeferCall(
            "refund-if-failed",
            "test-refund-payment",
            {"charge_id": "ch_1", "amount": 30},
            cancelled=True,
        ),
        DeferCall(
            "release-if-failed",
            "test-release-inventory",
            {"sku": "mug", "quantity": 2},
            cancelled=True,
        ),
    ]
    assert result.scheduled == []


def test_process_order_failure_schedules_both_cleanups(inngest_client):
    process_order, refund_payment = make_process_order(inngest_client)

    result = run_function(
        process_order, data=ORDER, step_stubs={"create-shipment": ConnectionError("no carrier")}
    )
    assert result.status == "FAILED"
    assert result.error.name == "ConnectionError"
    assert result.attempts["create-shipment"] == 3
    assert [call.defer_id for call in result.scheduled] == ["refund-if-failed", "release-if-failed"]

    # What was scheduled runs next, with this run as its parent.
    refund = result.scheduled[0]
    assert refund.function is refund_payment
    assert refund.parent == inngest.Parent(fn_slug="test-process-order", run_id="test-run")
    cleanup = run_function(refund.function, data=refund.data, parent=refund.parent)
    assert cleanup.output == "refunded 30 of ch_1"


def test_defer_inside_a_failed_step_is_forgotten_like_a_rollback(inngest_client):
    _, refund_payment = make_process_order(inngest_client)
    flaky = Flaky(failures=1)

    @inngest_client.create_function(fn_id="defer-in-step", trigger=ORDER_PLACED, retries=1)
    def handler(ctx):
        def charge():
            ctx.defer("refund", function=refund_payment, data={"charge_id": "x", "amount": 1})
            return flaky()

        ctx.step.run("charge", charge)

    result = run_function(handler)
    assert result.status == "COMPLETED"
    assert [call.defer_id for call in result.scheduled] == ["refund"]
    assert flaky.calls == 2


def test_duplicate_defer_ids_keep_the_first_call(inngest_client, caplog):
    _, refund_payment = make_process_order(inngest_client)

    @inngest_client.create_function(fn_id="twice", trigger=ORDER_PLACED)
    def handler(ctx):
        ctx.defer("refund", function=refund_payment, data={"charge_id": "first", "amount": 1})
        ctx.defer("refund", function=refund_payment, data={"charge_id": "second", "amount": 2})

    with caplog.at_level(logging.WARNING, logger="inngest_django.defers"):
        result = run_function(handler)
    assert [call.data["charge_id"] for call in result.defers] == ["first"]
    assert "duplicate id within run" in caplog.text


def test_invalid_defer_is_rejected_and_the_run_carries_on(inngest_client):
    _, refund_payment = make_process_order(inngest_client)

    @inngest_client.create_function(fn_id="bad-defer", trigger=ORDER_PLACED)
    def handler(ctx):
        ctx.defer("refund", function=refund_payment, data={"charge_id": "x"})
        ctx.defer("not-deferred", function=handler, data={})
        return "still ran"

    result = run_function(handler)
    assert result.output == "still ran"
    assert result.defers == []
    assert [(r.defer_id, r.function_id) for r in result.rejected_defers] == [
        ("refund", "test-refund-payment"),
        ("not-deferred", "test-bad-defer"),
    ]
    assert "schema validation failed" in result.rejected_defers[0].reason
    assert isinstance(result.rejected_defers[1], RejectedDefer)
    assert "was not created with create_defer" in result.rejected_defers[1].reason


def test_deferred_function_gets_typed_data_and_a_placeholder_parent(inngest_client):
    seen = {}

    @inngest_client.create_defer(id="typed", schema=Refund)
    def typed(ctx):
        seen["event"] = ctx.event
        seen["parents"] = ctx.parents
        return ctx.event.data.amount

    result = run_function(typed, {"data": {"charge_id": "ch_9", "amount": "12"}})
    assert result.output == 12
    assert seen["event"].name == "inngest/deferred.schedule"
    assert seen["event"].data == Refund(charge_id="ch_9", amount=12)
    assert seen["parents"] == [inngest.Parent(fn_slug="test", run_id="test-parent-run")]


def test_deferred_function_with_data_the_schema_refuses_fails_at_once(inngest_client):
    ran = []

    @inngest_client.create_defer(id="typed-strict", schema=Refund, retries=4)
    def typed(ctx):
        ran.append(True)

    result = run_function(typed, data={"charge_id": "ch_9"})
    assert result.status == "FAILED"
    assert isinstance(result.error, inngest.NonRetriableError)
    assert "schema validation failed" in str(result.error)
    assert ran == []


def test_deferred_function_parent_can_be_given(inngest_client):
    @inngest_client.create_defer(id="with-parent")
    def with_parent(ctx):
        parent = ctx.parents[0]
        return [parent.fn_slug, parent.run_id, parent.experiment.variant]

    parent = {
        "fn_slug": "shop-checkout",
        "run_id": "run-42",
        "experiment": {"experiment_name": "checkout", "variant": "b"},
    }
    assert run_function(with_parent, data={}, parent=parent).output == [
        "shop-checkout",
        "run-42",
        "b",
    ]


def test_experiment_variant_reaches_the_defer(inngest_client):
    @inngest_client.create_defer(id="score")
    def score(ctx):
        return None

    @inngest_client.create_function(fn_id="checkout-ab", trigger=ORDER_PLACED)
    def checkout(ctx):
        chosen = ctx.group.experiment(
            "checkout-flow",
            variants={
                "old": lambda: ctx.step.run("old-checkout", lambda: "old"),
                "new": lambda: ctx.step.run("new-checkout", lambda: "new"),
            },
            select=experiment.weighted({"old": 1, "new": 1}),
        )
        ctx.defer("score", function=score, data={}, experiment=chosen.experiment_ref)
        return chosen.result

    forced = run_function(checkout, step_stubs={"checkout-flow": "new"})
    assert forced.output == "new"
    assert list(forced.steps) == ["checkout-flow", "new-checkout"]
    ref = inngest.ExperimentRef(experiment_name="checkout-flow", variant="new")
    assert forced.defers[0].experiment == ref
    assert forced.defers[0].parent.experiment == ref

    fixed = run_function(checkout, step_stubs={"checkout-flow": "old"})
    assert fixed.output == "old"

    # Unstubbed, the strategy picks from the run id, so a run id pins the variant.
    first = run_function(checkout, run_id="run-1")
    assert first.output == run_function(checkout, run_id="run-1").output


# -- triggers and arguments --------------------------------------------------------------------


def test_event_that_matches_no_trigger_is_an_error(inngest_client):
    @inngest_client.create_function(
        fn_id="big-orders",
        trigger=inngest.TriggerEvent(
            event="shop/order.placed", expression="event.data.total > 100"
        ),
    )
    def handler(ctx):
        return None

    with pytest.raises(ValueError, match=r"would not run for event 'shop/order\.placed'"):
        run_function(handler, data={"total": 5})
    with pytest.raises(ValueError, match="would not run for event 'shop/other'"):
        run_function(handler, {"name": "shop/other", "data": {"total": 500}})
    assert run_function(handler, data={"total": 500}).status == "COMPLETED"


def test_batch_of_events_reaches_ctx_events(inngest_client):
    @inngest_client.create_function(fn_id="batch", trigger=ORDER_PLACED)
    def handler(ctx):
        return [e.data["n"] for e in ctx.events]

    events = [{"data": {"n": 1}}, inngest.Event(name="shop/order.placed", data={"n": 2})]
    assert run_function(handler, events=events).output == [1, 2]


def test_cron_function_gets_a_scheduled_timer_event(inngest_client):
    @inngest_client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 3 * * *"))
    def nightly(ctx):
        return [ctx.event.name, ctx.event.data]

    assert run_function(nightly).output == ["inngest/scheduled.timer", {"cron": "0 3 * * *"}]


def test_function_with_several_triggers_needs_a_named_event(inngest_client):
    @inngest_client.create_function(
        fn_id="several",
        trigger=[inngest.TriggerEvent(event="a/one"), inngest.TriggerEvent(event="a/two")],
    )
    def handler(ctx):
        return ctx.event.name

    with pytest.raises(TypeError, match="has no name"):
        run_function(handler, data={})
    assert run_function(handler, {"name": "a/two"}).output == "a/two"


def test_wrong_arguments_are_type_errors(inngest_client):
    @inngest_client.create_function(fn_id="args", trigger=ORDER_PLACED)
    def handler(ctx):
        return None

    with pytest.raises(TypeError, match="takes the Function"):
        run_function(handler.handler, data={})
    with pytest.raises(TypeError, match="one of event, events or data"):
        run_function(handler, {"data": {}}, data={})
    with pytest.raises(TypeError, match="non-empty list"):
        run_function(handler, events=[])


def test_run_function_needs_no_database(inngest_client):
    # pytest-django blocks the database in tests without the django_db mark: a step that
    # queried would fail this run, so every COMPLETED run in this module made no query.
    @inngest_client.create_function(fn_id="queries", trigger=ORDER_PLACED, retries=0)
    def handler(ctx):
        return ctx.step.run("count-orders", Order.objects.count)

    result = run_function(handler)
    assert result.status == "FAILED"
    assert "Database access not allowed" in str(result.error)

    stubbed = run_function(handler, step_stubs={"count-orders": 3})
    assert stubbed.output == 3


def test_on_failure_handler_runs_for_its_functions_failed_event(inngest_client):
    def on_failure(ctx):
        return f"cleaning up after {ctx.event.data['error']['message']}"

    @inngest_client.create_function(fn_id="fragile", trigger=ORDER_PLACED, on_failure=on_failure)
    def fragile(ctx):
        return None

    failed = {
        "name": "inngest/function.failed",
        "data": {"function_id": "test-fragile", "error": {"message": "boom"}},
    }
    result = run_function(fragile.on_failure_fn, failed)
    assert result.output == "cleaning up after boom"

    other = {**failed, "data": {**failed["data"], "function_id": "test-other"}}
    with pytest.raises(ValueError, match="would not run"):
        run_function(fragile.on_failure_fn, other)


def test_timeout_stub_on_a_run_step_is_a_clear_error(inngest_client):
    @inngest_client.create_function(fn_id="timeout-run", trigger=ORDER_PLACED)
    def handler(ctx):
        return ctx.step.run("charge", lambda: 1)

    with pytest.raises(TypeError, match="not a wait_for_event or an invoke"):
        run_function(handler, step_stubs={"charge": Timeout})


def test_status_is_a_plain_string(inngest_client):
    @inngest_client.create_function(fn_id="plain-status", trigger=ORDER_PLACED)
    def handler(ctx):
        return None

    assert type(run_function(handler).status) is str
