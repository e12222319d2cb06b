"""Cancelling runs: cancel rules on events, cancel_run, and start and finish timeouts."""

from __future__ import annotations

import time

import pytest

import inngest_django as inngest
from inngest_django.models import Event, Wait
from tests.helpers import runs_of, the_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def reminders(inngest_client):
    """A reminder that sleeps, cancelled when its order is paid (cancel rule with if_exp)."""
    undone = []

    @inngest.create_defer(inngest_client, id="undo-hold")
    def undo_hold(ctx):
        undone.append(ctx.parents[0].run_id)

    @inngest_client.create_function(
        fn_id="remind",
        trigger=inngest.TriggerEvent(event="shop/cart.abandoned"),
        cancel=[
            inngest.Cancel(event="shop/order.paid", if_exp="event.data.cart == async.data.cart")
        ],
        on_failure=lambda ctx: pytest.fail("cancelled runs never call on_failure"),
    )
    def remind(ctx):
        ctx.defer("undo", function=undo_hold, data={})
        ctx.step.sleep("wait-a-day", "1d")
        return "reminded"

    return undone


def test_a_matching_event_cancels_the_run_and_its_defers_still_start(
    inngest_client, drain, reminders
):
    inngest_client.send(
        [
            inngest.Event(name="shop/cart.abandoned", data={"cart": "a"}),
            inngest.Event(name="shop/cart.abandoned", data={"cart": "b"}),
        ]
    )
    drain()
    inngest_client.send(inngest.Event(name="shop/order.paid", data={"cart": "b"}))
    drain()
    by_cart = {run.event.data["cart"]: run for run in runs_of("test-remind")}
    assert by_cart["a"].status == "SLEEPING"
    cancelled = by_cart["b"]
    assert cancelled.status == "CANCELLED"
    assert cancelled.cancel_reason.startswith("cancel rule: event shop/order.paid")
    assert reminders == [cancelled.pk]
    finished = Event.objects.get(name="inngest/function.cancelled")
    assert finished.data["run_id"] == cancelled.pk
    assert not runs_of("test-remind-failure")
    # The rule's wait on the cancelled run ended with it; the other run still listens.
    assert Wait.objects.pending().filter(run=cancelled).count() == 0
    assert Wait.objects.pending().filter(run=by_cart["a"]).count() == 1


def test_only_events_after_the_trigger_cancel(inngest_client, drain, reminders):
    inngest_client.send(inngest.Event(name="shop/order.paid", data={"cart": "c"}))
    inngest_client.send(inngest.Event(name="shop/cart.abandoned", data={"cart": "c"}))
    drain()
    assert the_run("test-remind").status == "SLEEPING"


def test_a_cancel_rule_with_a_timeout_stops_listening(inngest_client, drain, advance_clock):
    @inngest_client.create_function(
        fn_id="short-listen",
        trigger=inngest.TriggerEvent(event="t/start"),
        cancel=[inngest.Cancel(event="t/stop", timeout=50)],
    )
    def short_listen(ctx):
        ctx.step.sleep("nap", "1h")

    inngest_client.send(inngest.Event(name="t/start"))
    drain()
    advance_clock(0.1)
    inngest_client.send(inngest.Event(name="t/stop"))
    drain()
    assert the_run("test-short-listen").status == "SLEEPING"


def test_cancel_rules_are_validated(inngest_client):
    with pytest.raises(inngest.InvalidFunctionConfigError, match="limit is 5"):
        inngest_client.create_function(
            fn_id="too-many",
            trigger=inngest.TriggerEvent(event="t/x"),
            cancel=[inngest.Cancel(event=f"t/{i}") for i in range(6)],
        )(lambda ctx: None)
    with pytest.raises(ValueError, match="CEL"):
        inngest.Cancel(event="t/x", if_exp="event.data ==")
    with pytest.raises(ValueError, match="366 days"):
        inngest.Cancel(event="t/x", timeout="400d")


def test_finish_timeout_cancels_a_run_between_steps(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="slow-steps",
        trigger=inngest.TriggerEvent(event="t/slow-steps"),
        timeouts=inngest.Timeouts(finish="200ms"),
    )
    def slow_steps(ctx):
        for i in range(20):
            ctx.step.run(f"s{i}", time.sleep, 0.05)

    inngest_client.send(inngest.Event(name="t/slow-steps"))
    drain()
    run = the_run("test-slow-steps")
    assert run.status == "CANCELLED" and "timeouts.finish" in run.cancel_reason
    assert 3 <= run.steps.count() < 20


def test_finish_timeout_wakes_a_sleeping_run_to_cancel_it(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="long-nap",
        trigger=inngest.TriggerEvent(event="t/long-nap"),
        timeouts=inngest.Timeouts(finish="100ms"),
    )
    def long_nap(ctx):
        ctx.step.sleep("nap", "1h")

    inngest_client.send(inngest.Event(name="t/long-nap"))
    drain(timeout=2)
    run = the_run("test-long-nap")
    assert run.status == "CANCELLED" and "timeouts.finish" in run.cancel_reason


def test_start_timeout_cancels_a_run_that_waited_too_long_to_start(
    inngest_client, drain, advance_clock
):
    ran = []

    @inngest_client.create_function(
        fn_id="prompt",
        trigger=inngest.TriggerEvent(event="t/prompt"),
        timeouts=inngest.Timeouts(start="50ms"),
    )
    def prompt(ctx):
        ran.append(1)

    inngest_client.send(inngest.Event(name="t/prompt"))
    from inngest_django.events import dispatch_pending

    dispatch_pending()  # queued now; no worker claims it for a while
    advance_clock(0.1)
    drain()
    run = the_run("test-prompt")
    assert run.status == "CANCELLED" and "timeouts.start" in run.cancel_reason
    assert ran == []


def test_cancel_run_stops_a_waiting_run(inngest_client, drain):
    @inngest_client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="t/waiter"))
    def waiter(ctx):
        ctx.step.wait_for_event("w", event="t/never", timeout="1h")

    inngest_client.send(inngest.Event(name="t/waiter"))
    drain()
    run = the_run("test-waiter")
    assert run.status == "WAITING"
    assert inngest.cancel_run(run.pk)
    drain()
    run.refresh_from_db()
    assert run.status == "CANCELLED"
    assert not Wait.objects.pending().exists()
    assert inngest.cancel_run("no-such-run") is False


def test_finish_timeout_cancels_a_run_waiting_to_retry(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="retry-later",
        trigger=inngest.TriggerEvent(event="t/retry-later"),
        timeouts=inngest.Timeouts(finish="100ms"),
    )
    def retry_later(ctx):
        raise inngest.RetryAfterError("not yet", retry_after=3_600_000)

    inngest_client.send(inngest.Event(name="t/retry-later"))
    drain(timeout=2)
    run = the_run("test-retry-later")
    assert run.status == "CANCELLED" and "timeouts.finish" in run.cancel_reason


def test_cancel_run_records_its_reason(inngest_client, drain):
    @inngest_client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="t/napper"))
    def napper(ctx):
        ctx.step.sleep("nap", "1h")

    inngest_client.send(inngest.Event(name="t/napper"))
    drain()
    run = the_run("test-napper")
    assert inngest.cancel_run(run.pk, reason="support ticket 42")
    drain()
    run.refresh_from_db()
    assert (run.status, run.cancel_reason) == ("CANCELLED", "support ticket 42")


def test_wait_for_event_without_a_timeout_fails_at_once(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="no-timeout", trigger=inngest.TriggerEvent(event="t/no-to")
    )
    def no_timeout(ctx):
        ctx.step.wait_for_event("w", event="t/x")

    inngest_client.send(inngest.Event(name="t/no-to"))
    drain()
    run = the_run("test-no-timeout")
    assert run.status == "FAILED" and run.attempt == 0
    assert "needs a timeout" in run.error["message"]
