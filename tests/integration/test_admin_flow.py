"""Concurrency keys on the run page, their slot counts, and the flow-state list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import inngest_django as inngest
from inngest_django.admin.flow import running_on_key
from inngest_django.events import dispatch_pending
from inngest_django.models import FlowState, FunctionRun
from tests.helpers import FLOW_STATES_URL, RUNS_URL, cells, page_queries, readonly_value, run_url

pytestmark = pytest.mark.django_db

PACED = ("throttle", "rate_limit")


def test_fixture_flow_runs_reached_the_expected_states(flow):
    assert (flow.untouched.status, flow.rate_limited.status) == ("COMPLETED", "SKIPPED")
    assert (flow.started.status, flow.throttled.status) == ("COMPLETED", "QUEUED")
    assert flow.debounced.status == "QUEUED"
    assert (flow.batched.status, flow.batched.batch_size) == ("QUEUED", 2)
    assert flow.debounced.event.data["rev"] == 1
    assert (flow.singleton.status, flow.singleton_skipped.status) == ("SLEEPING", "SKIPPED")
    assert flow.holding_slot.status == "RUNNING"
    assert flow.holding_slot.event.data["user"] == "a"
    assert flow.waiting_for_slot.status == "QUEUED"
    assert flow.waiting_for_slot.event.data["user"] == "a"
    assert flow.other_user.status == "QUEUED"
    assert flow.other_user.event.data["user"] == "b"


def test_queued_run_page_says_it_waits_for_a_full_concurrency_key(admin_client, flow):
    page = admin_client.get(run_url(flow.waiting_for_slot)).content.decode()
    assert ">Flow control</h2>" in page
    assert readonly_value(page, "concurrency") == (
        "waiting for a concurrency slot: key test-per-user:a has 1 of 1 running "
        "test-per-user:a limit 1: 1 running now env:exports limit 5: 1 running now"
    )
    filtered = f"{RUNS_URL}?concurrency_key=test-per-user%3Aa"
    assert f'<a href="{filtered}">test-per-user:a</a>' in page
    assert readonly_value(page, "flow_note_text") == "-"
    assert readonly_value(page, "singleton_key_text") == "-"
    assert readonly_value(page, "debounce") == "-"

    # Another user's run has room; the run holding the slot is not waiting either.
    page = admin_client.get(run_url(flow.other_user)).content.decode()
    assert readonly_value(page, "concurrency") == (
        "test-per-user:b limit 1: 0 running now env:exports limit 5: 1 running now"
    )
    page = admin_client.get(run_url(flow.holding_slot)).content.decode()
    assert readonly_value(page, "concurrency").startswith("test-per-user:a limit 1: 1 running")


def test_slot_count_ignores_a_dead_workers_expired_lease(admin_client, flow):
    FunctionRun.objects.filter(pk=flow.holding_slot.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    page = admin_client.get(run_url(flow.waiting_for_slot)).content.decode()
    assert readonly_value(page, "concurrency") == (
        "test-per-user:a limit 1: 0 running now env:exports limit 5: 0 running now"
    )


def test_slot_count_reads_only_the_concurrency_key_indexes(flow):
    with CaptureQueriesContext(connection) as queries:
        assert running_on_key("test-per-user:a", timezone.now()) == 1
    [query] = queries.captured_queries
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's plan depends on its statistics; SQLite's does not")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
        plan = [row[-1] for row in cursor.fetchall() if "inngest_django_functionrun" in row[-1]]
    assert plan == [
        "SEARCH inngest_django_functionrun USING INDEX inngest_run_concurrency (concurrency_key=?)",
        "SEARCH inngest_django_functionrun USING INDEX inngest_run_concurrency_2 "
        "(concurrency_key_2=?)",
    ]


def test_flow_notes_and_slot_counts_make_no_query_per_run(admin_client, inngest_client, flow):
    skipped = page_queries(admin_client, RUNS_URL, {"flow": "skipped"})
    by_key = page_queries(admin_client, RUNS_URL, {"concurrency_key": "env:exports"})
    inngest_client.send([inngest.Event(name="t/limited") for _ in range(3)])
    inngest_client.send([inngest.Event(name="t/per-user", data={"user": u}) for u in "cde"])
    dispatch_pending()
    page = admin_client.get(RUNS_URL, {"flow": "skipped"}).content.decode()
    assert len(cells(page, "id")) == 5
    assert page_queries(admin_client, RUNS_URL, {"flow": "skipped"}) == skipped
    page = admin_client.get(RUNS_URL, {"concurrency_key": "env:exports"}).content.decode()
    assert len(cells(page, "id")) == 6
    assert page_queries(admin_client, RUNS_URL, {"concurrency_key": "env:exports"}) == by_key
    # The run page counts once per key: two keys, two counts more than a run with none.
    plain = page_queries(admin_client, run_url(flow.untouched))
    assert page_queries(admin_client, run_url(flow.other_user)) == plain + 2


def test_flow_state_list_shows_pacing_rows_read_only(admin_client, flow):
    page = admin_client.get(FLOW_STATES_URL).content.decode()
    rows = {
        (function_id, kind): ahead
        for function_id, kind, ahead in zip(
            cells(page, "function_id"), cells(page, "kind"), cells(page, "ahead"), strict=True
        )
    }
    # One start of one per hour: the next is about an hour away; two throttled starts: two.
    assert rows[("test-limited", "rate_limit")] in ("59 min 59 s", "1 h")
    assert rows[("test-paced", "throttle")] in ("1 h 59 min", "2 h")
    # Rows that only serialise decisions (singleton, debounce) have no pace to show.
    assert {ahead for (_, kind), ahead in rows.items() if kind not in PACED} <= {"-"}

    throttle = admin_client.get(FLOW_STATES_URL, {"kind__exact": "throttle"}).content.decode()
    assert cells(throttle, "function_id") == ["test-paced"]
    found = admin_client.get(FLOW_STATES_URL, {"q": "test-limited"}).content.decode()
    assert cells(found, "function_id") == ["test-limited"]
    state = FlowState.objects.get(function_id="test-paced")
    state_url = reverse("admin:inngest_django_flowstate_change", args=[state.pk])
    assert 'name="_save"' not in admin_client.get(state_url).content.decode()
    FlowState.objects.filter(pk=state.pk).update(tat=timezone.now() - timedelta(minutes=1))
    page = admin_client.get(FLOW_STATES_URL, {"kind__exact": "throttle"}).content.decode()
    assert cells(page, "ahead") == ["idle"]
