"""The functions page: each function's triggers, options and runs of the last 24 hours."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

import inngest_django as inngest
from inngest_django.models import FunctionRun
from tests.helpers import FUNCTIONS_URL, RUNS_URL, SEND_URL, cells, staff_client

pytestmark = pytest.mark.django_db


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
def shop(inngest_client, drain):
    """Register functions with triggers and options; run some now and one 25 hours ago."""

    @inngest_client.create_function(
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

    @inngest_client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 3 * * *"))
    def nightly(ctx):
        return "done"

    @inngest.create_defer(inngest_client, id="cleanup")
    def cleanup(ctx):
        return "clean"

    inngest_client.send(
        [inngest.Event(name="shop/order.placed", data={"n": n, "user": 1}) for n in (1, 2, 3)]
    )
    drain()
    old = FunctionRun.objects.filter(function_id="test-place-order", status="COMPLETED").first()
    FunctionRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    return FunctionRun.objects.filter(function_id="test-place-order")


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


def test_functions_page_needs_the_view_run_permission(django_user_model, shop):
    assert staff_client(django_user_model, "nobody").get(FUNCTIONS_URL).status_code == 403
    viewer = staff_client(django_user_model, "viewer", "view_functionrun")
    assert viewer.get(FUNCTIONS_URL).status_code == 200
