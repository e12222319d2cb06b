"""In a real browser: the workers page with a live worker and a stale one; the metrics charts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

import inngest_django as inngest
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun, WorkerHeartbeat
from tests.browser.screenshots import save_screenshot
from tests.browser.test_admin_browser import log_in

# The live server reads from another connection, so the data must be committed.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def recent_runs(inngest_client, drain):
    """Forty runs over the last half hour: most complete, some fail, durations 0.1 to 4 s."""

    @inngest_client.create_function(
        fn_id="process-order", trigger=inngest.TriggerEvent(event="shop/order.placed")
    )
    def process_order(ctx):
        if ctx.event.data["n"] % 7 == 0:
            raise inngest.NonRetriableError("card declined")
        return "shipped"

    @inngest_client.create_function(
        fn_id="send-receipt", trigger=inngest.TriggerEvent(event="shop/order.placed")
    )
    def send_receipt(ctx):
        return "sent"

    inngest_client.send(
        [inngest.Event(name="shop/order.placed", data={"n": n}) for n in range(1, 21)]
    )
    drain()
    now = timezone.now()
    for index, run in enumerate(FunctionRun.objects.order_by("id")):
        started = now - timedelta(seconds=45 * index + 5)
        FunctionRun.objects.filter(pk=run.pk).update(
            started_at=started, finished_at=started + timedelta(seconds=0.1 + (index % 10) * 0.4)
        )
    # A backlog: two orders queued, due for two minutes.
    inngest_client.send([inngest.Event(name="shop/order.placed", data={"n": 100})])
    dispatch_pending()
    FunctionRun.objects.filter(status="QUEUED").update(available_at=now - timedelta(minutes=2))
    return now


def test_operator_sees_charts_and_narrows_them_to_one_function(
    recent_runs, admin_user, live_server, page: Page
):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/inngest_django/")
    page.locator("#inngest-pages").get_by_role("link", name="Metrics").click()
    expect(page.locator("h1")).to_have_text("Metrics")
    charts = page.locator("svg.inngest-chart")
    expect(charts).to_have_count(2)
    # Drawn with data: a line per series on the runs chart, points with tooltips.
    expect(charts.first.locator("polyline.series")).to_have_count(3)
    expect(charts.nth(1).locator("circle.point").first).to_be_attached()
    expect(page.locator('[data-figure="started"] .value')).to_have_text("40")
    expect(page.locator('[data-figure="failed"] .value')).to_have_text("2")
    expect(page.locator('[data-figure="due"] .value')).to_have_text("2")
    expect(page.locator('[data-figure="oldest-due"] .value')).to_have_text(re.compile(r"^12\d\."))
    assert charts.first.bounding_box()["height"] > 100
    save_screenshot(page, "metrics")

    rows = page.locator("#metrics-functions tr.metrics-function")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").nth(1)).to_have_text("20")
    rows.filter(has_text="test-process-order").get_by_role("link").click()
    expect(page.locator('[data-figure="failed"] .value')).to_have_text("2")
    expect(page.locator("#metrics-functions")).to_have_count(0)

    page.select_option("#metrics-function", "test-send-receipt")
    page.get_by_role("button", name="Show").click()
    expect(page.locator('[data-figure="started"] .value')).to_have_text("20")
    expect(page.locator('[data-figure="failed"] .value')).to_have_text("0")
    expect(page.locator("#metrics-function")).to_have_value("test-send-receipt")


def test_operator_sees_a_live_worker_and_a_stale_one(workers, admin_user, live_server, page):
    worker = workers.start("--worker-id", "web-1:live", INNGEST_DJANGO_TEST_HEARTBEAT_SECONDS="1")
    workers.wait_for(
        lambda: WorkerHeartbeat.objects.filter(pk="web-1:live").exists(),
        what="the live worker's row",
        timeout=60,
    )
    gone = timezone.now() - timedelta(minutes=5)
    WorkerHeartbeat.objects.create(
        worker_id="web-2:dead",
        host="web-2",
        pid=31337,
        threads=4,
        started_at=gone - timedelta(hours=2),
        last_heartbeat=gone,
        heartbeat_seconds=10,
        runs_in_hand=3,
    )
    log_in(page, live_server.url)
    page.get_by_role("link", name="Workers").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    live = rows.filter(has_text="web-1:live")
    expect(live.locator(".worker-state")).to_have_text("Running")
    expect(live.locator("td.field-pid")).to_have_text(str(worker.pid))
    dead = rows.filter(has_text="web-2:dead")
    expect(dead.locator(".worker-state")).to_have_text("Stale")
    expect(dead.locator("td.field-runs_in_hand")).to_have_text("3")
    expect(dead.locator("td.field-heartbeat")).to_contain_text("5 min ago")
    expect(dead.locator("td.field-heartbeat")).to_contain_text(
        timezone.localtime(gone).strftime("%H:%M:%S.%f")[:-3]
    )
    save_screenshot(page, "workers")
