"""In a real browser: a completed run's timeline and defers, a failed run, a test event."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun

from .test_admin_browser import log_in

# The live server reads from another connection, so the data must be committed.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def incident_runs(inngest_client, drain):
    """Return a completed order run that slept, invoked and deferred, and a failed charge run."""

    @inngest_client.create_function(fn_id="price", trigger=inngest.TriggerEvent(event="t/unused"))
    def price(ctx):
        return ctx.step.run("double", lambda: ctx.event.data["n"] * 2)

    @inngest.create_defer(inngest_client, id="notify")
    def notify(ctx):
        return ctx.step.run("email", lambda: "sent")

    @inngest_client.create_function(
        fn_id="handle-order", trigger=inngest.TriggerEvent(event="t/order")
    )
    def handle_order(ctx):
        ctx.step.run("load", lambda: {"id": 7})
        ctx.step.sleep("pause", 20)
        total = ctx.step.invoke("get-price", function=price, data={"n": 21})
        ctx.defer("notify-customer", function=notify, data={})
        return {"total": total}

    @inngest_client.create_function(
        fn_id="charge", trigger=inngest.TriggerEvent(event="t/charge"), retries=1
    )
    def charge(ctx):
        def capture():
            raise RuntimeError("card declined")

        ctx.step.run("capture", capture)

    @inngest_client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="t/greeted"))
    def greet(ctx):
        return "hello"

    inngest_client.send([inngest.Event(name="t/order"), inngest.Event(name="t/charge")])
    drain()
    return SimpleNamespace(
        order=FunctionRun.objects.get(function_id="test-handle-order", status="COMPLETED"),
        notified=FunctionRun.objects.get(function_id="test-notify", status="COMPLETED"),
        failed=FunctionRun.objects.get(function_id="test-charge", status="FAILED"),
    )


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.exists() and path.stat().st_size > 0


def test_operator_reads_the_timelines_and_sends_a_test_event(
    incident_runs, admin_user, live_server, page: Page, tmp_path: Path
):
    base = live_server.url
    log_in(page, base)

    # The completed run: a bar per step, sleep, invoke and defer, with links out.
    page.goto(f"{base}/admin/inngest_django/functionrun/{incident_runs.order.pk}/change/")
    timeline = page.locator("#timeline")
    expect(timeline.locator("h2")).to_have_text("Timeline")
    rows = timeline.locator(".timeline-row")
    expect(rows).to_have_count(4)
    for kind in ("step", "sleep", "invoke", "defer"):
        row = timeline.locator(f'.timeline-row[data-kind="{kind}"]')
        expect(row).to_have_count(1)
        expect(row.locator(".timeline-bar")).to_be_visible()
    expect(timeline.locator('[data-kind="invoke"] .timeline-links a')).to_have_count(1)
    screenshot(page, tmp_path / "completed-run.png")

    # Follow the defer's bar to the deferred run, then back to its parent.
    defer_row = timeline.locator('.timeline-row[data-kind="defer"]')
    defer_row.locator(".timeline-links a").click()
    expect(page).to_have_url(re.compile(rf"/functionrun/{incident_runs.notified.pk}/change/$"))
    page.locator(".field-parent_run_link .readonly a").click()
    expect(page).to_have_url(re.compile(rf"/functionrun/{incident_runs.order.pk}/change/$"))

    # The failed run: its step's bar says how often it ran and why it failed.
    page.goto(f"{base}/admin/inngest_django/functionrun/{incident_runs.failed.pk}/change/")
    failed_row = page.locator('#timeline .timeline-row[data-kind="step"]')
    expect(failed_row).to_have_attribute("data-status", "FAILED")
    expect(failed_row.locator(".timeline-attempts")).to_have_text("2 attempts")
    expect(failed_row.locator(".timeline-error")).to_have_text("RuntimeError: card declined")
    expect(page.locator(".field-pretty_error .readonly")).to_contain_text("Traceback")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    screenshot(page, tmp_path / "failed-run.png")

    # The functions page lists the functions with their recent runs.
    page.goto(f"{base}/admin/inngest_django/functionrun/")
    page.get_by_role("link", name="Functions", exact=True).click()
    expect(page.locator('tr[data-function="test-charge"] .field-counts')).to_have_text("Failed 1")
    screenshot(page, tmp_path / "functions.png")

    # Send a test event from the event list's page for it.
    page.goto(f"{base}/admin/inngest_django/event/")
    page.get_by_role("link", name="Send an event").click()
    page.fill("#id_name", "t/greeted")
    page.fill("#id_data", "not json")
    page.get_by_role("button", name="Send event").click()
    expect(page.locator(".errorlist")).to_contain_text("This is not valid JSON")
    page.fill("#id_data", '{"who": "Ada"}')
    page.get_by_role("button", name="Send event").click()
    event = Event.objects.get(name="t/greeted")
    expect(page.locator(".messagelist .success")).to_have_text(
        f"Event {event.pk} stored; a worker starts the runs it triggers."
    )
    expect(page).to_have_url(re.compile(rf"/event/{event.pk}/change/$"))
    assert event.data == {"who": "Ada"}
    screenshot(page, tmp_path / "sent-event.png")
