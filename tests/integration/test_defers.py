"""Deferred functions: seed 002's cleanup paths, durable intents, validation, limits, parents."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings
from pydantic import BaseModel, ConfigDict, field_validator

import inngest_django as inngest
from inngest_django.enums import DeferStatus
from inngest_django.models import DeferIntent, Event, FunctionRun, OutboxMessage, StepRun
from inngest_django.outbox import relay_pending
from tests.helpers import runs_of, the_run
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

DEFERS_LOGGER = "inngest_django.defers"


def limits(**values: object) -> override_settings:
    return override_settings(INNGEST_DJANGO={**settings.INNGEST_DJANGO, **values})


def intents(run: FunctionRun) -> dict[str, str]:
    return dict(run.defers.values_list("defer_id", "status"))


def defer_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == DEFERS_LOGGER]


class Charge(BaseModel):
    charge_id: str
    amount: int


class Stock(BaseModel):
    sku: str
    quantity: int


@pytest.fixture
def shop(inngest_client):
    """Seed 002: process-order with refund-payment and release-inventory cleanups."""
    calls: dict[str, list] = {"refund": [], "release": [], "shipment": []}
    behaviour = {"ship_fails": False, "refund_fails_once": False}

    @inngest.create_defer(inngest_client, id="refund-payment", schema=Charge, retries=2)
    def refund_payment(ctx):
        def refund():
            calls["refund"].append(ctx.event.data)
            if behaviour["refund_fails_once"] and len(calls["refund"]) == 1:
                raise ConnectionError("payment provider down")
            Order.objects.create(reference=ctx.parents[0].run_id, step_key="refund")
            return ctx.event.data.charge_id

        return ctx.step.run("issue-refund", refund)

    @inngest.create_defer(inngest_client, id="release-inventory", schema=Stock)
    def release_inventory(ctx):
        def release():
            calls["release"].append(ctx.event.data)
            Order.objects.create(reference=ctx.parents[0].run_id, step_key="release")

        ctx.step.run("release-stock", release)

    @inngest_client.create_function(
        fn_id="process-order", trigger=inngest.TriggerEvent(event="shop/order"), retries=2
    )
    def process_order(ctx):
        charge = ctx.step.run("charge-card", lambda: {"id": "ch_1", "amount": 500})
        refund = ctx.defer(
            "refund-if-failed",
            function=refund_payment,
            data={"charge_id": charge["id"], "amount": charge["amount"]},
        )
        allocation = ctx.step.run("allocate-inventory", lambda: {"sku": "sku-1", "quantity": 2})
        release = ctx.defer("release-if-failed", function=release_inventory, data=allocation)

        def create_shipment():
            calls["shipment"].append(1)
            if behaviour["ship_fails"]:
                raise RuntimeError("carrier rejected the label")
            return "label-1"

        ctx.step.run("create-shipment", create_shipment)
        refund.cancel()
        release.cancel()
        return {"status": "shipped", "charge_id": charge["id"]}

    return calls, behaviour


def test_success_path_cancels_both_cleanups_and_starts_no_deferred_run(inngest_client, drain, shop):
    calls, _ = shop
    inngest_client.send(inngest.Event(name="shop/order"))
    drain()
    parent = the_run("test-process-order")
    assert parent.status == "COMPLETED", parent.error
    assert intents(parent) == {
        "refund-if-failed": DeferStatus.CANCELLED,
        "release-if-failed": DeferStatus.CANCELLED,
    }
    assert OutboxMessage.objects.count() == 0
    assert not FunctionRun.objects.filter(defer_intent__isnull=False).exists()
    assert calls["refund"] == [] and calls["release"] == []


def test_failure_path_runs_each_cleanup_once_with_its_own_retries(inngest_client, drain, shop):
    calls, behaviour = shop
    behaviour.update(ship_fails=True, refund_fails_once=True)
    inngest_client.send(inngest.Event(name="shop/order"))
    drain()
    parent = the_run("test-process-order")
    assert parent.status == "FAILED"
    assert parent.error["message"] == "carrier rejected the label"
    assert len(calls["shipment"]) == 3  # retries=2: three attempts
    assert intents(parent) == {
        "refund-if-failed": DeferStatus.SCHEDULED,
        "release-if-failed": DeferStatus.SCHEDULED,
    }
    refund, release = the_run("test-refund-payment"), the_run("test-release-inventory")
    assert (refund.status, release.status) == ("COMPLETED", "COMPLETED")
    assert refund.parent_run_id == release.parent_run_id == parent.pk
    assert refund.defer_intent.defer_id == "refund-if-failed"
    # The refund failed once and succeeded on its own retry; each cleanup wrote exactly once.
    assert len(calls["refund"]) == 2 and len(calls["release"]) == 1
    assert StepRun.objects.get(run=refund, step_key="issue-refund").attempts == 2
    assert sorted(Order.objects.filter(reference=parent.pk).values_list("step_key", flat=True)) == [
        "refund",
        "release",
    ]
    # Deferred runs start only after the parent finished, and never change it.
    assert refund.created_at >= parent.finished_at and release.created_at >= parent.finished_at
    parent.refresh_from_db()
    assert parent.status == "FAILED"
    assert refund.event.name == "inngest/deferred.schedule"


def test_cancelled_parent_still_starts_its_pending_cleanups(inngest_client, drain):
    cleaned = []

    @inngest.create_defer(inngest_client, id="undo")
    def undo(ctx):
        cleaned.append(ctx.event.data)

    @inngest_client.create_function(
        fn_id="slow-order", trigger=inngest.TriggerEvent(event="t/slow")
    )
    def slow_order(ctx):
        ctx.step.run("reserve", lambda: 1)
        keep = ctx.defer("undo-reserve", function=undo, data={"what": "reserve"})
        dropped = ctx.defer("undo-other", function=undo, data={"what": "other"})
        dropped.cancel()
        ctx.step.sleep("wait", "1h")
        keep.cancel()

    @inngest_client.create_function(
        fn_id="slow-failure",
        trigger=inngest.TriggerEvent(event="inngest/function.failed"),
    )
    def on_any_failure(ctx):
        pytest.fail("a cancelled run must not count as failed")

    inngest_client.send(inngest.Event(name="t/slow"))
    drain()
    parent = the_run("test-slow-order")
    assert parent.status == "SLEEPING"
    # Made outside steps, the intents and the cancel were written with the sleep.
    assert intents(parent) == {"undo-reserve": "PENDING", "undo-other": "CANCELLED"}
    assert inngest.cancel_run(parent.pk) is True
    assert inngest.cancel_run(parent.pk) is False  # asked already
    drain()
    parent.refresh_from_db()
    assert parent.status == "CANCELLED"
    assert cleaned == [{"what": "reserve"}]
    assert the_run("test-undo").parent_run_id == parent.pk
    cancelled = Event.objects.get(name="inngest/function.cancelled")
    assert cancelled.data["run_id"] == parent.pk
    assert not runs_of("test-slow-failure")
    assert inngest.cancel_run(parent.pk) is False  # finished


def test_a_running_run_stops_at_its_next_step_once_cancelled(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="after")
    def after(ctx):
        return "ran"

    @inngest_client.create_function(fn_id="long", trigger=inngest.TriggerEvent(event="t/long"))
    def long(ctx):
        ctx.defer("after-long", function=after, data={})
        ctx.step.run("first", lambda: inngest.cancel_run(ctx.run_id))
        ctx.step.run("second", lambda: pytest.fail("a cancelled run must not start a step"))

    inngest_client.send(inngest.Event(name="t/long"))
    with limits(CANCEL_CHECK_SECONDS=0):
        drain()
    parent = the_run("test-long")
    assert parent.status == "CANCELLED"
    assert list(parent.steps.values_list("step_key", flat=True)) == ["first"]
    assert the_run("test-after").status == "COMPLETED"


def test_defer_before_a_sleep_is_found_again_on_the_replay(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="notify")
    def notify(ctx):
        return ctx.event.data

    @inngest_client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="t/nap"))
    def napper(ctx):
        ctx.defer("notify-once", function=notify, data={"n": 1})
        ctx.step.sleep("nap", 20)
        return "awake"

    inngest_client.send(inngest.Event(name="t/nap"))
    drain()
    parent = the_run("test-napper")
    assert parent.status == "COMPLETED"
    assert parent.steps.get(step_key="nap").status == "COMPLETED"  # two passes ran
    assert intents(parent) == {"notify-once": "SCHEDULED"}
    assert [run.output for run in runs_of("test-notify")] == [{"n": 1}]


def test_defer_inside_a_step_that_fails_once_is_written_once(inngest_client, drain):
    attempts = []

    @inngest.create_defer(inngest_client, id="audit")
    def audit(ctx):
        return "audited"

    @inngest_client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="t/flaky"))
    def flaky(ctx):
        def charge():
            attempts.append(1)
            ctx.defer("audit-charge", function=audit, data={"attempt": len(attempts)})
            if len(attempts) == 1:
                raise ConnectionError("timeout")
            return "charged"

        return ctx.step.run("charge", charge)

    inngest_client.send(inngest.Event(name="t/flaky"))
    drain()
    parent = the_run("test-flaky")
    assert parent.status == "COMPLETED" and len(attempts) == 2
    # The first attempt's intent rolled back with its step; the second one's is the only one.
    assert list(parent.defers.values_list("defer_id", "payload")) == [
        ("audit-charge", {"attempt": 2})
    ]
    assert len(runs_of("test-audit")) == 1


def test_a_step_that_fails_for_good_leaves_no_intent(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="never")
    def never(ctx):
        pytest.fail("the intent rolled back with its step")

    @inngest_client.create_function(
        fn_id="catches", trigger=inngest.TriggerEvent(event="t/catch"), retries=0
    )
    def catches(ctx):
        def doomed():
            ctx.defer("inside", function=never, data={})
            raise ValueError("no")

        try:
            ctx.step.run("doomed", doomed)
        except inngest.StepError:
            return "caught"

    inngest_client.send(inngest.Event(name="t/catch"))
    drain()
    parent = the_run("test-catches")
    assert parent.output == "caught"
    assert not parent.defers.exists() and not runs_of("test-never")


def test_duplicate_id_starts_one_run_and_warns_once(inngest_client, drain, caplog):
    @inngest.create_defer(inngest_client, id="mail")
    def mail(ctx):
        return ctx.event.data["n"]

    @inngest_client.create_function(fn_id="dup", trigger=inngest.TriggerEvent(event="t/dup"))
    def dup(ctx):
        ctx.defer("same", function=mail, data={"n": 1})
        ctx.defer("same", function=mail, data={"n": 2})
        ctx.step.sleep("replay-me", 10)

    inngest_client.send(inngest.Event(name="t/dup"))
    with caplog.at_level(logging.INFO, logger=DEFERS_LOGGER):
        drain()
    parent = the_run("test-dup")
    assert [run.output for run in runs_of("test-mail")] == [1]
    duplicates = [
        r
        for r in defer_logs(caplog)
        if r.action == "defer_duplicate" and r.levelno == logging.WARNING
    ]
    # Two passes reach the second call; only the pass that recorded the first one warns.
    assert parent.steps.get(step_key="replay-me").status == "COMPLETED"
    assert [(r.run_id, r.defer_id) for r in duplicates] == [(parent.pk, "same")]
    assert parent.pk in duplicates[0].getMessage() and "same" in duplicates[0].getMessage()


@pytest.mark.parametrize("where", ["inside-step", "outside-step", "twice"])
def test_cancel_inside_or_outside_a_step_or_twice_starts_nothing(inngest_client, drain, where):
    @inngest.create_defer(inngest_client, id="target")
    def target(ctx):
        pytest.fail("cancelled defers never run")

    @inngest_client.create_function(
        fn_id="canceller", trigger=inngest.TriggerEvent(event="t/cancel")
    )
    def canceller(ctx):
        if where == "inside-step":

            def defer_and_cancel():
                ctx.defer("x", function=target, data={}).cancel()

            ctx.step.run("both", defer_and_cancel)
            return None
        handle = ctx.defer("x", function=target, data={})
        ctx.step.run("work", lambda: 1)
        handle.cancel()
        if where == "twice":
            handle.abort()
            ctx.step.sleep("later", 10)
            handle.cancel()
        return None

    inngest_client.send(inngest.Event(name="t/cancel"))
    drain()
    parent = the_run("test-canceller")
    assert parent.status == "COMPLETED"
    assert intents(parent) == {"x": "CANCELLED"}
    assert not runs_of("test-target") and not OutboxMessage.objects.exists()


def test_cancel_after_the_run_finished_is_harmless(inngest_client, drain):
    handles = []

    @inngest.create_defer(inngest_client, id="late")
    def late(ctx):
        return "ran"

    @inngest_client.create_function(fn_id="keeper", trigger=inngest.TriggerEvent(event="t/keep"))
    def keeper(ctx):
        handles.append(ctx.defer("late", function=late, data={}))

    inngest_client.send(inngest.Event(name="t/keep"))
    drain()
    handles[0].cancel()
    handles[0].abort()
    drain()
    assert the_run("test-late").status == "COMPLETED"
    assert intents(the_run("test-keeper")) == {"late": "SCHEDULED"}


class StrictStamp(BaseModel):
    model_config = ConfigDict(strict=True)
    at: datetime


class AsyncChecked(BaseModel):
    to: str

    @field_validator("to")
    @classmethod
    async def check_to(cls, value: str) -> str:
        return value


def test_call_site_problems_are_logged_skipped_and_the_parent_completes(
    inngest_client, drain, caplog
):
    @inngest.create_defer(inngest_client, id="typed", schema=Charge)
    def typed(ctx):
        pytest.fail("a rejected defer never runs")

    @inngest.create_defer(inngest_client, id="async-typed", schema=AsyncChecked)
    def async_typed(ctx):
        pytest.fail("a rejected defer never runs")

    @inngest.create_defer(inngest_client, id="untyped")
    def untyped(ctx):
        pytest.fail("a rejected defer never runs")

    @inngest_client.create_function(fn_id="plain", trigger=inngest.TriggerEvent(event="t/never"))
    def plain(ctx):
        return None

    @inngest_client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="t/caller"))
    def caller(ctx):
        ctx.defer("bad-schema", function=typed, data={"charge_id": "c", "amount": "lots"})
        ctx.defer("not-a-defer", function=plain, data={})
        ctx.defer("async-validator", function=async_typed, data={"to": "a@example.com"})
        ctx.defer("not-json", function=untyped, data={"when": object()})
        ctx.defer("not-a-dict", function=untyped, data=["a", "list"])
        ctx.defer("too-big", function=untyped, data={"blob": "x" * 200})
        ctx.defer("reserved", function=untyped, data={"_inngest": {}})
        ctx.defer("", function=untyped, data={})
        return "carried on"

    inngest_client.send(inngest.Event(name="t/caller"))
    with limits(MAX_DEFER_PAYLOAD_BYTES=100), caplog.at_level(logging.INFO, logger=DEFERS_LOGGER):
        drain()
    parent = the_run("test-caller")
    assert parent.status == "COMPLETED" and parent.output == "carried on"
    rows = {i.defer_id: i for i in parent.defers.all()}
    assert {k: v.status for k, v in rows.items()} == {
        name: "REJECTED"
        for name in (
            "bad-schema",
            "not-a-defer",
            "async-validator",
            "not-json",
            "not-a-dict",
            "too-big",
            "reserved",
        )
    }
    assert "schema validation failed" in rows["bad-schema"].reason
    assert "amount" in rows["bad-schema"].reason
    assert "was not created with create_defer" in rows["not-a-defer"].reason
    assert "asynchronous validator" in rows["async-validator"].reason
    assert "not JSON-serializable" in rows["not-json"].reason
    assert "JSON object" in rows["not-a-dict"].reason
    assert "MAX_DEFER_PAYLOAD_BYTES" in rows["too-big"].reason
    assert "reserved key" in rows["reserved"].reason
    assert all(row.payload is None for row in rows.values())
    messages = [r.getMessage() for r in defer_logs(caplog)]
    for defer_id, row in rows.items():
        logged = [m for m in messages if f"defer_id={defer_id}" in m]
        assert logged and parent.pk in logged[0] and row.reason in logged[0], defer_id
    assert any("defer id must be a non-empty string" in m for m in messages)
    assert not FunctionRun.objects.filter(defer_intent__isnull=False).exists()


def test_default_payload_limit_is_4_mib(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="big")
    def big(ctx):
        return len(ctx.event.data["blob"])

    @inngest_client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="t/big"))
    def sender(ctx):
        ctx.defer("fits", function=big, data={"blob": "x" * (4 * 1024 * 1024 - 100)})
        ctx.defer("over", function=big, data={"blob": "x" * (4 * 1024 * 1024)})

    inngest_client.send(inngest.Event(name="t/big"))
    drain()
    assert intents(the_run("test-sender")) == {"fits": "SCHEDULED", "over": "REJECTED"}
    assert [run.output for run in runs_of("test-big")] == [4 * 1024 * 1024 - 100]


def test_at_most_20_defers_and_4_mib_per_run(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="count")
    def count(ctx):
        return ctx.event.data["i"]

    @inngest_client.create_function(fn_id="many", trigger=inngest.TriggerEvent(event="t/many"))
    def many(ctx):
        for i in range(22):
            ctx.defer(f"d{i}", function=count, data={"i": i})

    @inngest_client.create_function(fn_id="heavy", trigger=inngest.TriggerEvent(event="t/heavy"))
    def heavy(ctx):
        first = ctx.defer("a", function=count, data={"i": 0, "pad": "x" * 600})
        ctx.defer("b", function=count, data={"i": 1, "pad": "x" * 600})
        first.cancel()  # releases its bytes
        ctx.defer("c", function=count, data={"i": 2, "pad": "x" * 600})

    inngest_client.send([inngest.Event(name="t/many"), inngest.Event(name="t/heavy")])
    with limits(MAX_DEFER_PAYLOAD_BYTES_PER_RUN=1300):
        drain()
    statuses = intents(the_run("test-many"))
    assert [statuses[f"d{i}"] for i in range(22)] == ["SCHEDULED"] * 20 + ["REJECTED"] * 2
    rejected = the_run("test-many").defers.get(defer_id="d20")
    assert "MAX_DEFERS_PER_RUN" in rejected.reason
    heavy_intents = intents(the_run("test-heavy"))
    assert heavy_intents == {"a": "CANCELLED", "b": "SCHEDULED", "c": "SCHEDULED"}
    assert sorted(run.output for run in runs_of("test-count")) == sorted([*range(20), 1, 2])


def test_over_the_aggregate_limit_is_rejected(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="agg")
    def agg(ctx):
        return None

    @inngest_client.create_function(fn_id="agg-parent", trigger=inngest.TriggerEvent(event="t/agg"))
    def agg_parent(ctx):
        ctx.defer("a", function=agg, data={"pad": "x" * 600})
        ctx.defer("b", function=agg, data={"pad": "x" * 600})
        ctx.defer("c", function=agg, data={"pad": "x" * 600})

    inngest_client.send(inngest.Event(name="t/agg"))
    with limits(MAX_DEFER_PAYLOAD_BYTES_PER_RUN=1300):
        drain()
    parent = the_run("test-agg-parent")
    assert intents(parent) == {"a": "SCHEDULED", "b": "SCHEDULED", "c": "REJECTED"}
    assert "MAX_DEFER_PAYLOAD_BYTES_PER_RUN" in parent.defers.get(defer_id="c").reason


def test_receiver_side_mismatch_fails_the_deferred_run_once_without_touching_the_parent(
    inngest_client, drain
):
    @inngest.create_defer(inngest_client, id="stamp", schema=StrictStamp, retries=3)
    def stamp(ctx):
        pytest.fail("the handler never sees data its schema rejects")

    @inngest_client.create_function(
        fn_id="stamper",
        trigger=inngest.TriggerEvent(event="t/stamp"),
        on_failure=lambda ctx: Order.objects.create(reference="on-failure"),
    )
    def stamper(ctx):
        # Valid here (a datetime), an ISO string after the JSON round trip: strict rejects it.
        ctx.defer("stamp", function=stamp, data={"at": datetime(2026, 1, 2, tzinfo=UTC)})
        return "ok"

    inngest_client.send(inngest.Event(name="t/stamp"))
    drain()
    parent = the_run("test-stamper")
    assert parent.status == "COMPLETED" and parent.output == "ok"
    deferred = the_run("test-stamp")
    assert deferred.status == "FAILED" and deferred.attempt == 0
    assert deferred.error["name"] == "NonRetriableError"
    assert "schema validation failed" in deferred.error["message"]
    assert not deferred.steps.exists()
    assert not Order.objects.filter(reference="on-failure").exists()
    assert not runs_of("test-stamper-failure")


def test_failing_deferred_run_retries_on_its_own_and_never_touches_the_parent(
    inngest_client, drain
):
    attempts = []

    @inngest.create_defer(inngest_client, id="fragile", retries=1)
    def fragile(ctx):
        attempts.append(1)
        raise RuntimeError("fragile failed")

    @inngest.create_defer(inngest_client, id="sturdy")
    def sturdy(ctx):
        return "fine"

    @inngest_client.create_function(
        fn_id="origin",
        trigger=inngest.TriggerEvent(event="t/origin"),
        on_failure=lambda ctx: Order.objects.create(reference="origin-on-failure"),
    )
    def origin(ctx):
        ctx.defer("fragile", function=fragile, data={})
        ctx.defer("sturdy", function=sturdy, data={})
        return "done"

    inngest_client.send(inngest.Event(name="t/origin"))
    drain()
    assert the_run("test-origin").status == "COMPLETED"
    assert the_run("test-fragile").status == "FAILED" and len(attempts) == 2
    assert the_run("test-sturdy").status == "COMPLETED"
    assert not Order.objects.filter(reference="origin-on-failure").exists()


def test_parents_and_experiment_reach_the_deferred_handler(inngest_client, drain):
    seen = []

    @inngest.create_defer(inngest_client, id="scorer")
    def scorer(ctx):
        seen.append((ctx.event.name, ctx.event.data, ctx.parents, ctx.events))

    @inngest_client.create_function(fn_id="ab", trigger=inngest.TriggerEvent(event="t/ab"))
    def ab(ctx):
        chosen = ctx.group.experiment(
            "tone",
            variants={
                "formal": lambda: ctx.step.run("formal", lambda: "Dear customer"),
                "casual": lambda: ctx.step.run("casual", lambda: "Hey!"),
            },
            select=inngest.experiment.fixed("casual"),
        )
        ctx.defer(
            "score",
            function=scorer,
            data={"text": chosen.result},
            experiment=chosen.experiment_ref,
        )
        ctx.defer("score-plain", function=scorer, data={"text": "plain"})

    inngest_client.send(inngest.Event(name="t/ab"))
    drain()
    parent = the_run("test-ab")
    assert parent.status == "COMPLETED", parent.error
    by_text = {data["text"]: (name, parents, events) for name, data, parents, events in seen}
    name, parents, events = by_text["Hey!"]
    assert name == "inngest/deferred.schedule"
    assert parents == [
        inngest.Parent(
            fn_slug="test-ab",
            run_id=parent.pk,
            experiment=inngest.ExperimentRef(experiment_name="tone", variant="casual"),
        )
    ]
    assert events[0].data == {"text": "Hey!"}  # the parent metadata is stripped
    assert by_text["plain"][1] == [inngest.Parent(fn_slug="test-ab", run_id=parent.pk)]


def test_two_parents_deferring_to_one_function_start_independent_runs(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="shared")
    def shared(ctx):
        return ctx.parents[0].fn_slug

    for fn_id in ("left", "right"):

        @inngest_client.create_function(
            fn_id=fn_id, trigger=inngest.TriggerEvent(event=f"t/{fn_id}")
        )
        def parent(ctx):
            ctx.defer("to-shared", function=shared, data={})

    inngest_client.send([inngest.Event(name="t/left"), inngest.Event(name="t/right")])
    drain()
    runs = runs_of("test-shared")
    assert sorted(run.output for run in runs) == ["test-left", "test-right"]
    assert len({run.parent_run_id for run in runs}) == 2


def test_deferred_handlers_can_defer_too(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="leaf")
    def leaf(ctx):
        return ctx.parents[0].fn_slug

    @inngest.create_defer(inngest_client, id="middle")
    def middle(ctx):
        ctx.defer("to-leaf", function=leaf, data={})

    @inngest_client.create_function(fn_id="root", trigger=inngest.TriggerEvent(event="t/root"))
    def root(ctx):
        ctx.defer("to-middle", function=middle, data={})

    inngest_client.send(inngest.Event(name="t/root"))
    drain()
    assert the_run("test-leaf").output == "test-middle"
    assert the_run("test-leaf").parent_run_id == the_run("test-middle").pk


def test_intents_outside_steps_wait_for_the_next_durable_write(inngest_client, drain):
    observed = []

    @inngest.create_defer(inngest_client, id="probe-target")
    def probe_target(ctx):
        return None

    @inngest_client.create_function(fn_id="probe", trigger=inngest.TriggerEvent(event="t/probe"))
    def probe(ctx):
        ctx.defer("early", function=probe_target, data={})
        # Read outside the pass's transactions: nothing is written until the next step commits.
        observed.append(DeferIntent.objects.filter(run_id=ctx.run_id).count())
        ctx.step.run("commit", lambda: None)
        observed.append(DeferIntent.objects.filter(run_id=ctx.run_id).count())

    inngest_client.send(inngest.Event(name="t/probe"))
    drain()
    assert observed == [0, 1]


def test_a_relayed_row_never_starts_a_second_run(inngest_client, drain):
    @inngest.create_defer(inngest_client, id="once")
    def once(ctx):
        return None

    @inngest_client.create_function(
        fn_id="once-parent", trigger=inngest.TriggerEvent(event="t/once")
    )
    def once_parent(ctx):
        ctx.defer("only", function=once, data={})

    inngest_client.send(inngest.Event(name="t/once"))
    drain()
    intent = DeferIntent.objects.get()
    # A replayed relay (say, a row marked unrelayed by hand) finds the run already there.
    OutboxMessage.objects.update(relayed_at=None)
    with transaction.atomic():
        assert relay_pending() == 1
    assert FunctionRun.objects.filter(defer_intent=intent).count() == 1


def test_create_defer_refuses_trigger_on_failure_and_batch_events(inngest_client):
    for option, value in (
        ("trigger", inngest.TriggerEvent(event="t/x")),
        ("on_failure", lambda ctx: None),
        ("batch_events", inngest.Batch(max_size=10, timeout="1s")),
    ):
        with pytest.raises(inngest.InvalidFunctionConfigError, match=option):
            inngest.create_defer(inngest_client, id=f"bad-{option}", **{option: value})(
                lambda ctx: None
            )
    with pytest.raises(inngest.InvalidFunctionConfigError, match="pydantic model class"):
        inngest_client.create_defer(id="bad-schema", schema=dict)(lambda ctx: None)
    assert "test-bad-trigger" not in inngest_client.registry
