"""Sending and dispatching cost few statements: one INSERT, then one claim, one look-up read."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import inngest_django as inngest
from inngest_django import clock
from inngest_django.dispatch_batch import claim_for_dispatch
from inngest_django.events import dispatch_pending
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


def _flush_wait_at_the_runs_insert() -> tuple[list[str], object]:
    """Return a list that an execute wrapper fills with synchronous_commit as runs are stored."""
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('INSERT INTO "inngest_django_functionrun"'):
            # psycopg's own cursor: the wrapper does not see (or recurse into) this read.
            with context["connection"].connection.cursor() as raw:
                seen.append(raw.execute("SHOW synchronous_commit").fetchone()[0])
        return result

    return seen, spy


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_dispatch_in_a_transaction_of_its_own_commits_without_waiting_for_the_flush():
    send_steps(2, steps=1)
    seen, spy = _flush_wait_at_the_runs_insert()
    with connection.execute_wrapper(spy):
        assert dispatch_pending() == 2
    assert seen == ["off"]
    # Only for that transaction: the connection's next ones wait for the flush again.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert FunctionRun.objects.count() == 2


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_dispatch_inside_the_callers_transaction_leaves_its_flush_wait_alone():
    send_steps(1, steps=1)
    seen, spy = _flush_wait_at_the_runs_insert()
    with connection.execute_wrapper(spy), transaction.atomic():
        assert dispatch_pending() == 1
    assert seen == ["on"]
    # A claim on its own leaves it alone too.
    send_steps(1, steps=1)
    with transaction.atomic():
        assert len(claim_for_dispatch(limit=10, now=clock.now())[0]) == 1
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
