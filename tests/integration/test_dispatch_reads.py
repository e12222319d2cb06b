"""Sending and dispatching cost few statements: one INSERT, then one claim, one look-up read."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import inngest_django as inngest
from inngest_django import clock
from inngest_django.events import claim_for_dispatch, dispatch_pending
from inngest_django.models import Event, FunctionRun, WaitKey
from inngest_django.models.rows import MAX_INSERT_PARAMS
from tests.helpers import counted_commits, send_steps

pytestmark = pytest.mark.django_db(transaction=True)

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")


def test_a_batch_of_events_is_dispatched_in_three_statements_four_on_sqlite():
    send_steps(3, steps=1)
    with CaptureQueriesContext(connection) as captured:
        assert dispatch_pending() == 3
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(TRANSACTION_CONTROL)
    ]
    kinds = [" ".join(sql.split()[:3]) for sql in statements]
    if connection.vendor == "postgresql":
        claim = [
            # Claim the batch (the UPDATE in a WITH) and, UNION ALL, the paused functions and
            # the batch's names' wait keys.
            "WITH stamped AS",
        ]
    else:
        claim = [
            'UPDATE "inngest_django_event" SET',  # claim the batch, RETURNING its rows
            "SELECT 0, function_id,",  # paused functions UNION ALL the batch's names' wait keys
        ]
    assert kinds == [
        "SELECT 1 FROM",  # anything to dispatch?
        *claim,
        'INSERT INTO "inngest_django_functionrun"',
    ], statements
    assert FunctionRun.objects.count() == 3


def test_the_claim_of_a_batch_reads_its_events_paused_functions_and_wait_keys(inngest_client):
    @inngest_client.create_function(fn_id="a", trigger=inngest.TriggerEvent(event="d/a"))
    def a(ctx):
        return 1

    @inngest_client.create_function(fn_id="b", trigger=inngest.TriggerEvent(event="d/b"))
    def b(ctx):
        return 1

    inngest.pause_function("test-b")
    WaitKey.objects.create(event_name="d/a", match_key="data.id")
    WaitKey.objects.create(event_name="d/other", match_key="data.id")
    sent = inngest.send(
        [{"name": "d/a", "data": {"id": 1}}, {"name": "d/b", "data": {"nested": {"x": [1]}}}]
    )
    with transaction.atomic():
        events, paused, wait_keys = claim_for_dispatch(limit=10, now=clock.now())
    assert [event.pk for event in events] == sorted(sent)
    assert [event.data for event in events] == [{"id": 1}, {"nested": {"x": [1]}}]
    assert all(event.dispatched_at is not None for event in events)
    assert paused == {"test-b"}
    assert wait_keys == {"d/a": ["data.id"], "d/b": []}
    # Nothing left: an empty claim reads no look-ups either.
    with transaction.atomic():
        assert claim_for_dispatch(limit=10, now=clock.now()) == ([], set(), {})


def test_a_caller_that_knows_of_new_events_skips_the_look_for_them():
    send_steps(2, steps=1)
    with CaptureQueriesContext(connection) as captured:
        assert dispatch_pending(look=False) == 2
    assert not [q for q in captured.captured_queries if q["sql"].startswith("SELECT 1 FROM")]
    # With nothing new, it costs an empty claim instead, and finds nothing.
    assert dispatch_pending(look=False) == 0


def test_a_send_outside_a_transaction_is_one_insert_that_commits_by_itself():
    with counted_commits() as commits, CaptureQueriesContext(connection) as captured:
        ids = inngest.send([{"name": "test/one", "data": {"n": n}} for n in range(3)])
    # bulk_create would wrap its INSERT in a transaction: BEGIN, INSERT and COMMIT.
    assert commits == []
    statements = [query["sql"] for query in captured.captured_queries]
    assert len(statements) == 1 and statements[0].startswith('INSERT INTO "inngest_django_event"')
    stored = Event.objects.filter(pk__in=ids).order_by("pk")
    assert [event.data for event in stored] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(event.received_at is not None for event in stored)


@pytest.mark.parametrize("count", [1, MAX_INSERT_PARAMS // 8 + 1])
def test_a_send_too_large_for_one_insert_is_stored_whole_or_not_at_all(count):
    batch = [{"name": "test/many", "data": {"n": n}} for n in range(count)]
    with pytest.raises(RuntimeError), transaction.atomic():
        inngest.send(batch)
        raise RuntimeError("roll back")
    assert not Event.objects.exists()
    assert len(inngest.send(batch)) == count
    assert Event.objects.count() == count
