"""The run list and run page: what started a run, what it waits for, its notes and links."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django.utils.html import strip_tags

import inngest_django as inngest
from inngest_django.enums import WaitKind
from inngest_django.models import FunctionRun, Wait
from tests.helpers import (
    RUNS_URL,
    cells,
    defer_url,
    page_queries,
    raw_cells,
    readonly_value,
    run_url,
    status_notes,
    until_text,
)

pytestmark = pytest.mark.django_db


def test_fixture_runs_reached_the_expected_states(runs):
    assert runs.completed.status == "COMPLETED", runs.completed.error
    assert runs.failed.status == "FAILED"
    assert runs.sleeping.status == "SLEEPING"


def test_run_page_links_parent_and_child_runs(admin_client, runs):
    child = FunctionRun.objects.create(
        id="01CHILDRUN0000000000000000",
        function_id="test-child",
        event=runs.completed.event,
        parent_run=runs.completed,
        available_at=timezone.now(),
    )
    parent_page = admin_client.get(run_url(runs.completed)).content.decode()
    assert f'<a href="{run_url(child)}">{child.pk}</a> test-child Queued' in parent_page
    child_page = admin_client.get(run_url(child)).content.decode()
    assert f'<a href="{run_url(runs.completed)}">{runs.completed.pk}</a>' in child_page


def test_deferred_run_page_says_which_defer_of_which_parent_started_it(admin_client, defers):
    page = admin_client.get(run_url(defers.refund_run)).content.decode()
    started_by = readonly_value(page, "started_by")
    assert started_by == f"defer refund-if-failed of {defers.parent.pk}"
    assert f'<a href="{run_url(defers.parent)}">{defers.parent.pk}</a>' in page
    assert f'href="{defer_url(defers.refund)}"' in page
    assert readonly_value(page, "parent_run_link") == defers.parent.pk
    # The parent lists the deferred run among its child runs, too.
    parent_page = admin_client.get(run_url(defers.parent)).content.decode()
    assert readonly_value(parent_page, "child_runs") == (
        f"{defers.refund_run.pk} test-refund-payment Completed (defer refund-if-failed)"
    )


def test_run_page_of_an_event_run_says_which_event_started_it(admin_client, defers):
    page = admin_client.get(run_url(defers.parent)).content.decode()
    assert readonly_value(page, "started_by") == "event t/placed"


def test_run_list_marks_deferred_runs_with_their_defer_and_parent(admin_client, defers):
    page = admin_client.get(RUNS_URL).content.decode()
    rows = dict(zip(cells(page, "function_id"), raw_cells(page, "started_by"), strict=True))
    marker = rows["test-refund-payment"]
    assert f'<a href="{defer_url(defers.refund)}">refund-if-failed</a>' in marker
    assert f'<a href="{run_url(defers.parent)}">{defers.parent.pk}</a>' in marker
    assert strip_tags(rows["test-process-order"]) == "event t/placed"


def test_run_list_notes_what_waiting_runs_wait_for(admin_client, runs, waiting):
    page = admin_client.get(RUNS_URL).content.decode()
    notes = status_notes(page)
    activation = waiting.inactive.waits.get(step_key="wait-activation")
    big_order = waiting.active.waits.get(step_key="wait-big-order")
    assert notes[waiting.inactive.pk] == (
        f"Waiting waiting for app/user.activated until {until_text(activation.expires_at)}"
    )
    assert notes[waiting.active.pk] == (
        f"Waiting waiting for shop/order.placed until {until_text(big_order.expires_at)}"
    )
    # Runs that do not wait get the badge alone.
    assert notes[runs.sleeping.pk] == "Sleeping"
    assert notes[runs.completed.pk] == "Completed"


def test_run_list_names_a_few_of_many_waits_then_counts_the_rest(admin_client, waiting):
    activation = waiting.inactive.waits.get(step_key="wait-activation")
    Wait.objects.bulk_create(
        Wait(
            run=waiting.inactive,
            kind=WaitKind.EVENT,
            step_key=f"extra-{n}",
            event_name=f"app/extra-{n}",
            expires_at=activation.expires_at,
        )
        for n in range(3)
    )
    page = admin_client.get(RUNS_URL).content.decode()
    until = until_text(activation.expires_at)
    assert status_notes(page)[waiting.inactive.pk] == (
        f"Waiting waiting for app/user.activated until {until} "
        f"waiting for app/extra-0 until {until} waiting for app/extra-1 until {until} "
        "and 1 more"
    )


def test_waiting_notes_make_no_query_per_run(admin_client, inngest_client, drain, waiting):
    two = page_queries(admin_client, RUNS_URL, {"status__exact": "WAITING"})
    inngest_client.send(
        [inngest.Event(name="app/user.signed-up", data={"user_id": n}) for n in (3, 4, 5)]
    )
    drain()
    page = admin_client.get(RUNS_URL, {"status__exact": "WAITING"}).content.decode()
    assert len(cells(page, "id")) == 5
    assert page_queries(admin_client, RUNS_URL, {"status__exact": "WAITING"}) == two


def test_cancelled_run_page_shows_the_cancel_reason(admin_client, inngest_client, drain, waiting):
    inngest_client.send(inngest.Event(name="app/user.deleted", data={"user_id": 1}))
    drain()
    waiting.inactive.refresh_from_db()
    assert waiting.inactive.status == "CANCELLED"
    page = admin_client.get(run_url(waiting.inactive)).content.decode()
    assert "<h2" in page and ">Cancellation</h2>" in page
    reason = readonly_value(page, "cancel_reason_text")
    assert reason.startswith("cancel rule: event app/user.deleted (")
    assert readonly_value(page, "cancel_requested") == until_text(
        waiting.inactive.cancel_requested_at
    )
    # Every wait ended with the run: the rule's own by its event, the other as run ended.
    assert cells(page, "outcome_badge") == ["Event arrived", "Run ended first"]
    # Runs never cancelled show no such section.
    assert ">Cancellation</h2>" not in admin_client.get(run_url(waiting.active)).content.decode()


def test_fixture_invokes_reached_the_expected_states(invokes):
    assert (invokes.waiting.status, invokes.slow.status) == ("WAITING", "SLEEPING")
    assert (invokes.finished.status, invokes.finished.output) == ("COMPLETED", 42)
    assert invokes.slow.parent_run == invokes.waiting
    assert invokes.slow.event.name == "inngest/function.invoked"


def test_invoked_run_page_says_which_run_invoked_it_at_which_step(admin_client, invokes):
    page = admin_client.get(run_url(invokes.slow)).content.decode()
    assert (
        readonly_value(page, "started_by") == f"invoked by {invokes.waiting.pk} at step call-child"
    )
    link = f'<a href="{run_url(invokes.waiting)}">{invokes.waiting.pk}</a>'
    assert link in page
    assert readonly_value(page, "parent_run_link") == invokes.waiting.pk


def test_run_list_notes_the_invoked_run_a_caller_waits_for(admin_client, invokes):
    page = admin_client.get(RUNS_URL).content.decode()
    assert status_notes(page)[invokes.waiting.pk] == (
        f"Waiting waiting for invoked run {invokes.slow.pk}"
    )
    rows = dict(zip(cells(page, "id"), raw_cells(page, "status_badge"), strict=True))
    assert f'<a href="{run_url(invokes.slow)}">' in rows[invokes.waiting.pk]
    started_by = dict(zip(cells(page, "id"), cells(page, "started_by"), strict=True))
    assert started_by[invokes.slow.pk] == f"invoked by {invokes.waiting.pk} at step call-child"
    assert started_by[invokes.quick.pk] == f"invoked by {invokes.finished.pk} at step double-it"
    assert started_by[invokes.waiting.pk] == "event t/call-slow"


def test_invoke_columns_make_no_query_per_run(admin_client, inngest_client, drain, invokes):
    one = page_queries(admin_client, RUNS_URL, {"started_by": "invoke"})
    inngest_client.send([inngest.Event(name="t/call-slow") for _ in range(3)])
    drain()
    many = admin_client.get(RUNS_URL, {"started_by": "invoke"}).content.decode()
    assert len(cells(many, "id")) == 5
    assert page_queries(admin_client, RUNS_URL, {"started_by": "invoke"}) == one
    assert page_queries(admin_client, RUNS_URL, {"status__exact": "WAITING"}) == one


def test_run_list_notes_why_flow_control_skipped_or_delayed_a_run(admin_client, flow):
    notes = status_notes(admin_client.get(RUNS_URL).content.decode())
    assert notes[flow.rate_limited.pk] == "Skipped rate limit: over 1 per 1:00:00"
    assert notes[flow.singleton_skipped.pk] == (
        f"Skipped singleton: run {flow.singleton.pk} is active"
    )
    assert notes[flow.throttled.pk] == f"Queued {flow.throttled.flow_note}"
    assert flow.throttled.flow_note.startswith("throttled until ")
    assert notes[flow.debounced.pk] == "Queued debounced for 1:00:00"
    # Runs flow control let through unchanged get the badge alone.
    assert notes[flow.untouched.pk] == "Completed"
    assert notes[flow.waiting_for_slot.pk] == "Queued"


def test_run_pages_show_the_flow_note_and_debounce_and_singleton_keys(admin_client, flow):
    page = admin_client.get(run_url(flow.debounced)).content.decode()
    assert readonly_value(page, "flow_note_text") == "debounced for 1:00:00"
    assert readonly_value(page, "debounce") == (
        f"key a, starts by {until_text(flow.debounced.debounce_deadline)} at the latest"
    )
    assert readonly_value(page, "concurrency") == "-"

    page = admin_client.get(run_url(flow.singleton)).content.decode()
    assert readonly_value(page, "singleton_key_text") == "- (no key: one for the whole function)"
    page = admin_client.get(run_url(flow.batched)).content.decode()
    assert readonly_value(page, "batch") == (
        "2 events, still taking events for key - (no key: one for the whole function)"
    )
    assert readonly_value(page, "flow_note_text") == "batch of 2"
    page = admin_client.get(run_url(flow.rate_limited)).content.decode()
    assert readonly_value(page, "flow_note_text") == "rate limit: over 1 per 1:00:00"
    # Runs flow control did not touch show no such section.
    assert ">Flow control</h2>" not in admin_client.get(run_url(flow.untouched)).content.decode()
