"""Event keys limited to event-name prefixes: a name outside them refuses the whole request."""

from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import inngest
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from inngest._internal.errors import SendEventsError

import inngest_django
from inngest_django.event_keys import allows_name, clean_prefixes, issue_key
from inngest_django.models import Event, EventKey, FunctionRun
from tests.helpers import sdk_client

ADD_KEY_URL = reverse("admin:inngest_django_eventkey_add")
KEYS_URL = reverse("admin:inngest_django_eventkey_changelist")


def event_api_url(raw_key: str) -> str:
    return reverse("inngest-event-api", kwargs={"event_key": raw_key})


def post(raw_key: str, body: Any):
    return Client().post(event_api_url(raw_key), json.dumps(body), content_type="application/json")


# -- issuing ----------------------------------------------------------------------------------


def test_clean_prefixes_strips_and_drops_blanks_and_repeats():
    assert clean_prefixes([" shop/", "", "billing/", "shop/"]) == ["shop/", "billing/"]
    with pytest.raises(ValueError, match="at most"):
        clean_prefixes(["x" * 300])
    with pytest.raises(ValueError, match="must be a string"):
        clean_prefixes([3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="NUL"):
        clean_prefixes(["shop/\x00"])


@pytest.mark.django_db
def test_issue_key_stores_the_prefixes_and_allows_names_by_them():
    limited, _ = issue_key("shop", event_prefixes=["shop/", " billing/ "])
    anything, _ = issue_key("anything")
    limited.refresh_from_db()
    assert limited.event_prefixes == ["shop/", "billing/"]
    assert anything.event_prefixes == []
    assert allows_name(limited, "shop/order.placed") and allows_name(limited, "billing/paid")
    assert not allows_name(limited, "shopping/x") and not allows_name(limited, "crm/shop/x")
    assert allows_name(anything, "crm/contact.created")
    # A row edited by hand into something other than a list of strings allows nothing.
    for broken in ("shop/", [3], {"shop/": True}):
        EventKey.objects.filter(pk=limited.pk).update(event_prefixes=broken)
        limited.refresh_from_db()
        assert not allows_name(limited, "shop/order.placed"), broken


# -- the Event API over plain HTTP ----------------------------------------------------------------


@pytest.mark.django_db
def test_an_event_outside_the_prefixes_refuses_the_whole_request_with_403():
    _, raw_key = issue_key("shop", event_prefixes=["shop/"])
    response = post(
        raw_key,
        [
            {"name": "shop/order.placed", "data": {"n": 1}},
            {"name": "billing/invoice.paid", "data": {"n": 2}},
        ],
    )
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["status"] == 403
    assert body["error"] == (
        "event 1: name 'billing/invoice.paid' is not allowed for this event key, which may "
        "send only names starting with 'shop/'"
    )
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_events_inside_any_of_the_prefixes_are_stored():
    _, raw_key = issue_key("shop", event_prefixes=["shop/", "billing/"])
    response = post(raw_key, [{"name": "shop/order.placed"}, {"name": "billing/invoice.paid"}])
    assert response.status_code == 200, response.content
    ids = response.json()["ids"]
    assert list(Event.objects.filter(pk__in=ids).order_by("pk").values_list("name", flat=True)) == [
        "shop/order.placed",
        "billing/invoice.paid",
    ]
    # A single event object, not an array, is checked the same way.
    assert post(raw_key, {"name": "crm/x"}).status_code == 403
    assert Event.objects.count() == 2


@pytest.mark.django_db
def test_keys_without_prefixes_send_any_name_and_bad_events_are_still_400_first():
    _, anything = issue_key("anything")
    assert post(anything, [{"name": "crm/contact.created"}]).status_code == 200
    _, limited = issue_key("shop", event_prefixes=["shop/"])
    # Malformed input is a 400 whatever the names: the key's limits apply to valid events.
    bad = post(limited, [{"name": "crm/x"}, {"name": "shop/y", "data": []}])
    assert bad.status_code == 400 and "event 1: data must be a JSON object" in bad.json()["error"]
    assert Event.objects.count() == 1


# -- the official client ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_official_client_is_refused_outside_the_prefix_and_served_inside(
    live_server, inngest_client, drain
):
    @inngest_client.create_function(
        fn_id="on-paid", trigger=inngest_django.TriggerEvent(event="billing/invoice.paid")
    )
    def on_paid(ctx: inngest_django.Context) -> int:
        return ctx.event.data["amount"]

    _, raw_key = issue_key("billing", event_prefixes=["billing/"])
    sdk = sdk_client(live_server, raw_key, app_id="prefix-sdk")
    expected = re.escape("event 0: name 'shop/order.placed' is not allowed for this event key")
    with pytest.raises(SendEventsError, match=expected) as caught:
        sdk.send_sync(inngest.Event(name="shop/order.placed", data={"amount": 1}))
    assert caught.value.ids == []
    with pytest.raises(SendEventsError, match="not allowed"):
        sdk.send_sync(
            [
                inngest.Event(name="billing/invoice.paid", data={"amount": 2}),
                inngest.Event(name="shop/order.placed", data={"amount": 3}),
            ]
        )
    assert not Event.objects.exists()

    [event_id] = sdk.send_sync(inngest.Event(name="billing/invoice.paid", data={"amount": 4}))
    assert Event.objects.get().pk == event_id
    drain()
    run = FunctionRun.objects.get(event_id=event_id)
    assert (run.status, run.output) == ("COMPLETED", 4)


# -- the command and the admin ------------------------------------------------------------------


def run_command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("inngest_event_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_the_command_creates_a_limited_key_and_lists_its_prefixes():
    out, err = run_command("create", "billing service", "--prefix", "billing/", "--prefix", "crm/")
    [raw_key] = out.split()
    key = EventKey.objects.get()
    assert key.event_prefixes == ["billing/", "crm/"]
    assert "may send only event names starting with 'billing/*', 'crm/*'" in err
    assert post(raw_key, [{"name": "shop/x"}]).status_code == 403
    run_command("create", "open")
    listing, _ = run_command("list")
    header, *lines = listing.splitlines()
    assert "EVENT NAMES" in header
    [limited_line] = [line for line in lines if line.endswith("billing service")]
    [open_line] = [line for line in lines if line.endswith("open")]
    assert "'billing/*', 'crm/*'" in limited_line and " any " in open_line
    with pytest.raises(CommandError, match="must not be blank"):
        run_command("create", "x", "--prefix", "  ")
    assert EventKey.objects.count() == 2


@pytest.mark.django_db
def test_the_admin_issues_a_limited_key_and_lists_its_prefixes(admin_client):
    response = admin_client.post(
        ADD_KEY_URL, {"name": "billing", "event_prefixes": "billing/\ncrm/, billing/"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "<code>billing/…</code>, <code>crm/…</code>" in page
    raw_key = re.search(r'<input id="event-key" type="text" readonly value="([^"]+)"', page)[1]
    key = EventKey.objects.get()
    assert key.event_prefixes == ["billing/", "crm/"]
    assert post(raw_key, [{"name": "billing/x"}]).status_code == 200
    assert post(raw_key, [{"name": "shop/x"}]).status_code == 403
    listing = admin_client.get(KEYS_URL).content.decode()
    assert "billing/…, crm/…" in listing
    too_long = admin_client.post(ADD_KEY_URL, {"name": "x", "event_prefixes": "y" * 300})
    assert too_long.status_code == 200 and "at most" in too_long.content.decode()
    assert EventKey.objects.count() == 1


@pytest.mark.django_db
def test_the_admin_refuses_a_prefix_holding_nul(admin_client):
    # PostgreSQL's jsonb refused the stored list: a 500 there before issue 17.
    response = admin_client.post(ADD_KEY_URL, {"name": "x", "event_prefixes": "billing/\x00"})
    assert response.status_code == 200 and "NUL" in response.content.decode()
    assert not EventKey.objects.exists()
