"""`manage.py inngest_send` stores events, prints their ids, and refuses bad input clearly."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun

pytestmark = pytest.mark.django_db


def send(*args: str) -> list[str]:
    out = StringIO()
    call_command("inngest_send", *args, stdout=out)
    return out.getvalue().split()


def test_send_stores_the_event_and_prints_its_id():
    [event_id] = send("shop/product.imported", "--data", '{"sku": "mug-1", "images": 2}')
    event = Event.objects.get(pk=event_id)
    assert event.name == "shop/product.imported"
    assert event.data == {"sku": "mug-1", "images": 2}
    assert event.external_id == ""
    assert event.dispatched_at is None


def test_send_without_data_sends_an_empty_object():
    [event_id] = send("shop/cart.emptied")
    assert Event.objects.get(pk=event_id).data == {}


def test_count_sends_that_many_events_and_prints_every_id():
    ids = send("shop/ping", "--count", "3")
    assert len(ids) == len(set(ids)) == 3
    assert sorted(Event.objects.filter(name="shop/ping").values_list("id", flat=True)) == sorted(
        ids
    )


def test_sent_events_start_runs_and_a_repeated_producer_id_starts_one(inngest_client, drain):
    @inngest_client.create_function(
        fn_id="count-skus", trigger=inngest.TriggerEvent(event="shop/sku")
    )
    def count_skus(ctx):
        return ctx.event.data["sku"]

    send("shop/sku", "--data", '{"sku": "a"}', "--id", "import-1", "--count", "2")
    drain()
    [run] = FunctionRun.objects.filter(function_id="test-count-skus")
    assert run.status == "COMPLETED"
    assert run.output == "a"
    assert run.event.external_id == "import-1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{sku: 1}", "--data is not valid JSON"),
        ("[1, 2]", "--data must be a JSON object, not list"),
        ('"text"', "--data must be a JSON object, not str"),
    ],
)
def test_bad_data_is_a_clear_command_error(data, message):
    with pytest.raises(CommandError, match=message):
        send("shop/x", "--data", data)
    assert not Event.objects.exists()


def test_reserved_names_are_refused():
    with pytest.raises(CommandError, match=r"'inngest/function\.finished' is reserved"):
        send("inngest/function.finished")
    assert not Event.objects.exists()


def test_count_must_be_positive():
    with pytest.raises(CommandError, match="--count"):
        send("shop/x", "--count", "0")


def test_invalid_event_becomes_a_command_error():
    with pytest.raises(CommandError, match="empty name"):
        send("  ")
    assert not Event.objects.exists()
