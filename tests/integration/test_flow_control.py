"""Flow control decided in the database: idempotency, rate limit, throttle, debounce, priority,
singleton and concurrency."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import inngest_django as inngest
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun
from inngest_django.worker import Worker
from tests.helpers import runs_of

pytestmark = pytest.mark.django_db


def statuses(function_id: str) -> list[str]:
    return [run.status for run in runs_of(function_id)]


def test_idempotency_starts_one_run_per_key_and_shows_the_skips(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="charge",
        trigger=inngest.TriggerEvent(event="t/charge"),
        idempotency="event.data.order_id",
    )
    def charge(ctx):
        return ctx.event.data["order_id"]

    inngest_client.send(
        [inngest.Event(name="t/charge", data={"order_id": n}) for n in (1, 1, 2, 1)]
    )
    drain()
    runs = runs_of("test-charge")
    assert [(r.status, r.event.data["order_id"]) for r in runs] == [
        ("COMPLETED", 1),
        ("SKIPPED", 1),
        ("COMPLETED", 2),
        ("SKIPPED", 1),
    ]
    assert runs[1].flow_note.startswith("idempotency: key '1'")


def test_rate_limit_skips_the_surplus(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="limited-rate",
        trigger=inngest.TriggerEvent(event="t/rate"),
        rate_limit=inngest.RateLimit(limit=2, period="1h", key="event.data.user"),
    )
    def limited_rate(ctx):
        return None

    inngest_client.send([inngest.Event(name="t/rate", data={"user": u}) for u in "aaaab"])
    drain()
    by_user = [(r.event.data["user"], r.status) for r in runs_of("test-limited-rate")]
    assert by_user == [
        ("a", "COMPLETED"),
        ("a", "COMPLETED"),
        ("a", "SKIPPED"),
        ("a", "SKIPPED"),
        ("b", "COMPLETED"),
    ]
    assert "rate limit" in runs_of("test-limited-rate")[2].flow_note


def test_throttle_spreads_starts_and_drops_nothing(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="paced",
        trigger=inngest.TriggerEvent(event="t/paced"),
        throttle=inngest.Throttle(limit=4, period="1s", burst=2),
    )
    def paced(ctx):
        return None

    inngest_client.send([inngest.Event(name="t/paced") for _ in range(5)])
    dispatch_pending()
    runs = runs_of("test-paced")
    first = runs[0].available_at
    gaps = [(run.available_at - first).total_seconds() for run in runs]
    # Two at once (burst 2), then one every 250 ms.
    assert gaps == pytest.approx([0, 0, 0.25, 0.5, 0.75], abs=0.02)
    assert "throttled until" in runs[2].flow_note
    drain(timeout=3)
    assert statuses("test-paced") == ["COMPLETED"] * 5
    starts = sorted(run.started_at for run in runs_of("test-paced"))
    assert starts[-1] - starts[0] >= timedelta(seconds=0.7)


def test_debounce_runs_once_with_the_last_event(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="settle",
        trigger=inngest.TriggerEvent(event="t/settle"),
        debounce=inngest.Debounce(period="1s", key="event.data.doc"),
    )
    def settle(ctx):
        return ctx.event.data["rev"]

    inngest_client.send(
        [inngest.Event(name="t/settle", data={"doc": "a", "rev": r}) for r in range(3)]
    )
    dispatch_pending()
    inngest_client.send(
        [inngest.Event(name="t/settle", data={"doc": "a", "rev": r}) for r in (3, 4)]
    )
    inngest_client.send(inngest.Event(name="t/settle", data={"doc": "b", "rev": 9}))
    drain(timeout=3)
    assert sorted(run.output for run in runs_of("test-settle")) == [4, 9]


def test_debounce_timeout_bounds_the_wait(inngest_client, drain, advance_clock):
    @inngest_client.create_function(
        fn_id="bounded",
        trigger=inngest.TriggerEvent(event="t/bounded"),
        debounce=inngest.Debounce(period="1s", timeout="2s"),
    )
    def bounded(ctx):
        return ctx.event.data["n"]

    inngest_client.send(inngest.Event(name="t/bounded", data={"n": 0}))
    dispatch_pending()
    (run,) = runs_of("test-bounded")
    deadline = run.debounce_deadline
    for n in range(1, 4):
        advance_clock(0.6)
        inngest_client.send(inngest.Event(name="t/bounded", data={"n": n}))
        dispatch_pending()
    run.refresh_from_db()
    # Each event pushed the start back a second, but never past the timeout.
    assert run.available_at == deadline
    drain(timeout=3)
    assert [r.output for r in runs_of("test-bounded")] == [3]


def test_priority_lets_a_later_run_jump_the_backlog(inngest_client):
    order = []

    @inngest_client.create_function(
        fn_id="ranked",
        trigger=inngest.TriggerEvent(event="t/ranked"),
        priority=inngest.Priority(run="event.data.vip ? 120 : 0"),
    )
    def ranked(ctx):
        order.append(ctx.event.data["name"])

    inngest_client.send(
        [inngest.Event(name="t/ranked", data={"name": f"n{i}", "vip": False}) for i in range(3)]
    )
    inngest_client.send(inngest.Event(name="t/ranked", data={"name": "vip", "vip": True}))
    worker = Worker(threads=0)
    while worker.run_once():
        pass
    assert order == ["vip", "n0", "n1", "n2"]
    vip = next(r for r in runs_of("test-ranked") if r.event.data["vip"])
    assert vip.flow_note == "priority +120s"


def test_singleton_skip_keeps_the_active_run(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="single",
        trigger=inngest.TriggerEvent(event="t/single"),
        singleton=inngest.Singleton(key="event.data.user", mode="skip"),
    )
    def single(ctx):
        ctx.step.sleep("nap", "1h")

    inngest_client.send(inngest.Event(name="t/single", data={"user": 1}))
    drain()
    inngest_client.send([inngest.Event(name="t/single", data={"user": u}) for u in (1, 2)])
    drain()
    assert statuses("test-single") == ["SLEEPING", "SKIPPED", "SLEEPING"]


def test_singleton_cancel_replaces_the_active_run(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="latest",
        trigger=inngest.TriggerEvent(event="t/latest"),
        singleton=inngest.Singleton(mode="cancel"),
    )
    def latest(ctx):
        ctx.step.sleep("nap", "1h")

    inngest_client.send(inngest.Event(name="t/latest"))
    drain()
    inngest_client.send(inngest.Event(name="t/latest"))
    drain()
    first, second = runs_of("test-latest")
    assert (first.status, second.status) == ("CANCELLED", "SLEEPING")
    assert first.cancel_reason == f"singleton: replaced by run {second.pk}"


def test_concurrency_claims_no_more_than_the_limit_per_key(inngest_client):
    @inngest_client.create_function(
        fn_id="per-user",
        trigger=inngest.TriggerEvent(event="t/per-user"),
        concurrency=[inngest.Concurrency(limit=1, key="event.data.user")],
    )
    def per_user(ctx):
        return None

    inngest_client.send([inngest.Event(name="t/per-user", data={"user": u}) for u in "aaabb"])
    dispatch_pending()
    claimed = worker_claim(Worker(threads=3))
    users = sorted(FunctionRun.objects.get(pk=pk).event.data["user"] for pk in claimed)
    assert users == ["a", "b"]  # one per key, though three slots were free


def worker_claim(worker: Worker) -> list[str]:
    """Claim as a worker would, with a lease that ends at once so drain() can take over."""
    from django.db import transaction

    from inngest_django import clock

    with transaction.atomic():
        now = clock.now()
        return FunctionRun.objects.claim_limited(
            worker_id="w", lease_token="t", limit=worker.threads, now=now, lease_until=now
        )


def test_env_scope_shares_capacity_across_functions_and_sleepers_hold_none(inngest_client, drain):
    shared = [inngest.Concurrency(limit=1, key='"smtp"', scope="env")]

    @inngest_client.create_function(
        fn_id="mail-a", trigger=inngest.TriggerEvent(event="t/mail"), concurrency=shared
    )
    def mail_a(ctx):
        ctx.step.run("send", lambda: None)
        ctx.step.sleep("later", "1h")

    @inngest_client.create_function(
        fn_id="mail-b", trigger=inngest.TriggerEvent(event="t/mail"), concurrency=shared
    )
    def mail_b(ctx):
        return None

    inngest_client.send(inngest.Event(name="t/mail"))
    dispatch_pending()
    first = worker_claim(Worker(threads=2))
    assert len(first) == 1  # the two functions share one slot
    drain()
    # Once the first sleeps it holds no slot, so the other could run and finish.
    assert sorted(statuses("test-mail-a") + statuses("test-mail-b")) == ["COMPLETED", "SLEEPING"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": [inngest.Concurrency(limit=1, scope="env")]}, "needs a key"),
        ({"concurrency": [inngest.Concurrency(limit=1)] * 3}, "the most is 2"),
        ({"throttle": inngest.Throttle(limit=1, period="8d")}, "throttle.period"),
        ({"rate_limit": inngest.RateLimit(limit=1, period="2d")}, "rate_limit.period"),
        ({"debounce": inngest.Debounce(period="0s")}, "debounce.period"),
        ({"priority": inngest.Priority(run="event.data.")}, "priority.run"),
        ({"idempotency": "event.data.id =="}, "idempotency"),
        ({"singleton": inngest.Singleton(key="))", mode="skip")}, "singleton.key"),
        ({"batch_events": inngest.Batch(max_size=10)}, "batch_events needs a timeout"),
        ({"batch_events": inngest.Batch(max_size=1, timeout="1s")}, "max_size"),
    ],
)
def test_invalid_options_fail_at_declaration_naming_the_option(inngest_client, options, message):
    with pytest.raises(inngest.InvalidFunctionConfigError, match=message):
        inngest_client.create_function(
            fn_id="bad", trigger=inngest.TriggerEvent(event="t/x"), **options
        )(lambda ctx: None)


def test_batches_flush_at_max_size_and_the_rest_at_the_timeout(inngest_client, drain):
    seen = []

    @inngest_client.create_function(
        fn_id="batched",
        trigger=inngest.TriggerEvent(event="t/batched"),
        batch_events=inngest.Batch(max_size=10, timeout="1s"),
    )
    def batched(ctx):
        seen.append([e.data["n"] for e in ctx.events])
        assert ctx.event == ctx.events[0]
        return len(ctx.events)

    inngest_client.send([inngest.Event(name="t/batched", data={"n": n}) for n in range(25)])
    dispatch_pending()
    runs = runs_of("test-batched")
    assert [run.batch_size for run in runs] == [10, 10, 5]
    assert runs[2].available_at > runs[0].available_at  # the partial batch waits
    started = time.monotonic()
    drain(timeout=3)
    assert seen == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert time.monotonic() - started >= 0.5  # the last batch waited for its timeout
    assert statuses("test-batched") == ["COMPLETED"] * 3


def test_batches_split_by_key_and_if_exp_false_runs_alone(inngest_client, drain):
    seen = []

    @inngest_client.create_function(
        fn_id="by-key",
        trigger=inngest.TriggerEvent(event="t/by-key"),
        batch_events=inngest.Batch(
            max_size=2, timeout="1s", key="event.data.shop", if_exp="event.data.batch == true"
        ),
    )
    def by_key(ctx):
        seen.append(sorted(e.data["n"] for e in ctx.events))

    inngest_client.send(
        [
            inngest.Event(name="t/by-key", data={"n": 1, "shop": "a", "batch": True}),
            inngest.Event(name="t/by-key", data={"n": 2, "shop": "b", "batch": True}),
            inngest.Event(name="t/by-key", data={"n": 3, "shop": "a", "batch": True}),
            inngest.Event(name="t/by-key", data={"n": 4, "shop": "b", "batch": False}),
            inngest.Event(name="t/by-key", data={"n": 5, "shop": "b", "batch": True}),
        ]
    )
    drain(timeout=3)
    assert sorted(seen) == [[1, 3], [2, 5], [4]]


def test_a_batch_filled_across_dispatch_rounds_keeps_every_event(inngest_client, drain):
    seen = []

    @inngest_client.create_function(
        fn_id="rounds",
        trigger=inngest.TriggerEvent(event="t/rounds"),
        batch_events=inngest.Batch(max_size=3, timeout="1s"),
    )
    def rounds(ctx):
        seen.append([e.data["n"] for e in ctx.events])

    for n in range(3):
        inngest_client.send(inngest.Event(name="t/rounds", data={"n": n}))
        dispatch_pending()
    drain()
    assert seen == [[0, 1, 2]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"idempotency": "event.data.id"}, "idempotency"),
        ({"rate_limit": inngest.RateLimit(limit=1, period="1m")}, "rate_limit"),
        ({"priority": inngest.Priority(run="1")}, "priority"),
        ({"debounce": inngest.Debounce(period="1m")}, "debounce"),
        ({"singleton": inngest.Singleton(mode="skip")}, "singleton"),
        ({"cancel": [inngest.Cancel(event="t/stop")]}, "cancel"),
    ],
)
def test_batching_refuses_options_that_decide_per_event(inngest_client, options, message):
    with pytest.raises(inngest.InvalidFunctionConfigError, match=f"batch_events.*{message}"):
        inngest_client.create_function(
            fn_id="bad-batch",
            trigger=inngest.TriggerEvent(event="t/x"),
            batch_events=inngest.Batch(max_size=5, timeout="1s"),
            **options,
        )(lambda ctx: None)


def test_deferred_functions_apply_their_own_flow_control(inngest_client, drain):
    @inngest.create_defer(
        inngest_client, id="notify-once", rate_limit=inngest.RateLimit(limit=1, period="1h")
    )
    def notify_once(ctx):
        return ctx.event.data["n"]

    @inngest_client.create_function(
        fn_id="notifier", trigger=inngest.TriggerEvent(event="t/notifier")
    )
    def notifier(ctx):
        ctx.defer("first", function=notify_once, data={"n": 1})
        ctx.defer("second", function=notify_once, data={"n": 2})

    inngest_client.send(inngest.Event(name="t/notifier"))
    drain()
    runs = runs_of("test-notify-once")
    assert [(run.status, run.defer_intent.defer_id) for run in runs] == [
        ("COMPLETED", "first"),
        ("SKIPPED", "second"),
    ]
    assert "rate limit" in runs[1].flow_note


def test_a_debounced_run_waiting_to_retry_keeps_its_event(inngest_client, drain):
    attempts = []

    @inngest_client.create_function(
        fn_id="settle-retry",
        trigger=inngest.TriggerEvent(event="t/settle-retry"),
        debounce=inngest.Debounce(period="1s"),
    )
    def settle_retry(ctx):
        attempts.append(ctx.event.data["rev"])
        if len(attempts) == 1:
            raise inngest.RetryAfterError("later", retry_after=1500)
        return ctx.event.data["rev"]

    inngest_client.send(inngest.Event(name="t/settle-retry", data={"rev": 1}))
    dispatch_pending()
    FunctionRun.objects.update(available_at=FunctionRun.objects.get().created_at)
    Worker(threads=0).run_once()  # first attempt fails; the run is queued to retry
    inngest_client.send(inngest.Event(name="t/settle-retry", data={"rev": 2}))
    dispatch_pending()
    assert len(runs_of("test-settle-retry")) == 2  # a new debounced run, not a replaced event
    drain(timeout=4)
    assert sorted(run.output for run in runs_of("test-settle-retry")) == [1, 2]
