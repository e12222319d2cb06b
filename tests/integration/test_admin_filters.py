"""The run and event list filters, alone and combined."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import inngest_django as inngest
from inngest_django.models import Event, FunctionRun
from tests.helpers import EVENTS_URL, RUNS_URL, cells, listed_functions, run_url

pytestmark = pytest.mark.django_db


def test_status_filter_narrows_the_run_list(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"status__exact": "FAILED"}).content.decode()
    assert run_url(runs.failed) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.sleeping) not in page


def test_function_filter_offers_registered_and_stored_slugs(admin_client, runs):
    orphan_event = Event.objects.create(id="01ORPHANEVENT0000000000000", name="t/old", ts=0)
    FunctionRun.objects.create(
        id="01ORPHANRUN000000000000000",
        function_id="retired-function",
        event=orphan_event,
        available_at=timezone.now(),
    )
    page = admin_client.get(RUNS_URL).content.decode()
    # Registered, with runs; registered at startup, without runs; only in the database.
    for slug in ("test-send-email", "testapp-write-orders", "retired-function"):
        assert f"?function={slug}" in page


def test_function_filter_narrows_the_run_list(admin_client, runs):
    page = admin_client.get(RUNS_URL, {"function": "test-send-email"}).content.decode()
    assert run_url(runs.sleeping) in page
    assert run_url(runs.completed) not in page
    assert run_url(runs.failed) not in page


def test_started_by_filter_narrows_the_run_list_to_deferred_runs(admin_client, defers):
    page = admin_client.get(RUNS_URL).content.decode()
    assert "?started_by=defer" in page
    assert "?started_by=event" in page

    deferred = admin_client.get(RUNS_URL, {"started_by": "defer"}).content.decode()
    assert run_url(defers.refund_run) in deferred
    assert run_url(defers.parent) in deferred  # linked as the parent, not listed as a row
    assert cells(deferred, "function_id") == ["test-refund-payment"]
    assert cells(deferred, "started_by") == [f"defer refund-if-failed of {defers.parent.pk}"]

    by_event = admin_client.get(RUNS_URL, {"started_by": "event"}).content.decode()
    assert sorted(cells(by_event, "function_id")) == ["test-bad-refund", "test-process-order"]
    assert sorted(cells(by_event, "started_by")) == ["event t/placed", "event t/refused"]


def test_started_by_filter_offers_invoke(admin_client, invokes):
    page = admin_client.get(RUNS_URL).content.decode()
    assert "?started_by=invoke" in page
    invoked = admin_client.get(RUNS_URL, {"started_by": "invoke"}).content.decode()
    assert sorted(cells(invoked, "function_id")) == ["test-quick-child", "test-slow-child"]
    by_event = admin_client.get(RUNS_URL, {"started_by": "event"}).content.decode()
    assert sorted(cells(by_event, "function_id")) == ["test-call-quick", "test-call-slow"]


def test_event_filters_by_name_prefix_and_dispatch(admin_client, runs):
    inngest.send(inngest.Event(name="later/queued"))
    page = admin_client.get(EVENTS_URL).content.decode()
    assert "?name_prefix=inngest%2F" in page and "?name_prefix=t%2F" in page
    engine_only = admin_client.get(EVENTS_URL, {"name_prefix": "inngest/"}).content.decode()
    assert "inngest/function.finished" in engine_only
    assert "t/ordered" not in engine_only
    waiting = admin_client.get(EVENTS_URL, {"dispatched": "no"}).content.decode()
    assert "later/queued" in waiting
    assert "t/ordered" not in waiting


def test_flow_control_filter_splits_skipped_from_delayed_runs(admin_client, flow):
    page = admin_client.get(RUNS_URL).content.decode()
    assert "?flow=skipped" in page and "?flow=delayed" in page
    assert "Skipped by flow control" in page and "Delayed by flow control" in page
    skipped = admin_client.get(RUNS_URL, {"flow": "skipped"}).content.decode()
    assert set(cells(skipped, "id")) == {flow.rate_limited.pk, flow.singleton_skipped.pk}
    delayed = set(cells(admin_client.get(RUNS_URL, {"flow": "delayed"}).content.decode(), "id"))
    # The first paced run may carry a note too: admission times it a moment after dispatch.
    expected = {flow.throttled.pk, flow.debounced.pk, flow.batched.pk}
    assert expected <= delayed <= {*expected, flow.started.pk}


def test_concurrency_key_filter_offers_held_keys_and_finds_runs_by_either_key(admin_client, flow):
    page = admin_client.get(RUNS_URL).content.decode()
    # Offered: the keys an executing run holds; user b's key is held by no one.
    assert "?concurrency_key=test-per-user%3Aa" in page
    assert "?concurrency_key=env%3Aexports" in page
    assert "?concurrency_key=test-per-user%3Ab" not in page

    by_user = admin_client.get(RUNS_URL, {"concurrency_key": "test-per-user:a"}).content.decode()
    assert set(cells(by_user, "id")) == {flow.holding_slot.pk, flow.waiting_for_slot.pk}
    # A key no executing run holds can still be asked for, and stays shown as chosen.
    other = admin_client.get(RUNS_URL, {"concurrency_key": "test-per-user:b"}).content.decode()
    assert cells(other, "id") == [flow.other_user.pk]
    assert "test-per-user:b" in other
    shared = admin_client.get(RUNS_URL, {"concurrency_key": "env:exports"}).content.decode()
    assert len(cells(shared, "id")) == 3  # the second key, shared across functions


def test_deferred_filter_splits_deferred_runs_from_the_others(admin_client, mixed):
    assert listed_functions(admin_client, {"deferred": "yes"}) == {"test-audit"}
    assert listed_functions(admin_client, {"deferred": "no"}) == {"test-checkout", "test-signup"}


def test_created_filter_keeps_recent_runs(admin_client, mixed):
    assert listed_functions(admin_client, {"created": "24h"}) == {"test-checkout", "test-audit"}
    assert listed_functions(admin_client, {"created": "7d"}) == {
        "test-checkout",
        "test-audit",
        "test-signup",
    }
    since = (timezone.now() - timedelta(days=3)).isoformat()
    until = (timezone.now() - timedelta(days=1)).isoformat()
    range_params = {"created_at__gte": since, "created_at__lt": until}
    assert listed_functions(admin_client, range_params) == {"test-signup"}


def test_status_and_function_filters_combine(admin_client, mixed):
    assert listed_functions(admin_client, {"status": "COMPLETED", "function": "test-audit"}) == {
        "test-audit"
    }


def test_run_page_of_a_filtered_list_still_opens(admin_client, mixed):
    assert admin_client.get(run_url(mixed["test-audit"])).status_code == 200
