"""The official `inngest` client from PyPI sends events to the Event API of a live server."""

from __future__ import annotations

import re

import inngest
import pytest
from inngest._internal.errors import SendEventsError

import inngest_django
from inngest_django.event_keys import issue_key
from inngest_django.models import Event, FunctionRun
from tests.helpers import sdk_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def raw_key() -> str:
    return issue_key("python sdk")[1]


@pytest.fixture
def on_order(inngest_client: inngest_django.Inngest) -> inngest_django.Function:
    @inngest_client.create_function(
        fn_id="on-order", trigger=inngest_django.TriggerEvent(event="shop/order.placed")
    )
    def handler(ctx: inngest_django.Context) -> dict:
        return {"order_id": ctx.event.data["order_id"], "event_id": ctx.event.id}

    return handler


def test_send_sync_of_one_event_stores_it_and_starts_its_run(live_server, raw_key, on_order, drain):
    sdk = sdk_client(live_server, raw_key, app_id="evapi-sdk")
    ids = sdk.send_sync(
        inngest.Event(name="shop/order.placed", data={"order_id": 42}, id="order-42")
    )
    [event_id] = ids
    event = Event.objects.get(pk=event_id)
    assert (event.name, event.data, event.external_id) == (
        "shop/order.placed",
        {"order_id": 42},
        "order-42",
    )
    assert event.ts > 0  # the client fills in "now"
    drain()
    run = FunctionRun.objects.get(event_id=event_id)
    assert run.status == "COMPLETED"
    assert run.output == {"order_id": 42, "event_id": "order-42"}


def test_send_sync_of_a_batch_returns_the_stored_ids_in_order(
    live_server, raw_key, on_order, drain
):
    sdk = sdk_client(live_server, raw_key, app_id="evapi-sdk")
    ids = sdk.send_sync(
        [inngest.Event(name="shop/order.placed", data={"order_id": n}) for n in range(5)]
        + [inngest.Event(name="shop/newsletter.signup", data={"email": "a@example.com"})]
    )
    assert len(ids) == len(set(ids)) == 6
    stored = {event.pk: event for event in Event.objects.filter(pk__in=ids)}
    assert [stored[i].name for i in ids] == ["shop/order.placed"] * 5 + ["shop/newsletter.signup"]
    assert [stored[i].data for i in ids[:5]] == [{"order_id": n} for n in range(5)]
    assert all(stored[i].external_id == "" for i in ids)  # the client drops an empty id
    drain()
    runs = FunctionRun.objects.filter(function_id="test-on-order").order_by("event_id")
    assert [(r.event_id, r.status) for r in runs] == [(i, "COMPLETED") for i in sorted(ids[:5])]
    assert sorted(r.output["order_id"] for r in runs) == list(range(5))


def test_wrong_key_raises_send_events_error(live_server, raw_key):
    sdk = sdk_client(live_server, raw_key + "-wrong", app_id="evapi-sdk")
    with pytest.raises(SendEventsError, match="Event key not found") as caught:
        sdk.send_sync(inngest.Event(name="shop/order.placed", data={"order_id": 1}))
    assert caught.value.ids == []
    assert not Event.objects.exists()


def test_bad_event_raises_send_events_error_naming_it(live_server, raw_key):
    sdk = sdk_client(live_server, raw_key, app_id="evapi-sdk")
    with pytest.raises(SendEventsError, match=re.escape("event 1: name 'inngest/function.failed'")):
        sdk.send_sync(
            [
                inngest.Event(name="shop/order.placed", data={"order_id": 1}),
                inngest.Event(name="inngest/function.failed"),
            ]
        )
    assert not Event.objects.exists()
