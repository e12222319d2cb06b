"""The functions page, the send-event page, and the run and event list filters and searches."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun

from .test_admin import EVENTS_URL, RUNS_URL, cells, run_url, shown_messages, staff_client

pytestmark = pytest.mark.django_db

FUNCTIONS_URL = reverse("admin:inngest_django_functionrun_functions")
SEND_URL = reverse("admin:inngest_django_event_send")


def function_rows(page: str) -> dict[str, str]:
    """Return each functions-page row's text by function slug."""
    rows = re.findall(r'<tr class="function-row" data-function="([^"]+)">(.*?)</tr>', page, re.S)
    return {slug: " ".join(html.unescape(strip_tags(row)).split()) for slug, row in rows}


def status_counts(page: str, slug: str) -> dict[str, int]:
    """Return a functions-page row's run counts by status."""
    row = re.search(rf'data-function="{re.escape(slug)}">(.*?)</tr>', page, re.S).group(1)
    found = re.findall(r'data-status="([A-Z]+)"[^>]*><a href="[^"]+">[^<]* (\d+)</a>', row)
    return {status: int(count) for status, count in found}


@pytest.fixture
def shop(client, drain):
    """Register functions with triggers and options; run some now and one 25 hours ago."""

    @client.create_function(
        fn_id="place-order",
        trigger=inngest.TriggerEvent(event="shop/order.placed", expression="event.data.n > 0"),
        retries=2,
        throttle=inngest.Throttle(limit=100, period="1s"),
        concurrency=[inngest.Concurrency(limit=3, key="event.data.user")],
        cancel=[inngest.Cancel(event="shop/order.cancelled")],
    )
    def place_order(ctx):
        if ctx.event.data["n"] == 2:
            raise inngest.NonRetriableError("out of stock")
        ctx.step.run("reserve", lambda: "ok")
        return "placed"

    @client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 3 * * *"))
    def nightly(ctx):
        return "done"

    @inngest.create_defer(client, id="cleanup")
    def cleanup(ctx):
        return "clean"

    client.send(
        [inngest.Event(name="shop/order.placed", data={"n": n, "user": 1}) for n in (1, 2, 3)]
    )
    drain()
    old = FunctionRun.objects.filter(function_id="test-place-order", status="COMPLETED").first()
    FunctionRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    return FunctionRun.objects.filter(function_id="test-place-order")


# -- the functions page -------------------------------------------------------------------


def test_functions_page_lists_each_function_with_triggers_and_options(admin_client, shop):
    page = admin_client.get(FUNCTIONS_URL).content.decode()
    rows = function_rows(page)
    place = rows["test-place-order"]
    assert "event shop/order.placed if event.data.n > 0" in place
    assert "retries: 2" in place
    assert "throttle: limit=100, period=1s, burst=1" in place
    assert "concurrency: limit=3, key=event.data.user" in place
    assert "cancel: event=shop/order.cancelled" in place
    assert "cron 0 3 * * *" in rows["test-nightly"]
    assert "deferred" in rows["test-cleanup"]
    # The slug links to the run list filtered by the function.
    assert f'href="{RUNS_URL}?function=test-place-order"' in page


def test_functions_page_counts_runs_by_status_over_24_hours_in_one_query(admin_client, shop):
    assert shop.count() == 3
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(FUNCTIONS_URL).content.decode()
    counts = [query["sql"] for query in queries if "GROUP BY" in query["sql"].upper()]
    assert len(counts) == 1, counts
    # The completed run created 25 hours ago is not counted.
    assert status_counts(page, "test-place-order") == {"COMPLETED": 1, "FAILED": 1}
    assert status_counts(page, "test-nightly") == {}
    link = f"{RUNS_URL}?function=test-place-order&amp;status=FAILED&amp;created=24h"
    assert f'href="{link}"' in page
    listed = admin_client.get(html.unescape(link)).content.decode()
    (status,) = cells(listed, "status_badge")
    assert status.startswith("Failed")  # then the throttle's note


def test_functions_page_lists_slugs_with_recent_runs_but_no_function(admin_client, shop):
    FunctionRun.objects.filter(status="FAILED").update(function_id="test-removed")
    rows = function_rows(admin_client.get(FUNCTIONS_URL).content.decode())
    assert "not registered" in rows["test-removed"] and "Failed 1" in rows["test-removed"]


def test_functions_page_is_linked_from_the_run_list_and_the_app_index(admin_client, shop):
    assert f'href="{FUNCTIONS_URL}"' in admin_client.get(RUNS_URL).content.decode()
    index = admin_client.get(reverse("admin:app_list", args=["inngest_django"]))
    assert f'href="{FUNCTIONS_URL}"' in index.content.decode()
    assert f'href="{SEND_URL}"' in index.content.decode()


# -- the send-event page ------------------------------------------------------------------


def test_send_event_page_stores_the_event_and_reports_its_id(admin_client, client, drain):
    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="t/greeted"))
    def greet(ctx):
        return f"hello {ctx.event.data['who']}"

    assert f'href="{SEND_URL}"' in admin_client.get(EVENTS_URL).content.decode()
    form = admin_client.get(SEND_URL).content.decode()
    assert 'name="name"' in form and 'name="data"' in form and 'name="id"' in form

    response = admin_client.post(
        SEND_URL, {"name": "t/greeted", "data": '{"who": "Ada"}', "id": "greet-1"}, follow=True
    )
    event = Event.objects.get(name="t/greeted")
    assert (event.data, event.external_id) == ({"who": "Ada"}, "greet-1")
    assert response.redirect_chain[-1][0] == reverse(
        "admin:inngest_django_event_change", args=[event.pk]
    )
    assert shown_messages(response.content.decode()) == [
        ("success", f"Event {event.pk} stored; a worker starts the runs it triggers.")
    ]
    drain()
    assert FunctionRun.objects.get(function_id="test-greet").output == "hello Ada"


def form_errors(page: str) -> list[str]:
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, flags=re.S)
    return [" ".join(html.unescape(strip_tags(item)).split()) for item in found]


@pytest.mark.parametrize(
    ("post", "error"),
    [
        ({"name": "t/x", "data": "{not json"}, "This is not valid JSON"),
        ({"name": "t/x", "data": "[1, 2]"}, "Data must be a JSON object ({...}), not list."),
        ({"name": "t/x", "data": '"text"'}, "Data must be a JSON object ({...}), not str."),
        ({"name": "", "data": "{}"}, "This field is required."),
        (
            {"name": "inngest/function.failed", "data": "{}"},
            'Names starting with "inngest/" are sent only by the engine.',
        ),
        ({"name": "x" * 256, "data": "{}"}, "Ensure this value has at most 255 characters"),
        (
            {"name": "t/big", "data": '{"blob": "' + "x" * 600_000 + '"}'},
            "over the limit of 524288 bytes (MAX_EVENT_BYTES)",
        ),
    ],
)
def test_send_event_page_refuses_bad_input_with_form_errors(admin_client, post, error):
    response = admin_client.post(SEND_URL, post)
    assert response.status_code == 200
    errors = form_errors(response.content.decode())
    assert any(error in item for item in errors), errors
    assert not Event.objects.exists()


def test_send_event_needs_the_add_event_permission(django_user_model):
    viewer = staff_client(django_user_model, "viewer", "view_event")
    assert viewer.get(SEND_URL).status_code == 403
    assert viewer.post(SEND_URL, {"name": "t/x", "data": "{}"}).status_code == 403
    assert SEND_URL not in viewer.get(EVENTS_URL).content.decode()
    sender = staff_client(django_user_model, "sender", "view_event", "add_event")
    assert sender.post(SEND_URL, {"name": "t/x", "data": "{}"}).status_code == 302
    assert Event.objects.filter(name="t/x").count() == 1


def test_new_pages_refuse_anonymous_and_non_staff_users(django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw", is_staff=False)
    plain = Client()
    plain.force_login(user)
    for browser in (Client(), plain):
        for url in (FUNCTIONS_URL, SEND_URL):
            for method in (browser.get, browser.post):
                response = method(url, {"name": "t/x", "data": "{}"})
                assert response.status_code == 302, url
                assert response.url.startswith(reverse("admin:login")), url
    assert not Event.objects.exists()


def test_functions_page_needs_the_view_run_permission(django_user_model, shop):
    assert staff_client(django_user_model, "nobody").get(FUNCTIONS_URL).status_code == 403
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    assert viewer.get(FUNCTIONS_URL).status_code == 200


# -- filters and searches -----------------------------------------------------------------


@pytest.fixture
def mixed(client, drain):
    """Return runs of an event, a deferred run and an old run."""

    @inngest.create_defer(client, id="audit")
    def audit(ctx):
        return "audited"

    @client.create_function(fn_id="checkout", trigger=inngest.TriggerEvent(event="shop/paid"))
    def checkout(ctx):
        ctx.defer("audit-it", function=audit, data={})
        return "ok"

    @client.create_function(fn_id="signup", trigger=inngest.TriggerEvent(event="user/joined"))
    def signup(ctx):
        return "ok"

    client.send([inngest.Event(name="shop/paid"), inngest.Event(name="user/joined")])
    drain()
    old = FunctionRun.objects.get(function_id="test-signup")
    FunctionRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    return {run.function_id: run for run in FunctionRun.objects.all()}


def listed(admin_client, params: dict) -> set[str]:
    page = admin_client.get(RUNS_URL, params).content.decode()
    return set(cells(page, "function_id"))


def test_deferred_filter_splits_deferred_runs_from_the_others(admin_client, mixed):
    assert listed(admin_client, {"deferred": "yes"}) == {"test-audit"}
    assert listed(admin_client, {"deferred": "no"}) == {"test-checkout", "test-signup"}


def test_created_filter_keeps_recent_runs(admin_client, mixed):
    assert listed(admin_client, {"created": "24h"}) == {"test-checkout", "test-audit"}
    assert listed(admin_client, {"created": "7d"}) == {"test-checkout", "test-audit", "test-signup"}
    since = (timezone.now() - timedelta(days=3)).isoformat()
    until = (timezone.now() - timedelta(days=1)).isoformat()
    range_params = {"created_at__gte": since, "created_at__lt": until}
    assert listed(admin_client, range_params) == {"test-signup"}


def test_status_and_function_filters_combine(admin_client, mixed):
    assert listed(admin_client, {"status": "COMPLETED", "function": "test-audit"}) == {"test-audit"}


def test_run_search_finds_by_run_id_event_id_and_event_name(admin_client, mixed):
    checkout = mixed["test-checkout"]
    assert listed(admin_client, {"q": checkout.pk.lower()}) == {"test-checkout"}
    assert listed(admin_client, {"q": checkout.event_id}) == {"test-checkout"}
    assert listed(admin_client, {"q": "shop/paid"}) == {"test-checkout"}
    assert listed(admin_client, {"q": "user/"}) == {"test-signup"}
    assert listed(admin_client, {"q": "nothing/like-this"}) == set()


def test_event_search_finds_by_id_name_and_external_id(admin_client, client):
    client.send(
        [
            inngest.Event(name="shop/paid", id="pay-1"),
            inngest.Event(name="user/joined"),
        ]
    )
    paid = Event.objects.get(name="shop/paid")

    def names(term: str) -> list[str]:
        page = admin_client.get(EVENTS_URL, {"q": term}).content.decode()
        return cells(page, "name")

    assert names(paid.pk) == ["shop/paid"]
    assert names("pay-1") == ["shop/paid"]
    assert names("user/joined") == ["user/joined"]
    assert names("shop/") == ["shop/paid"]


def test_run_page_of_a_filtered_list_still_opens(admin_client, mixed):
    assert admin_client.get(run_url(mixed["test-audit"])).status_code == 200
