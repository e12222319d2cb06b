"""Sending events and dispatching them: fan-out, wildcards, expressions, dedupe, validation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

import inngest_django as inngest
from inngest_django.events import dispatch_pending
from inngest_django.models import Event, FunctionRun, IdempotencyKey

pytestmark = pytest.mark.django_db


def noop(ctx):
    return ctx.event.data


def test_send_returns_ids_in_order_and_stores_events(inngest_client):
    ids = inngest_client.send(
        [inngest.Event(name="t/a", data={"n": 1}), {"name": "t/b", "data": {"n": 2}, "id": "p-2"}]
    )
    assert len(ids) == 2
    stored = {e.pk: e for e in Event.objects.all()}
    assert [stored[i].name for i in ids] == ["t/a", "t/b"]
    assert stored[ids[1]].external_id == "p-2"
    assert stored[ids[0]].ts > 0
    assert stored[ids[0]].dispatched_at is None


def test_send_sync_is_an_alias_and_top_level_send_works(inngest_client):
    assert inngest_client.send_sync(inngest.Event(name="t/x"))
    assert inngest.send(inngest.Event(name="t/y"))
    assert Event.objects.count() == 2


def test_one_event_fans_out_to_every_matching_function(inngest_client, drain):
    for fn_id in ("email", "analytics"):
        inngest_client.create_function(
            fn_id=fn_id, trigger=inngest.TriggerEvent(event="shop/order.placed")
        )(noop)
    inngest_client.create_function(fn_id="other", trigger=inngest.TriggerEvent(event="shop/other"))(
        noop
    )
    inngest_client.send(inngest.Event(name="shop/order.placed", data={"id": 1}))
    drain()
    runs = FunctionRun.objects.order_by("function_id")
    assert [(r.function_id, r.status, r.output) for r in runs] == [
        ("test-analytics", "COMPLETED", {"id": 1}),
        ("test-email", "COMPLETED", {"id": 1}),
    ]


def test_wildcard_trigger_matches_a_family_of_names(inngest_client, drain):
    inngest_client.create_function(fn_id="all-shop", trigger=inngest.TriggerEvent(event="shop/*"))(
        noop
    )
    inngest_client.send(
        [
            inngest.Event(name="shop/order.placed"),
            inngest.Event(name="shop/refund.issued"),
            inngest.Event(name="shopping/other"),
        ]
    )
    drain()
    names = sorted(r.event.name for r in FunctionRun.objects.select_related("event"))
    assert names == ["shop/order.placed", "shop/refund.issued"]


def test_trigger_expression_filters_events(inngest_client, drain):
    inngest_client.create_function(
        fn_id="big-orders",
        trigger=inngest.TriggerEvent(
            event="shop/order.placed", expression="event.data.total > 100"
        ),
    )(noop)
    inngest_client.send(
        [
            inngest.Event(name="shop/order.placed", data={"total": 50}),
            inngest.Event(name="shop/order.placed", data={"total": 500}),
            inngest.Event(name="shop/order.placed", data={}),
        ]
    )
    drain()
    assert [r.output for r in FunctionRun.objects.all()] == [{"total": 500}]


def test_function_matching_several_triggers_runs_once(inngest_client, drain):
    inngest_client.create_function(
        fn_id="multi",
        trigger=[
            inngest.TriggerEvent(event="shop/order.placed"),
            inngest.TriggerEvent(event="shop/*"),
            inngest.TriggerCron(cron="0 0 1 1 *"),
        ],
    )(noop)
    inngest_client.send(inngest.Event(name="shop/order.placed"))
    drain()
    assert FunctionRun.objects.count() == 1


def test_duplicate_producer_id_starts_no_second_run(inngest_client, drain):
    inngest_client.create_function(fn_id="once", trigger=inngest.TriggerEvent(event="t/once"))(noop)
    inngest_client.create_function(fn_id="also", trigger=inngest.TriggerEvent(event="t/once"))(noop)
    inngest_client.send(inngest.Event(name="t/once", id="order-42"))
    drain()
    inngest_client.send(inngest.Event(name="t/once", id="order-42"))
    inngest_client.send(inngest.Event(name="t/once", id="order-43"))
    drain()
    assert (
        Event.objects.filter(name="t/once").count() == 3
    )  # the duplicate is stored, it just starts nothing
    runs = FunctionRun.objects.select_related("event")
    assert sorted((r.function_id, r.event.external_id) for r in runs) == [
        ("test-also", "order-42"),
        ("test-also", "order-43"),
        ("test-once", "order-42"),
        ("test-once", "order-43"),
    ]


def test_duplicate_ids_in_one_batch_start_one_run(inngest_client, drain):
    inngest_client.create_function(fn_id="batch", trigger=inngest.TriggerEvent(event="t/batch"))(
        noop
    )
    inngest_client.send([inngest.Event(name="t/batch", id="same") for _ in range(3)])
    drain()
    assert FunctionRun.objects.count() == 1


def test_producer_id_may_start_a_run_again_after_24_hours(inngest_client, drain):
    inngest_client.create_function(fn_id="daily", trigger=inngest.TriggerEvent(event="t/daily"))(
        noop
    )
    inngest_client.send(inngest.Event(name="t/daily", id="k"))
    drain()
    key = IdempotencyKey.objects.get()
    assert key.expires_at - timezone.now() > timedelta(hours=23, minutes=59)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    inngest_client.send(inngest.Event(name="t/daily", id="k"))
    drain()
    assert FunctionRun.objects.count() == 2


def test_events_without_matching_functions_are_marked_dispatched(inngest_client):
    inngest_client.send(inngest.Event(name="t/nobody"))
    assert dispatch_pending() == 1
    assert Event.objects.get().dispatched_at is not None
    assert dispatch_pending() == 0


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (inngest.Event(name="inngest/function.failed"), "reserved"),
        (inngest.Event(name=""), "empty name"),
        (inngest.Event(name="   "), "empty name"),
        (inngest.Event(name="x" * 256), "longer than 255"),
        (inngest.Event(name="t/x", data=[1, 2]), "must be a JSON object"),
        (inngest.Event(name="t/x", data={"when": object()}), "not JSON-serializable"),
        ({"name": "t/x", "bogus": 1}, "event 0 is invalid"),
        (42, "must be an Event or a dict"),
    ],
)
def test_invalid_events_are_refused_with_a_clear_error(inngest_client, event, message):
    with pytest.raises(inngest.InvalidEventError, match=message):
        inngest_client.send(event)
    assert not Event.objects.exists()


def test_a_bad_event_in_a_batch_stores_none_of_the_batch(inngest_client):
    with pytest.raises(inngest.InvalidEventError, match="event 1"):
        inngest_client.send([inngest.Event(name="t/ok"), inngest.Event(name="inngest/x")])
    assert not Event.objects.exists()


def test_event_size_limit_is_512_kib(inngest_client):
    inngest_client.send(inngest.Event(name="t/big", data={"x": "a" * (512 * 1024 - 100)}))
    with pytest.raises(inngest.InvalidEventError, match="over the limit of 524288 bytes"):
        inngest_client.send(inngest.Event(name="t/big", data={"x": "a" * (512 * 1024)}))


@override_settings(INNGEST_DJANGO={"MAX_EVENT_BYTES": 64})
def test_event_size_limit_names_the_setting(inngest_client):
    with pytest.raises(inngest.InvalidEventError, match="MAX_EVENT_BYTES"):
        inngest_client.send(inngest.Event(name="t/big", data={"x": "a" * 100}))


def test_handler_sees_event_fields(inngest_client, drain):
    seen = []

    @inngest_client.create_function(fn_id="fields", trigger=inngest.TriggerEvent(event="t/fields"))
    def fields(ctx):
        seen.append((ctx.event, ctx.events, ctx.run_id))

    inngest_client.send(inngest.Event(name="t/fields", data={"a": 1}, id="abc", ts=1234))
    drain()
    event, events, run_id = seen[0]
    assert (event.name, event.data, event.id, event.ts) == ("t/fields", {"a": 1}, "abc", 1234)
    assert events == [event]
    assert run_id == FunctionRun.objects.get().pk
