"""The run page's step and wait tables: steps in order, what each wait waits for, its outcome."""

from __future__ import annotations

import pytest

import inngest_django as inngest
from inngest_django.models import FunctionRun
from tests.helpers import cells, event_url, inline, raw_cells, readonly_value, run_url, until_text

pytestmark = pytest.mark.django_db


def test_completed_run_page_shows_output_event_and_steps_in_order(admin_client, runs):
    page = admin_client.get(run_url(runs.completed)).content.decode()
    assert event_url(runs.completed.event) in page
    assert "t/imported" in page
    assert "&quot;copied&quot;: 2" in page  # pretty output
    assert cells(page, "step_key") == ["fetch-urls", "copy-images"]
    assert cells(page, "op") == ["Run", "Run"]
    assert cells(page, "status_badge") == ["Completed", "Completed"]
    assert cells(page, "attempts") == ["1", "2"]  # copy-images needed a retry
    assert '"a.png"' in cells(page, "output_or_error")[0]


def test_sleeping_run_page_shows_wake_time_and_lease_fields(admin_client, runs):
    page = admin_client.get(run_url(runs.sleeping)).content.decode()
    wait = runs.sleeping.steps.get(step_key="wait-a-day")
    assert wait.wake_at is not None
    assert cells(page, "step_key") == ["send-welcome", "wait-a-day"]
    assert cells(page, "status_badge") == ["Completed", "Sleeping"]
    assert cells(page, "op") == ["Run", "Sleep"]
    assert cells(page, "wakes")[0] == "-"
    assert cells(page, "wakes")[1] != "-"
    for label in ("Locked by", "Locked until", "Available at"):
        assert label in page


def test_fixture_waiting_runs_reached_the_expected_states(waiting):
    assert waiting.inactive.status == "WAITING"
    assert waiting.active.status == "WAITING"
    assert waiting.active.waits.get(step_key="wait-activation").event == waiting.activation


def test_waiting_run_page_shows_what_it_waits_for_and_until_when(admin_client, waiting):
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    assert cells(page, "kind") == ["Cancel rule", "Wait for event"]
    assert cells(inline(page, "waits"), "step_key") == ["-", "wait-activation"]
    assert cells(page, "event_name") == ["app/user.deleted", "app/user.activated"]
    assert cells(page, "match") == [
        "data.user_id = 1 if event.data.user_id == async.data.user_id",
        "data.user_id = 1",
    ]
    activation = waiting.inactive.waits.get(step_key="wait-activation")
    assert cells(page, "expires") == ["-", until_text(activation.expires_at)]
    assert cells(page, "resolved") == ["-", "-"]
    assert cells(page, "outcome_badge") == ["Pending", "Pending"]
    assert cells(page, "event_link") == ["-", "-"]
    assert cells(page, "child_run_link") == ["-", "-"]
    # The steps inline shows the same wait as a step that wakes at the timeout.
    assert cells(page, "op") == ["Wait for event"]
    assert cells(page, "wakes") == [until_text(activation.expires_at)]


def test_resolved_wait_shows_its_outcome_and_the_event_it_matched(admin_client, waiting):
    page = admin_client.get(run_url(waiting.active)).content.decode()
    # Pending waits first, then the resolved one.
    assert cells(inline(page, "waits"), "step_key") == ["-", "wait-big-order", "wait-activation"]
    assert cells(page, "outcome_badge") == ["Pending", "Pending", "Event arrived"]
    assert cells(page, "resolved")[:2] == ["-", "-"]
    assert cells(page, "resolved")[2] != "-"
    assert cells(page, "match")[1] == (
        "if async.data.user_id == event.data.user_id && async.data.total > 100"
    )
    assert "&amp;&amp;" in raw_cells(page, "match")[1]
    assert cells(page, "event_link") == ["-", "-", waiting.activation.pk]
    assert f'<a href="{event_url(waiting.activation)}">' in raw_cells(page, "event_link")[2]


def test_wait_on_a_field_the_trigger_lacks_says_it_matches_nothing(admin_client, drain, waiting):
    inngest.send(inngest.Event(name="app/user.signed-up", data={"email": "no-id@example.com"}))
    drain()
    run = FunctionRun.objects.get(
        function_id="test-onboard", event__data__email="no-id@example.com"
    )
    page = admin_client.get(run_url(run)).content.decode()
    assert cells(page, "match") == [
        "data.user_id is missing from the trigger event: nothing matches "
        "if event.data.user_id == async.data.user_id",
        "data.user_id is missing from the trigger event: nothing matches",
    ]


def test_caller_page_links_the_run_it_invoked(admin_client, invokes):
    page = admin_client.get(run_url(invokes.waiting)).content.decode()
    assert cells(page, "kind") == ["Invoked run"]
    assert cells(inline(page, "waits"), "step_key") == ["call-child"]
    assert cells(page, "event_name") == ["-"]
    assert cells(page, "outcome_badge") == ["Pending"]
    assert cells(page, "child_run_link") == [f"{invokes.slow.pk} test-slow-child Sleeping"]
    link = f'<a href="{run_url(invokes.slow)}">{invokes.slow.pk}</a>'
    assert link in raw_cells(page, "child_run_link")[0]
    assert readonly_value(page, "child_runs") == (
        f"{invokes.slow.pk} test-slow-child Sleeping (invoked at step call-child)"
    )
    assert (
        readonly_value(page, "status_badge") == f"Waiting waiting for invoked run {invokes.slow.pk}"
    )


def test_finished_invoke_shows_its_outcome(admin_client, invokes):
    page = admin_client.get(run_url(invokes.finished)).content.decode()
    assert cells(page, "outcome_badge") == ["Invoked run finished"]
    assert cells(page, "child_run_link") == [f"{invokes.quick.pk} test-quick-child Completed"]
    assert cells(page, "op") == ["Invoke"]
    assert cells(page, "output_or_error") == ["42"]
