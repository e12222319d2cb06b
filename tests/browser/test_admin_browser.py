"""In a real browser: log in, filter the run list to deferred runs, follow one to its parent."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect

import inngest_django as inngest
from inngest_django.models import FunctionRun

# The live server reads from another connection, so the data must be committed.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def order_runs(inngest_client, drain):
    """Return an order run that deferred a refund and a receipt, cancelled the receipt, failed."""

    @inngest.create_defer(inngest_client, id="refund-payment")
    def refund_payment(ctx):
        return ctx.step.run("issue-refund", lambda: {"refunded": ctx.event.data["amount"]})

    @inngest.create_defer(inngest_client, id="send-receipt")
    def send_receipt(ctx):
        return "sent"

    @inngest_client.create_function(
        fn_id="process-order", trigger=inngest.TriggerEvent(event="t/placed")
    )
    def process_order(ctx):
        ctx.step.run("charge-card", lambda: "ch_1")
        ctx.defer("refund-if-failed", function=refund_payment, data={"amount": 4200})
        ctx.defer("receipt", function=send_receipt, data={"to": "ada@example.com"}).cancel()

        def ship():
            raise inngest.NonRetriableError("warehouse closed")

        ctx.step.run("create-shipment", ship)

    @inngest_client.create_function(
        fn_id="say-hello", trigger=inngest.TriggerEvent(event="t/hello")
    )
    def say_hello(ctx):
        return "hello"

    inngest_client.send([inngest.Event(name="t/placed"), inngest.Event(name="t/hello")])
    drain()
    return SimpleNamespace(
        parent=FunctionRun.objects.get(function_id="test-process-order", status="FAILED"),
        refund=FunctionRun.objects.get(function_id="test-refund-payment", status="COMPLETED"),
        hello=FunctionRun.objects.get(function_id="test-say-hello"),
    )


def log_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    expect(page).to_have_url(f"{base_url}/admin/")


def test_operator_follows_a_deferred_run_to_the_parent_that_deferred_it(
    order_runs, admin_user, live_server, page: Page
):
    log_in(page, live_server.url)

    page.get_by_role("link", name="Function runs").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)

    started_by = page.locator('#changelist-filter details[data-filter-title="started by"]')
    started_by.get_by_role("link", name="Defer", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]started_by=defer\b"))
    expect(rows).to_have_count(1)
    expect(rows.locator("td.field-function_id")).to_have_text("test-refund-payment")
    expect(rows.locator("td.field-started_by")).to_have_text(
        f"defer refund-if-failed of {order_runs.parent.pk}"
    )

    # The deferred run's own page says where it came from; its parent link leads back.
    rows.locator("th.field-id a").click()
    expect(page.locator(".field-started_by .readonly")).to_have_text(
        f"defer refund-if-failed of {order_runs.parent.pk}"
    )
    page.locator(".field-parent_run_link .readonly a").click()
    expect(page).to_have_url(re.compile(rf"/functionrun/{order_runs.parent.pk}/change/$"))
    expect(page.locator(".field-status_badge .readonly")).to_have_text("Failed")

    defers = page.locator("#defers-group tbody tr.has_original")
    expect(defers).to_have_count(2)
    expect(defers.locator("td.field-defer_link")).to_have_text(["refund-if-failed", "receipt"])
    expect(defers.locator("td.field-status_badge")).to_have_text(["Scheduled", "Cancelled"])
    expect(defers.locator("td.field-deferred_run_link")).to_have_text(
        [re.compile(rf"^\s*{order_runs.refund.pk} Completed\s*$"), "-"]
    )

    # And the inline's link goes to the deferred run again.
    defers.first.locator("td.field-deferred_run_link a").click()
    expect(page).to_have_url(re.compile(rf"/functionrun/{order_runs.refund.pk}/change/$"))


@pytest.fixture
def waiting_run(inngest_client, drain):
    """Return a run waiting for its user's activation event, for up to an hour."""

    @inngest_client.create_function(
        fn_id="onboard", trigger=inngest.TriggerEvent(event="app/user.signed-up")
    )
    def onboard(ctx):
        ctx.step.wait_for_event(
            "wait-activation", event="app/user.activated", timeout="1h", match="data.user_id"
        )

    inngest_client.send(inngest.Event(name="app/user.signed-up", data={"user_id": 7}))
    drain()
    return FunctionRun.objects.get(function_id="test-onboard", status="WAITING")


def test_operator_cancels_a_waiting_run_from_its_page(
    waiting_run, admin_user, live_server, page: Page, drain
):
    log_in(page, live_server.url)
    page.get_by_role("link", name="Function runs").click()
    row = page.locator("#result_list tbody tr", has_text=waiting_run.pk)
    expect(row.locator("td.field-status_badge")).to_contain_text(
        "waiting for app/user.activated until"
    )
    row.locator("th.field-id a").click()

    waits = page.locator("#waits-group tbody tr.has_original")
    expect(waits).to_have_count(1)
    expect(waits.locator("td.field-event_name")).to_have_text("app/user.activated")
    expect(waits.locator("td.field-match")).to_have_text("data.user_id = 7")
    expect(waits.locator("td.field-outcome_badge")).to_have_text("Pending")

    page.get_by_role("button", name="Cancel run").click()
    expect(page).to_have_url(re.compile(rf"/functionrun/{waiting_run.pk}/change/$"))
    expect(page.locator(".messagelist .success")).to_have_text(
        "1 run was asked to stop; a worker cancels it at its next step."
    )
    status = page.locator(".field-status_badge .readonly")
    expect(status).to_contain_text("asked to stop")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)

    # A worker round makes it so; the page shows it once reloaded.
    drain()
    page.reload()
    expect(status).to_have_text("Cancelled")
    expect(page.locator(".field-cancel_requested .readonly")).not_to_have_text("-")
    expect(page.locator(".field-cancel_reason_text .readonly")).to_have_text(
        "admin: cancelled by admin"
    )
    expect(waits.locator("td.field-outcome_badge")).to_have_text("Run ended first")
    expect(page.locator(".messagelist")).to_have_count(0)
