"""Fixtures the admin tests share: a non-staff login, and runs of each kind the admin shows."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from pydantic import BaseModel

import inngest_django as inngest
from inngest_django.events import dispatch_pending
from inngest_django.models import Event, FunctionRun
from tests.helpers import runs_of


@pytest.fixture
def non_staff_client(django_user_model) -> Client:
    """Return a Django test client logged in as a user who is not staff."""
    user = django_user_model.objects.create_user("plain", password="pw", is_staff=False)
    logged_in = Client()
    logged_in.force_login(user)
    return logged_in


@pytest.fixture
def runs(inngest_client, drain):
    """Return a completed run (its second step retried once), a failed run and a sleeping run."""
    copy_calls = []

    @inngest_client.create_function(
        fn_id="import-images", trigger=inngest.TriggerEvent(event="t/imported")
    )
    def import_images(ctx):
        urls = ctx.step.run("fetch-urls", lambda: ["a.png", "b.png"])

        def copy():
            copy_calls.append(1)
            if len(copy_calls) == 1:
                raise ValueError("bucket <busy>")
            return {"copied": len(urls)}

        return ctx.step.run("copy-images", copy)

    @inngest_client.create_function(
        fn_id="charge-card", trigger=inngest.TriggerEvent(event="t/ordered")
    )
    def charge_card(ctx):
        def charge():
            raise inngest.NonRetriableError("card <declined>")

        ctx.step.run("charge", charge)

    @inngest_client.create_function(
        fn_id="send-email", trigger=inngest.TriggerEvent(event="t/signed-up")
    )
    def send_email(ctx):
        ctx.step.run("send-welcome", lambda: "sent")
        ctx.step.sleep("wait-a-day", "1d")

    inngest_client.send(
        [
            inngest.Event(name="t/imported", data={"sku": "<script>alert(1)</script>"}),
            inngest.Event(name="t/ordered", data={"order": 7}, id="order-7"),
            inngest.Event(name="t/signed-up", data={"email": "ada@example.com"}),
        ]
    )
    drain()
    return SimpleNamespace(
        completed=FunctionRun.objects.get(function_id="test-import-images"),
        failed=FunctionRun.objects.get(function_id="test-charge-card"),
        sleeping=FunctionRun.objects.get(function_id="test-send-email"),
    )


class Refund(BaseModel):
    charge_id: str
    amount: int


@pytest.fixture
def defers(inngest_client, drain):
    """Return an order run that deferred a refund and a cancelled email, then failed, and more.

    Also a run whose defer was rejected by its schema, and the deferred refund run itself.
    """

    @inngest.create_defer(inngest_client, id="refund-payment", schema=Refund)
    def refund_payment(ctx):
        return ctx.step.run("issue-refund", lambda: {"refunded": ctx.event.data.amount})

    @inngest.create_defer(inngest_client, id="send-receipt")
    def send_receipt(ctx):
        return "sent"

    @inngest_client.create_function(
        fn_id="process-order", trigger=inngest.TriggerEvent(event="t/placed")
    )
    def process_order(ctx):
        charge = ctx.step.run("charge-card", lambda: "ch_<1>")
        ctx.defer(
            "refund-if-failed",
            function=refund_payment,
            data={"charge_id": charge, "amount": 4200},
        )
        receipt = ctx.defer("receipt", function=send_receipt, data={"to": "ada@example.com"})
        receipt.cancel()

        def ship():
            raise inngest.NonRetriableError("warehouse closed")

        ctx.step.run("create-shipment", ship)

    @inngest_client.create_function(
        fn_id="bad-refund", trigger=inngest.TriggerEvent(event="t/refused")
    )
    def bad_refund(ctx):
        ctx.defer("refund", function=refund_payment, data={"charge_id": "ch_2", "amount": "lots"})
        return "carried on"

    inngest_client.send([inngest.Event(name="t/placed"), inngest.Event(name="t/refused")])
    drain()
    parent = FunctionRun.objects.get(function_id="test-process-order")
    return SimpleNamespace(
        parent=parent,
        refund=parent.defers.get(defer_id="refund-if-failed"),
        receipt=parent.defers.get(defer_id="receipt"),
        refund_run=FunctionRun.objects.get(function_id="test-refund-payment"),
        rejecting=FunctionRun.objects.get(function_id="test-bad-refund"),
    )


@pytest.fixture
def waiting(inngest_client, drain):
    """Return onboarding runs: one waits for activation, one got it and waits for an order.

    Both also listen for a cancel rule's event, matched on the user id.
    """

    @inngest_client.create_function(
        fn_id="onboard",
        trigger=inngest.TriggerEvent(event="app/user.signed-up"),
        cancel=[
            inngest.Cancel(
                event="app/user.deleted", if_exp="event.data.user_id == async.data.user_id"
            )
        ],
    )
    def onboard(ctx):
        activated = ctx.step.wait_for_event(
            "wait-activation", event="app/user.activated", timeout="1h", match="data.user_id"
        )
        if activated is None:
            return "never activated"
        ctx.step.wait_for_event(
            "wait-big-order",
            event="shop/order.placed",
            timeout="7d",
            if_exp="async.data.user_id == event.data.user_id && async.data.total > 100",
        )
        return "onboarded"

    inngest_client.send(
        [
            inngest.Event(name="app/user.signed-up", data={"user_id": 1}),
            inngest.Event(name="app/user.signed-up", data={"user_id": 2}),
        ]
    )
    drain()
    inngest_client.send(inngest.Event(name="app/user.activated", data={"user_id": 2}))
    drain()
    by_user = {
        run.event.data["user_id"]: run
        for run in FunctionRun.objects.filter(function_id="test-onboard")
    }
    return SimpleNamespace(
        inactive=by_user[1],
        active=by_user[2],
        activation=Event.objects.get(name="app/user.activated"),
    )


@pytest.fixture
def invokes(inngest_client, drain):
    """Return a caller waiting on a sleeping invoked run, and a caller whose invoke finished."""

    @inngest_client.create_function(
        fn_id="slow-child", trigger=inngest.TriggerEvent(event="t/unused")
    )
    def slow_child(ctx):
        ctx.step.sleep("nap", "1h")

    @inngest_client.create_function(
        fn_id="quick-child", trigger=inngest.TriggerEvent(event="t/unused2")
    )
    def quick_child(ctx):
        return ctx.event.data["n"] * 2

    @inngest_client.create_function(
        fn_id="call-slow", trigger=inngest.TriggerEvent(event="t/call-slow")
    )
    def call_slow(ctx):
        return ctx.step.invoke("call-child", function=slow_child, data={"n": 1})

    @inngest_client.create_function(
        fn_id="call-quick", trigger=inngest.TriggerEvent(event="t/call-quick")
    )
    def call_quick(ctx):
        return ctx.step.invoke("double-it", function=quick_child, data={"n": 21})

    inngest_client.send([inngest.Event(name="t/call-slow"), inngest.Event(name="t/call-quick")])
    drain()
    return SimpleNamespace(
        waiting=FunctionRun.objects.get(function_id="test-call-slow"),
        slow=FunctionRun.objects.get(function_id="test-slow-child"),
        finished=FunctionRun.objects.get(function_id="test-call-quick"),
        quick=FunctionRun.objects.get(function_id="test-quick-child"),
    )


@pytest.fixture
def flow(inngest_client, drain):
    """Return runs flow control skipped, delayed, debounced or keyed, and one it left alone.

    One per-user run is claimed by a worker and holds its concurrency key, so another run of
    that user waits for a slot while a run of another user does not.
    """

    @inngest_client.create_function(
        fn_id="limited",
        trigger=inngest.TriggerEvent(event="t/limited"),
        rate_limit=inngest.RateLimit(limit=1, period="1h"),
    )
    def limited(ctx):
        return "ran"

    @inngest_client.create_function(
        fn_id="paced",
        trigger=inngest.TriggerEvent(event="t/paced"),
        throttle=inngest.Throttle(limit=1, period="1h"),
    )
    def paced(ctx):
        return "ran"

    @inngest_client.create_function(
        fn_id="settle",
        trigger=inngest.TriggerEvent(event="t/settle"),
        debounce=inngest.Debounce(period="1h", key="event.data.doc", timeout="2h"),
    )
    def settle(ctx):
        return ctx.event.data["rev"]

    @inngest_client.create_function(
        fn_id="single",
        trigger=inngest.TriggerEvent(event="t/single"),
        singleton=inngest.Singleton(mode="skip"),
    )
    def single(ctx):
        ctx.step.sleep("nap", "1h")

    @inngest_client.create_function(
        fn_id="per-user",
        trigger=inngest.TriggerEvent(event="t/per-user"),
        concurrency=[
            inngest.Concurrency(limit=1, key="event.data.user"),
            inngest.Concurrency(limit=5, key='"exports"', scope="env"),
        ],
    )
    def per_user(ctx):
        return None

    @inngest_client.create_function(
        fn_id="collect",
        trigger=inngest.TriggerEvent(event="t/collect"),
        batch_events=inngest.Batch(max_size=3, timeout="1h"),
    )
    def collect(ctx):
        return len(ctx.events)

    inngest_client.send(
        [
            *(inngest.Event(name="t/collect") for _ in range(2)),
            *(inngest.Event(name="t/limited") for _ in range(2)),
            *(inngest.Event(name="t/paced") for _ in range(2)),
            *(inngest.Event(name="t/settle", data={"doc": "a", "rev": n}) for n in range(2)),
            *(inngest.Event(name="t/single") for _ in range(2)),
        ]
    )
    drain()
    # Dispatched, then one run claimed by a worker that holds it: no drain, which would run all.
    inngest_client.send([inngest.Event(name="t/per-user", data={"user": u}) for u in "aab"])
    dispatch_pending()
    now = timezone.now()
    with transaction.atomic():
        FunctionRun.objects.claim_limited(
            worker_id="busy-worker",
            lease_token="busy",
            limit=1,
            now=now,
            lease_until=now + timedelta(minutes=5),
        )

    limited_runs, paced_runs = runs_of("test-limited"), runs_of("test-paced")
    single_runs, per_user_runs = runs_of("test-single"), runs_of("test-per-user")
    return SimpleNamespace(
        untouched=limited_runs[0],
        rate_limited=limited_runs[1],
        started=paced_runs[0],
        throttled=paced_runs[1],
        debounced=FunctionRun.objects.get(function_id="test-settle"),
        batched=FunctionRun.objects.get(function_id="test-collect"),
        singleton=single_runs[0],
        singleton_skipped=single_runs[1],
        holding_slot=per_user_runs[0],
        waiting_for_slot=per_user_runs[1],
        other_user=per_user_runs[2],
    )


@pytest.fixture
def mixed(inngest_client, drain):
    """Return runs of an event, a deferred run and an old run."""

    @inngest.create_defer(inngest_client, id="audit")
    def audit(ctx):
        return "audited"

    @inngest_client.create_function(
        fn_id="checkout", trigger=inngest.TriggerEvent(event="shop/paid")
    )
    def checkout(ctx):
        ctx.defer("audit-it", function=audit, data={})
        return "ok"

    @inngest_client.create_function(
        fn_id="signup", trigger=inngest.TriggerEvent(event="user/joined")
    )
    def signup(ctx):
        return "ok"

    inngest_client.send([inngest.Event(name="shop/paid"), inngest.Event(name="user/joined")])
    drain()
    old = FunctionRun.objects.get(function_id="test-signup")
    FunctionRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    return {run.function_id: run for run in FunctionRun.objects.all()}
