"""Dispatch reads each thing once: its events from their UPDATE, pauses and wait keys together."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inngest_django.events import dispatch_pending
from inngest_django.models import FunctionRun
from tests.helpers import send_steps

pytestmark = pytest.mark.django_db(transaction=True)

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")


def test_a_batch_of_events_is_dispatched_in_four_statements():
    send_steps(3, steps=1)
    with CaptureQueriesContext(connection) as captured:
        assert dispatch_pending() == 3
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(TRANSACTION_CONTROL)
    ]
    kinds = [" ".join(sql.split()[:3]) for sql in statements]
    assert kinds == [
        "SELECT 1 FROM",  # anything to dispatch?
        'UPDATE "inngest_django_event" SET',  # claim the batch, RETURNING its rows
        "SELECT 0, function_id,",  # paused functions UNION ALL the batch's names' wait keys
        'INSERT INTO "inngest_django_functionrun"',
    ], statements
    assert FunctionRun.objects.count() == 3


def test_a_caller_that_knows_of_new_events_skips_the_look_for_them():
    send_steps(2, steps=1)
    with CaptureQueriesContext(connection) as captured:
        assert dispatch_pending(look=False) == 2
    assert not [q for q in captured.captured_queries if q["sql"].startswith("SELECT 1 FROM")]
    # With nothing new, it costs an empty claim instead, and finds nothing.
    assert dispatch_pending(look=False) == 0
