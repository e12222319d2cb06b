"""In a real browser: pause a function from the functions page, resume it, invoke it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import inngest_django as inngest
from inngest_django.enums import RunStatus
from inngest_django.models import FunctionRun, is_paused
from inngest_django.testing import drain
from tests.browser.test_admin_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SLUG = "test-greet"


@pytest.fixture
def greet(inngest_client):
    @inngest_client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="t/greet"))
    def greet(ctx):
        return ctx.step.run("say", lambda: f"hello {ctx.event.data.get('who', 'you')}")


def function_row(page: Page):
    return page.locator(f'tr.function-row[data-function="{SLUG}"]')


def test_operator_pauses_a_function_then_resumes_it_and_invokes_it(
    greet, admin_user, live_server, page: Page, tmp_path: Path
):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/inngest_django/functionrun/")
    page.get_by_role("link", name="Functions", exact=True).click()
    row = function_row(page)
    row.get_by_role("button", name="Pause").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Function {SLUG} is paused")
    expect(function_row(page).locator(".paused")).to_have_text("paused")
    assert is_paused(SLUG)
    page.screenshot(path=str(tmp_path / "functions-paused.png"), full_page=True)

    # Queued while paused: no worker takes it.
    inngest.send({"name": "t/greet"})
    drain(timeout=0.5)  # dispatches the event to nothing
    assert not FunctionRun.objects.filter(function_id=SLUG).exists()
    run_id = inngest.invoke_function(SLUG, {"who": "ada"})
    drain(timeout=0.5)
    assert FunctionRun.objects.get(pk=run_id).status == RunStatus.QUEUED

    # The function's own page says so, and resumes it.
    function_row(page).get_by_role("link", name="details, invoke").click()
    expect(page.locator("#pause-state")).to_contain_text("Paused since")
    page.get_by_role("button", name="Resume function").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Function {SLUG} is resumed")
    expect(page.locator("#pause-state")).to_have_text(re.compile(r"\s*Active\s*"))
    drain()
    assert FunctionRun.objects.get(pk=run_id).status == RunStatus.COMPLETED

    # Invoke from the page: bad JSON is a form error, good JSON opens the new run's page.
    page.fill("#id_data", "{oops")
    page.get_by_role("button", name="Invoke function").click()
    expect(page.locator(".errorlist")).to_contain_text("This is not valid JSON")
    page.fill("#id_data", '{"who": "grace"}')
    page.get_by_role("button", name="Invoke function").click()
    expect(page).to_have_url(re.compile(r"/functionrun/[0-9A-Z]{26}/change/$"))
    expect(page.locator(".messagelist")).to_contain_text(f"queued for {SLUG}")
    invoked = FunctionRun.objects.exclude(pk=run_id).get(function_id=SLUG)
    assert invoked.event.data == {"who": "grace"}
