"""In a real browser: pages that update themselves, the retry columns, and step attempts."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

import inngest_django as inngest
from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun
from tests.browser.screenshots import save_screenshot
from tests.browser.test_admin_browser import log_in

# The live server reads from another connection, so the data must be committed.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Poll every 300 ms instead of 3 s: the per-browser knob live.js reads at load.
FAST_POLLING = "window.localStorage.setItem('inngest_django.live.interval_ms', '300');"
RUNS_PATH = "/admin/inngest_django/functionrun/"


@pytest.fixture
def shop_runs(inngest_client, drain):
    """Return a run retried twice then done, one waiting 5 min to retry, one queued."""
    calls = []

    @inngest_client.create_function(
        fn_id="charge-order", trigger=inngest.TriggerEvent(event="shop/order.placed")
    )
    def charge_order(ctx):
        ctx.step.run("load-order", lambda: {"id": 7})

        def charge():
            calls.append(1)
            if len(calls) < 3:
                raise ValueError(f"gateway timeout {len(calls)}")
            return "ch_1"

        ctx.step.run("charge-card", charge)
        ctx.step.run("send-receipt", lambda: "sent")

    @inngest_client.create_function(
        fn_id="sync-stock", trigger=inngest.TriggerEvent(event="shop/stock.changed"), retries=3
    )
    def sync_stock(ctx):
        def pull():
            raise inngest.RetryAfterError("supplier busy", timedelta(minutes=5))

        ctx.step.run("pull-supplier", pull)

    @inngest_client.create_function(
        fn_id="tidy-up", trigger=inngest.TriggerEvent(event="shop/day.closed")
    )
    def tidy_up(ctx):
        return "tidy"

    inngest_client.send(
        [inngest.Event(name="shop/order.placed"), inngest.Event(name="shop/stock.changed")]
    )
    drain()
    inngest_client.send(inngest.Event(name="shop/day.closed"))
    dispatch_pending()
    return SimpleNamespace(
        charged=FunctionRun.objects.get(function_id="test-charge-order"),
        retrying=FunctionRun.objects.get(function_id="test-sync-stock"),
        queued=FunctionRun.objects.get(function_id="test-tidy-up"),
    )


def finish(run: FunctionRun, status: str) -> None:
    """Change a run's state behind the open page's back, as a worker would."""
    now = timezone.now()
    FunctionRun.objects.filter(pk=run.pk).update(status=status, started_at=now, finished_at=now)


def run_row(page: Page, run: FunctionRun):
    return page.locator("#result_list tbody tr").filter(
        has=page.locator("th.field-id", has_text=run.pk)
    )


def test_run_list_updates_itself_until_turned_off(shop_runs, admin_user, live_server, page: Page):
    page.context.add_init_script(FAST_POLLING)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}{RUNS_PATH}")
    toggle = page.locator("#inngest-live-toggle")
    expect(toggle).to_be_checked()
    queued = run_row(page, shop_runs.queued).locator("td.field-status_badge")
    retrying = run_row(page, shop_runs.retrying)
    expect(queued).to_have_text("Queued")
    expect(retrying.locator("td.field-status_badge")).to_have_text("Retrying")
    expect(retrying.locator("td.field-attempt_of")).to_have_text("2 / 4")
    expect(retrying.locator("td.field-next_attempt")).to_have_text(re.compile(r"^in [45] min$"))
    expect(retrying.locator("td.field-last_error")).to_have_text("RetryAfterError: supplier busy")
    page.set_viewport_size({"width": 1700, "height": 600})
    save_screenshot(page, "admin-run-list")

    # A worker finishes the run: the open page shows it, with no reload.
    page.evaluate("window.notReloaded = true")
    finish(shop_runs.queued, "COMPLETED")
    expect(queued).to_have_text("Completed", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#inngest-live-status")).to_contain_text("updated")

    # Off: no more requests for the page, and changes wait for a reload.
    toggle.uncheck()
    page.wait_for_timeout(500)  # a request already out when it was turned off is let go
    polled: list[str] = []
    page.on("request", lambda request: polled.append(request.url))
    finish(shop_runs.retrying, "FAILED")
    page.wait_for_timeout(2_000)
    assert polled == []
    expect(retrying.locator("td.field-status_badge")).to_have_text("Retrying")

    # The choice is remembered across page loads.
    page.reload()
    expect(toggle).not_to_be_checked()
    expect(retrying.locator("td.field-status_badge")).to_have_text("Failed")
    page.wait_for_timeout(1_000)
    polled.clear()
    page.wait_for_timeout(1_500)
    assert polled == []


def test_run_page_and_functions_page_update_themselves(
    shop_runs, admin_user, live_server, page: Page
):
    page.context.add_init_script(FAST_POLLING)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}{RUNS_PATH}{shop_runs.queued.pk}/change/")
    status = page.locator(".field-status_badge .readonly")
    expect(status).to_have_text("Queued")
    finish(shop_runs.queued, "COMPLETED")
    expect(status).to_have_text("Completed", timeout=20_000)

    page.goto(f"{live_server.url}{RUNS_PATH}functions/")
    counts = page.locator('tr[data-function="test-sync-stock"] td.field-counts')
    expect(counts).to_have_text(re.compile(r"Queued 1"))
    finish(shop_runs.retrying, "FAILED")
    expect(counts).to_have_text(re.compile(r"Failed 1"), timeout=20_000)


def test_timeline_marks_each_failed_attempt_of_a_step(
    shop_runs, admin_user, live_server, page: Page
):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}{RUNS_PATH}{shop_runs.charged.pk}/change/")
    timeline = page.locator("#timeline")
    expect(timeline).to_be_visible()
    # The timeline comes before the run's fields.
    fields_top = page.locator("div.form-row.field-status_badge").bounding_box()["y"]
    assert timeline.bounding_box()["y"] < fields_top

    charge = timeline.locator(".timeline-row").filter(has_text="charge-card")
    expect(charge.locator(".timeline-mark")).to_have_count(2)
    expect(charge.locator(".timeline-failure")).to_have_text(
        [
            re.compile(r"attempt 1 failed \d\d:\d\d:\d\d\.\d{3}: ValueError: gateway timeout 1"),
            re.compile(r"attempt 2 failed \d\d:\d\d:\d\d\.\d{3}: ValueError: gateway timeout 2"),
        ]
    )
    expect(charge.locator(".timeline-mark").first).to_have_attribute(
        "title", re.compile(r"attempt 1 failed at .*\nValueError: gateway timeout 1", re.S)
    )
    # Each mark sits on the step's bar, inside the track.
    track = charge.locator(".timeline-track").bounding_box()
    for index in range(2):
        mark = charge.locator(".timeline-mark").nth(index).bounding_box()
        assert track["x"] - 2 <= mark["x"] <= track["x"] + track["width"]
    expect(timeline.locator(".timeline-tick").first).to_have_text("+0 ms")
    expect(timeline.locator(".timeline-start")).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
    )
    save_screenshot(timeline, "admin-run-timeline")
    page.set_viewport_size({"width": 1280, "height": 900})
    save_screenshot(page, "admin-run-page")


def test_run_list_waits_while_rows_are_ticked(shop_runs, admin_user, live_server, page: Page):
    page.context.add_init_script(FAST_POLLING)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}{RUNS_PATH}")
    queued = run_row(page, shop_runs.queued)
    expect(queued.locator("td.field-status_badge")).to_have_text("Queued")
    # A ticked row is an action about to be taken: the page holds still under it.
    queued.locator("input.action-select").check()
    finish(shop_runs.queued, "COMPLETED")
    expect(page.locator("#inngest-live-status")).to_have_text("paused while you edit")
    page.wait_for_timeout(1_500)
    expect(queued.locator("td.field-status_badge")).to_have_text("Queued")
    expect(queued.locator("input.action-select")).to_be_checked()
    # Unticked, it catches up, and the admin's selection counter still works on the new rows.
    queued.locator("input.action-select").uncheck()
    expect(queued.locator("td.field-status_badge")).to_have_text("Completed", timeout=20_000)
    run_row(page, shop_runs.retrying).locator("input.action-select").check()
    expect(page.locator(".action-counter")).to_have_text(re.compile(r"^1 of 3 selected"))
